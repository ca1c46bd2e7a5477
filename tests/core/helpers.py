"""Builders for the core's specification tests: specs, pendings in each status, reports.

Every builder returns plain core values with explicit, readable defaults, so a test
states only what matters to it. Times are epoch milliseconds around ``T0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    CloseOrder,
    EntrySpec,
    Leg,
    LegState,
    Millis,
    Note,
    OrderReport,
    OrderStatus,
    OrderType,
    Pending,
    PendingId,
    Policy,
    PositionSide,
    ProtectionOrder,
    Side,
    Status,
)
from bot_cli.core.reconcile import Snapshot


D = Decimal
C = TypeVar("C")
T0: Millis = 1_760_000_000_000
RECV_WINDOW = 5_000
POLICY = Policy()
#: the first moment a send decided at T0 can no longer land (timestamp + recvWindow + margin)
DEADLINE: Millis = T0 + POLICY.send_delay_ms + RECV_WINDOW + POLICY.not_found_margin_ms
INSIDE = T0 + 1_000  # well inside the window of a send decided at T0
LATER = DEADLINE + 60_000  # well past it
#: past Binance's 3-day rule: an acknowledged order may be gone from queries for good
ARCHIVED = T0 + POLICY.archived_after_ms + 60_000
ORDER_ID = 4_242
PID = make_pending_id(T0, 1)
OTHER_PID = make_pending_id(T0, 2)  # another entry, on the same position where a test says so

SEND_TYPES = (cm.PlaceEntry, cm.PlaceProtection, cm.ClosePosition, cm.CancelProtection, cm.CancelEntry)


def spec(
    side: Side = Side.BUY,
    quantity: str = "1.0",
    *,
    price: str | None = "100",
    stop_loss: str = "95",
    take_profit: str | None = "110",
    position_side: PositionSide = PositionSide.BOTH,
    symbol: str = "BTCUSDT",
) -> EntrySpec:
    """A limit entry (market when price is None); long by default: SL below, TP above."""
    return EntrySpec(
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        price=None if price is None else D(price),
        stop_loss=D(stop_loss),
        take_profit=None if take_profit is None else D(take_profit),
        position_side=position_side,
    )


SPEC = spec()


def cid(leg: Leg, gen: int = 0, pid: PendingId = PID) -> ClientId:
    return client_id(pid, leg, gen)


def leg(
    which: Leg,
    gen: int,
    quantity: str,
    state: LegState,
    *,
    pid: PendingId = PID,
    sent_at: Millis = T0,
    entry: EntrySpec = SPEC,
) -> ProtectionOrder:
    """One protective order of generation ``gen``, triggering at the spec's price for its leg."""
    return ProtectionOrder(
        which, gen, client_id(pid, which, gen), D(quantity), entry.trigger(which), state, sent_at
    )


def legs(
    gen: int, quantity: str, state: LegState, *, pid: PendingId = PID, entry: EntrySpec = SPEC,
    sent_at: Millis = T0,
) -> tuple[ProtectionOrder, ...]:
    """Every leg the spec asks for (SL, and TP when it has one), all in one generation and state."""
    return tuple(
        leg(x, gen, quantity, state, pid=pid, sent_at=sent_at, entry=entry) for x in entry.legs
    )


def pending(status: Status = Status.SUBMITTING, pid: PendingId = PID, **changes: object) -> Pending:
    """A pending entry in ``status`` with the facts that status implies, then ``changes``.

    REQUESTED: not sent yet. SUBMITTING: persisted, sent at T0. OPEN: acknowledged,
    nothing filled. PARTIALLY_FILLED: 0.4 of 1.0 filled, generation 1 live for 0.4.
    PROTECTING: filled, generation 1 sent at T0 and not yet acknowledged. PROTECTED: filled,
    generation 1 live (resting). EXITING: the SL was already crossed; the close is in flight
    and the TP being canceled. NEEDS_ATTENTION: filled, generation 1 live. Terminal
    statuses: filled, archived.
    """
    base = _canonical(status, pid)
    return replace(base, **changes) if changes else base  # type: ignore[arg-type]


def _canonical(status: Status, pid: PendingId) -> Pending:
    s = Pending(
        pid, SPEC, Status.SUBMITTING, T0, T0, RECV_WINDOW, history=(Note(T0, "entry requested"),)
    )
    opened = replace(s, status=Status.OPEN, order_id=ORDER_ID)
    filled = replace(opened, filled_qty=D("1.0"), avg_price=D("100"), entry_done=True)
    builders: dict[Status, Pending] = {
        Status.REQUESTED: replace(s, status=Status.REQUESTED, sent_at=0),
        Status.SUBMITTING: s,
        Status.OPEN: opened,
        # the filled part is protected by a live generation 1
        Status.PARTIALLY_FILLED: replace(
            opened, status=Status.PARTIALLY_FILLED, filled_qty=D("0.4"), avg_price=D("100"),
            gen=1, protections=legs(1, "0.4", LegState.LIVE, pid=pid),
        ),
        # filled; generation 1 sent, not yet acknowledged
        Status.PROTECTING: replace(
            filled, status=Status.PROTECTING, gen=1,
            protections=legs(1, "1.0", LegState.SENDING, pid=pid),
        ),
        Status.PROTECTED: replace(
            filled, status=Status.PROTECTED, gen=1, reason="protected",
            protections=legs(1, "1.0", LegState.LIVE, pid=pid),
        ),
        # SL crossed: closing at market; the TP of generation 1 is being canceled
        Status.EXITING: replace(
            filled, status=Status.EXITING, gen=2, flatten=True,
            protections=(leg(Leg.TP, 1, "1.0", LegState.CANCELING, pid=pid),),
            close=CloseOrder(cid(Leg.CLOSE, 2, pid), D("1.0"), LegState.SENDING, T0),
            reason="SL trigger 95 already crossed (-2021); closed at market",
        ),
        Status.NEEDS_ATTENTION: replace(
            filled, status=Status.NEEDS_ATTENTION, gen=1,
            protections=legs(1, "1.0", LegState.LIVE, pid=pid),
            reason="evidence contradicts itself",
        ),
    }
    if status in builders:
        return builders[status]
    if status.terminal:
        return replace(filled, status=status, reason=status.name.lower())
    msg = f"tests/core/helpers.py has no canonical pending for {status.name}"
    raise AssertionError(msg)


def order(
    status: OrderStatus,
    filled: str = "0",
    *,
    quantity: str = "1.0",
    pid: PendingId = PID,
    avg_price: str | None = "100",
    order_id: int = ORDER_ID,
) -> OrderReport:
    """The entry order of ``pid`` as the exchange reports it."""
    return OrderReport(
        SPEC.symbol, client_id(pid, Leg.ENTRY), order_id, status, D(filled),
        None if D(filled) == 0 else (None if avg_price is None else D(avg_price)), D(quantity),
    )


def algo(p: ProtectionOrder, status: AlgoStatus = AlgoStatus.NEW, algo_id: int = 77) -> AlgoReport:
    """A protective order as the exchange reports it."""
    return AlgoReport(SPEC.symbol, p.client_id, algo_id, status, p.trigger_price, p.quantity)


def snapshot(
    *,
    open_orders: Iterable[OrderReport] = (),
    open_algos: Iterable[AlgoReport] = (),
    orders: Mapping[ClientId, OrderReport | None] | None = None,
    algos: Mapping[ClientId, AlgoReport | None] | None = None,
    position: str | None = None,
    positions: Mapping[tuple[str, PositionSide], Decimal] | None = None,
) -> Snapshot:
    """A snapshot; ``position`` is shorthand for BTCUSDT's one-way position."""
    if position is not None:
        positions = {(SPEC.symbol, PositionSide.BOTH): D(position)}
    return Snapshot(
        open_orders={o.client_id: o for o in open_orders},
        open_algos={a.client_id: a for a in open_algos},
        orders=dict(orders or {}),
        algos=dict(algos or {}),
        positions=positions,
    )


def close_filled(p: Pending, executed: str | None = None) -> ev.CloseReport:
    """The exchange's report that ``p``'s market close filled (all of it, or ``executed``)."""
    close = p.close
    assert close is not None, f"{p.pending_id} has no close in flight"
    qty = close.quantity if executed is None else D(executed)
    return ev.CloseReport(p.pending_id, close.client_id, OrderStatus.FILLED, qty)


def of_type(cmds: Sequence[cm.Command], kind: type[C]) -> list[C]:
    """The commands of one type, in order."""
    return [c for c in cmds if isinstance(c, kind)]


def sends(cmds: Sequence[cm.Command]) -> list[cm.Send]:
    """The commands that change something on the exchange, in order."""
    return [c for c in cmds if isinstance(c, SEND_TYPES)]


def place(p: ProtectionOrder, pid: PendingId = PID, entry: EntrySpec = SPEC) -> cm.PlaceProtection:
    """The PlaceProtection command that sends ``p`` for an entry of ``entry``."""
    return cm.PlaceProtection(
        pid, p.client_id, p.leg, entry.symbol, entry.side.opposite, p.quantity, p.trigger_price,
        entry.position_side,
    )
