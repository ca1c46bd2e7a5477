"""`bot enter`: an operator entry, checked, persisted before it is sent, never left unwatched.

Every order the entry will need (the entry, its stop-loss and take-profit) is checked against
the symbol's filters and the mark price first (core.checks): a refusal is exit 1 and one line,
with nothing stored or sent.

With a daemon running, the entry is written as REQUESTED and the daemon sends and protects
it (one process sends per state dir); if the daemon goes away before taking it, exit 1 says
so. With no daemon, this process sends it and then follows a MARKET entry (a LIMIT one with
--wait) until it is protected. While following, it holds the state dir's lock only for each
look, so a `bot run` started meanwhile takes over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli import ops
from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, warn
from bot_cli.errors import BotError, UsageError


if TYPE_CHECKING:
    from decimal import Decimal
    from pathlib import Path

    from bot_cli.config import Config
    from bot_cli.connect import Connection
    from bot_cli.core.model import EntrySpec, Pending, Policy, PositionSide
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore


class SideArg(str, Enum):
    buy = "buy"
    sell = "sell"


EXIT_NOT_PROTECTED = 3  # no daemon: followed for --timeout seconds, still not protected
EXIT_UNWATCHED = 4  # no daemon: a limit entry rests, and nothing will protect its fill
HANDOFF_WAIT_S = 10.0
HANDOFF_POLL_S = 0.1
GONE_PROBES = 3  # the daemon lock seen free this many polls in a row: the daemon is gone
FOLLOW_S = 15.0  # a market fill is protected in well under a second
FIRST_LOOK_S = 0.1  # then doubling: each look is a reconcile (Binance weight ~80 without symbol)
MAX_LOOK_S = 5.0
THIS_PROCESS = "this process"


@dataclass(frozen=True, slots=True)
class Order:
    """The command line's entry, parsed but not yet checked."""

    symbol: str
    side: str
    quantity: Decimal
    price: Decimal | None
    stop_loss: Decimal
    take_profit: Decimal | None
    position_side: str | None


@dataclass(frozen=True, slots=True)
class Result:
    """The entry as it stands, who sent it, the exit code and its one line (stderr)."""

    pending: Pending
    sent_by: str
    code: int = 0
    note: str = ""


_PRICE_HELP = "Limit price; omit for a market entry."
_PS_HELP = "LONG or SHORT (hedge mode only)."
_WAIT_HELP = "No daemon: follow a limit entry until it is protected."
_TIMEOUT_HELP = "Seconds to follow an entry until it is protected (no daemon)."


def enter(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    side: Annotated[SideArg, typer.Argument(help="buy or sell.")],
    quantity: Annotated[str, typer.Argument(help="Quantity in the base asset.")],
    sl: Annotated[str, typer.Option("--sl", help="Stop-loss trigger price (required).")],
    price: Annotated[str | None, typer.Option("--price", help=_PRICE_HELP)] = None,
    tp: Annotated[str | None, typer.Option("--tp", help="Take-profit trigger price.")] = None,
    position_side: Annotated[str | None, typer.Option("--position-side", help=_PS_HELP)] = None,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check an entry against the symbol's filters, persist it with its SL and TP, then place it.

    With no daemon, a market entry (a limit one with --wait) is followed until it is protected.

    Exit 0: placed (protected, or handed to `bot run`).

    Exit 1: refused or not placed; one line says why.

    Exit 3: no daemon, not protected within --timeout: start `bot run`.

    Exit 4: no daemon, a limit entry without --wait: nothing protects a fill until `bot run`.
    """
    import asyncio

    obj: AppContext = ctx.obj
    order = Order(
        symbol.upper(), side.value, ops.parse_decimal("quantity", quantity),
        None if price is None else ops.parse_decimal("--price", price),
        ops.parse_decimal("--sl", sl), None if tp is None else ops.parse_decimal("--tp", tp),
        position_side,
    )  # fmt: skip
    _show(asyncio.run(_enter(obj, order, wait, timeout)), as_json)


async def _enter(obj: AppContext, order: Order, wait: bool, timeout: float) -> Result:
    from bot_cli.connect import connect
    from bot_cli.core.model import OrderType
    from bot_cli.state_store import DaemonLock, LockHeld, PendingEntryStore

    cfg = obj.config
    async with connect(cfg, obj.state_dir) as conn:
        spec = await _checked_spec(conn, order)  # before the state dir is touched
        with PendingEntryStore(obj.state_dir) as store:
            try:
                with DaemonLock(obj.state_dir):
                    engine = _engine(store, conn, cfg)
                    p = await engine.execute_entry(spec)
            except LockHeld as held:
                return await _hand_off(store, spec, cfg, obj.state_dir, held.pid)
            if spec.order_type is OrderType.LIMIT and not wait:
                return _unwatched(p)
            return await _follow(engine, obj.state_dir, p, timeout)


# -- the checks -------------------------------------------------------------------------


async def _checked_spec(conn: Connection, order: Order) -> EntrySpec:
    """The entry, once every order it needs passes the symbol's filters at the current mark."""
    from bot_cli.core.checks import check_entry
    from bot_cli.core.model import EntrySpec, OrderType, Side
    from bot_cli.venue import VenueError

    try:
        filters = (await conn.rest.exchange_info()).get(order.symbol)
        if filters is None:
            raise UsageError(f"symbol {order.symbol} is not traded on the {conn.venue_name} venue")
        mark = await conn.rest.mark_price(order.symbol)
    except VenueError as err:
        raise BotError(
            f"cannot read {order.symbol}'s filters and mark price from the {conn.venue_name} venue"
            f" ({err}); nothing was sent: try again"
        ) from None
    kind = OrderType.MARKET if order.price is None else OrderType.LIMIT
    spec = EntrySpec(
        order.symbol, Side(order.side.upper()), order.quantity, kind, order.price, order.stop_loss,
        order.take_profit, _position_side(conn.rest.hedge_mode, order.side, order.position_side),
    )  # fmt: skip
    violation = check_entry(spec, filters, mark)
    if violation is not None:
        raise UsageError(violation.message)
    return spec


def _position_side(hedge: bool, side: str, given: str | None) -> PositionSide:
    from bot_cli.core.model import PositionSide

    if not hedge:
        if given not in (None, "BOTH", "both"):
            raise UsageError("--position-side is for hedge mode; this account is in one-way mode")
        return PositionSide.BOTH
    if given is None:
        return PositionSide.LONG if side == "buy" else PositionSide.SHORT
    try:
        return PositionSide(given.upper())
    except ValueError:
        raise UsageError(f"--position-side {given!r} is not LONG or SHORT") from None


# -- no daemon: this process sends and follows ------------------------------------------


def _engine(store: PendingEntryStore, conn: Connection, cfg: Config) -> ExecutionEngine:
    from bot_cli.runtime.engine import ExecutionEngine

    window = cfg.venue.recv_window_ms
    return ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=window)


def _unwatched(p: Pending) -> Result:
    if _settled(p):
        return _final(p, THIS_PROCESS)
    return Result(p, THIS_PROCESS, EXIT_UNWATCHED, (
        f"no daemon is running: nothing will protect a fill of limit entry {p.pending_id} until"
        " `bot run` is started; start it now (or enter with --wait)"
    ))  # fmt: skip


async def _follow(engine: ExecutionEngine, state_dir: Path, p: Pending, timeout: float) -> Result:
    """Reconcile until the entry is protected (or settled otherwise), bounded by ``timeout``.

    The lock is taken for each look only: a `bot run` started meanwhile gets it and takes
    over; this process then only watches the journal."""
    import asyncio

    from bot_cli.state_store import DaemonLock, LockHeld
    from bot_cli.venue import VenueError

    end, delay = time.monotonic() + timeout, FIRST_LOOK_S
    while not _settled(p) and time.monotonic() < end:
        await asyncio.sleep(min(delay, max(0.0, end - time.monotonic())))
        delay = min(delay * 2, MAX_LOOK_S)
        try:
            with DaemonLock(state_dir):
                await engine.recover()
                await engine.run_due_checks()
        except LockHeld:
            engine.absorb_external()  # another process drives it now: watch what it writes
        except VenueError:
            pass  # transient (unreachable, rate limited): the next look asks again
        p = _latest(engine.store, engine.state.get(p.pending_id), p)
    return _followed(p, state_dir, timeout)


def _followed(p: Pending, state_dir: Path, timeout: float) -> Result:
    from bot_cli.core.model import Status
    from bot_cli.state_store import lock_holder

    if _settled(p):
        return _final(p, THIS_PROCESS)
    holder = lock_holder(state_dir)
    if holder:  # a `bot run` started while we followed: it protects the fill now
        note = (f"entry {p.pending_id} is {p.status.value}; process {holder} holds {state_dir} now"
                " and protects it")
        return Result(p, THIS_PROCESS, 0, note)
    partly = p.status is Status.PARTIALLY_FILLED
    what = "is partly filled (that part protected), the rest working" if partly else (
        f"is not protected yet ({p.status.value})"
    )  # fmt: skip
    return Result(p, THIS_PROCESS, EXIT_NOT_PROTECTED, (
        f"entry {p.pending_id} {what} after {timeout:g}s and no daemon is running:"
        " start `bot run` now, it protects the fill"
    ))  # fmt: skip


# -- a daemon runs: hand the entry to it -------------------------------------------------


async def _hand_off(
    store: PendingEntryStore, spec: EntrySpec, cfg: Config, state_dir: Path, holder: int | None
) -> Result:
    """Write the entry as REQUESTED and wait for the daemon to send it, or to be gone."""
    import asyncio

    from bot_cli.core.model import Status
    from bot_cli.state_store import lock_holder

    p, by = _request(store, spec, cfg.venue.recv_window_ms), f"bot run (pid {holder})"
    end, free = time.monotonic() + HANDOFF_WAIT_S, 0
    while time.monotonic() < end:
        await asyncio.sleep(HANDOFF_POLL_S)
        store.poll()
        p = _latest(store, _journal(store, p.pending_id), p)
        if p.status not in (Status.REQUESTED, Status.SUBMITTING):
            return _final(p, by)
        free = free + 1 if lock_holder(state_dir) is None else 0
        if free >= GONE_PROBES and p.status is Status.REQUESTED:
            return _not_sent(p, by, holder, cfg.policy)
    return _not_taken(p, by, holder, lock_holder(state_dir) is None, cfg.policy)


def _request(store: PendingEntryStore, spec: EntrySpec, recv_window_ms: int) -> Pending:
    import secrets

    from bot_cli.core.engine import request_entry
    from bot_cli.core.ids import make_pending_id
    from bot_cli.store.codec import encode

    now = time.time_ns() // 1_000_000
    pid = make_pending_id(now, secrets.randbelow(36**5))
    p, _ = request_entry(pid, spec, now, recv_window_ms)
    store.save(pid, encode(p))
    return p


def _not_sent(p: Pending, by: str, holder: int | None, policy: Policy) -> Result:
    """The daemon is gone and the entry still REQUESTED: say so, and what becomes of it."""
    left_s = (p.created_at + policy.request_ttl_ms - time.time_ns() // 1_000_000) / 1000
    if left_s > 0:
        fate = (f"it stays REQUESTED in the journal: a `bot run` started within {left_s:.0f}s"
                " sends it, later it expires unsent")
    else:
        fate = "its request has expired: the next `bot run` archives it as NOT_PLACED"
    gone = f"the daemon (pid {holder}) stopped before taking entry {p.pending_id}"
    return Result(p, by, 1, f"{gone}: it was not sent; {fate}")


def _not_taken(p: Pending, by: str, holder: int | None, gone: bool, policy: Policy) -> Result:
    """Still REQUESTED or SUBMITTING when the wait is over."""
    from bot_cli.core.model import Status

    if p.status is Status.REQUESTED and gone:
        return _not_sent(p, by, holder, policy)
    if p.status is Status.SUBMITTING and gone:
        return Result(p, by, 1, (
            f"the daemon (pid {holder}) stopped while sending entry {p.pending_id}: it may or may"
            " not be placed; start `bot run`, it finds out and protects a fill"
        ))  # fmt: skip
    return Result(p, by, 0, (
        f"the daemon (pid {holder}) has not finished taking entry {p.pending_id} in"
        f" {HANDOFF_WAIT_S:g}s; it is {p.status.value} and stays with the daemon"
    ))  # fmt: skip


# -- reading the entry back --------------------------------------------------------------


def _journal(store: PendingEntryStore, pid: str) -> Pending | None:
    from bot_cli.store.codec import decode

    record = store.load_all().get(pid)
    return None if record is None else decode(record)


def _latest(store: PendingEntryStore, live: Pending | None, last: Pending) -> Pending:
    """The live record, else its last archived one (it left the journal), else what we had."""
    from bot_cli.store.codec import decode

    if live is not None:
        return live
    archived = [a for a in store.archived() if a.get("id") == last.pending_id]
    return decode(archived[-1]["rec"]) if archived else last


def _settled(p: Pending) -> bool:
    """Protected (resting in the journal, or archived), needing a human, or over."""
    from bot_cli.core.model import Status

    return p.status.terminal or p.status in (Status.PROTECTED, Status.NEEDS_ATTENTION)


def _final(p: Pending, by: str) -> Result:
    from bot_cli.core.model import Status

    why = p.reason or p.status.value
    if p.status is Status.PROTECTED:  # terminal (archived) or resting, depending on the core
        return Result(p, by)
    if p.status is Status.NOT_PLACED:
        return Result(p, by, 1, f"entry {p.pending_id} was not placed: {why}")
    if p.status is Status.NEEDS_ATTENTION:
        look = "see `bot pending list`"
        return Result(p, by, 1, f"entry {p.pending_id} needs attention: {why}; {look}")
    if p.status.terminal:  # canceled, closed at once, dropped: placed, but nothing left to protect
        return Result(p, by, 0, f"entry {p.pending_id} is {p.status.value}: {why}")
    return Result(p, by)


def _show(r: Result, as_json: bool) -> None:
    from bot_cli.core.ids import client_id
    from bot_cli.core.model import Leg

    p = r.pending
    cid = client_id(p.pending_id, Leg.ENTRY)
    if as_json:
        print_json({
            "id": p.pending_id, "entry_client_id": cid, "state": p.status.value, "reason": p.reason,
            "sent_by": r.sent_by, "filled_quantity": str(p.filled_qty), "note": r.note or None,
        })  # fmt: skip
    else:
        reason = f" - {p.reason}" if p.reason else ""
        typer.echo(f"entry {p.pending_id} ({cid}): {p.status.value}{reason} [sent by {r.sent_by}]")
    if r.code == 1:
        raise BotError(r.note)
    if r.note:
        warn(r.note)
    if r.code:
        raise typer.Exit(r.code)
