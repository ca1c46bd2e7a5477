"""An entry as asked for, checked against the symbol's filters and mark price, and admitted
against the entries in the journal and the account's limits, before anything is written or
sent. Shared by `bot enter`, the Python API, the signal inbox and the demo.

Every refusal is an ``EntryRefused`` naming the field (``symbol``, ``quantity``, ``price``,
``stop_loss``, ``take_profit``, ``position_side``, ``side`` for netting, ``limit`` for the
account's open-order limits) and one line saying what to do.

Admission (core.netting, core.admission) reads the journal and writes the entry under one
hold of ``admitting``: two processes cannot both admit the last entry that fits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from bot_cli.core import admission
from bot_cli.core.checks import Filters, check_entry, floor_step
from bot_cli.core.model import (
    AlgoReport,
    EntrySpec,
    OrderReport,
    OrderType,
    Pending,
    PositionSide,
    Side,
    TpLevel,
    Trail,
)
from bot_cli.core.netting import netting_refusal
from bot_cli.errors import UsageError
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.ops.journal import Unreadable, decode_record
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.lock import JournalLock


__all__ = [
    "ADMISSION_LOCK_NAME", "Account", "EntryRefused", "Market", "Order", "admitting", "checked_spec",
    "journal_entries", "refuse",
]  # fmt: skip

ADMISSION_LOCK_NAME = "admission.lock"
# core.checks names what it refuses ("stop-loss", "notional", ...); callers name arguments.
_FIELDS = {
    "quantity": "quantity", "notional": "quantity", "price": "price",
    "stop-loss": "stop_loss", "take-profit": "take_profit", "trail": "trail", "activation price": "trail",
}  # fmt: skip
# The filters exchangeInfo states: a refusal by one of them may be lifted by a newer exchangeInfo.
EXCHANGE_FILTERS = frozenset({"LOT_SIZE", "MARKET_LOT_SIZE", "PRICE_FILTER", "PERCENT_PRICE", "MIN_NOTIONAL"})


class EntryRefused(UsageError):
    """Refused before anything was written or sent; ``field`` names the value at fault."""

    def __init__(self, field: str, message: str, *, by_filter: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.by_filter = by_filter  # refused by a filter exchangeInfo states (it may have changed)


class Market(Protocol):
    """What the checks and admission read from the venue (BinanceRest has it)."""

    hedge_mode: bool

    async def exchange_info(self) -> Mapping[str, SymbolFilters]: ...

    async def mark_price(self, symbol: str) -> Decimal: ...

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]: ...

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]: ...


@dataclass(frozen=True, slots=True)
class Account:
    """What admission counts beside the journal: orders the exchange lists that no entry holds
    (conditional ones on every symbol, open regular ones on the entry's symbol) and the
    symbol's MAX_NUM_ORDERS (0: none stated)."""

    foreign_conditional: int = 0
    foreign_open: int = 0
    max_open_orders: int = 0


@dataclass(frozen=True, slots=True)
class Order:
    """An entry as asked for, parsed but not yet checked."""

    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal | None  # None: market
    stop_loss: Decimal
    take_profit: Decimal | None
    position_side: str | None
    # Take profit in steps: (price, percent of the quantity); the last level's percent is None
    # (it takes the rest). Two or more levels; then take_profit is ignored.
    tp_levels: tuple[tuple[Decimal, Decimal | None], ...] = ()
    trail: Trail | None = None


MIN_LEVELS, WHOLE = 2, Decimal(100)  # fewer levels is a single take-profit; percents of the whole


def tp_levels(order: Order, step: Decimal) -> tuple[TpLevel, ...]:
    """The levels' quantities: each its percent of the entry, rounded down to the step; the last
    takes the rest. EntryRefused (field take_profit) when the percents do not leave a rest."""
    if len(order.tp_levels) < MIN_LEVELS:
        return ()
    *firsts, (last_price, last_pct) = order.tp_levels
    if any(pct is None for _, pct in firsts):
        raise EntryRefused("take_profit", "every take-profit level but the last needs its share, e.g. --tp 66000:50%")
    if last_pct is not None:
        raise EntryRefused("take_profit", "the last take-profit level takes the rest: give it no percent,"
                                          " e.g. --tp 68000")  # fmt: skip
    total = sum((pct for _, pct in firsts if pct is not None), Decimal(0))
    if total >= WHOLE:
        raise EntryRefused("take_profit", f"the take-profit levels' percents add up to {total} %: the last level"
                                          " needs a rest, so they must stay below 100 %")  # fmt: skip
    levels = []
    for price, pct in firsts:
        assert pct is not None
        qty = order.quantity * pct / 100
        levels.append(TpLevel(price, floor_step(qty, step)))
    rest = order.quantity - sum((x.quantity for x in levels), Decimal(0))
    return (*levels, TpLevel(last_price, rest))


def checked_spec(
    order: Order, filters: Filters, mark: Decimal, hedge: bool, ps_name: str = "position_side"
) -> EntrySpec:
    """The entry, once every order it needs passes the symbol's filters at ``mark``."""
    kind = OrderType.MARKET if order.price is None else OrderType.LIMIT
    levels = tp_levels(order, filters.market_step_size)
    spec = EntrySpec(
        order.symbol, Side(order.side.upper()), order.quantity, kind, order.price,
        order.stop_loss, levels[0].price if levels else order.take_profit,
        position_side(hedge, order.side, order.position_side, ps_name), tp_levels=levels, trail=order.trail,
    )  # fmt: skip
    violation = check_entry(spec, filters, mark)
    if violation is not None:
        field = _FIELDS.get(violation.subject, violation.subject)
        if violation.subject.startswith("take-profit level"):
            field = "take_profit"
        raise EntryRefused(field, violation.message, by_filter=violation.filter in EXCHANGE_FILTERS)
    return spec


def position_side(hedge: bool, side: str, given: str | None, name: str) -> PositionSide:
    """BOTH in one-way mode; in hedge mode the given side, else the one the entry opens."""
    if not hedge:
        if given not in (None, "BOTH", "both"):
            raise EntryRefused(
                "position_side", f"{name} is for hedge mode; this account is in one-way mode"
            )
        return PositionSide.BOTH
    if given is None:
        return PositionSide.LONG if side == "buy" else PositionSide.SHORT
    try:
        return PositionSide(given.upper())
    except ValueError:
        raise EntryRefused("position_side", f"{name} {given!r} is not LONG or SHORT") from None


def journal_entries(store: PendingEntryStore) -> list[Pending]:
    """The journal's entries the bot can read (a record it cannot decode is skipped, as the
    daemon skips it)."""
    found = (decode_record(k, r) for k, r in store.load_all().items())
    return [p for p in found if not isinstance(p, Unreadable)]


def refuse(spec: EntrySpec, entries: list[Pending], account: Account, *, stacking: bool = False) -> None:
    """EntryRefused if ``spec`` would net against the share of an entry in the journal, or
    (``stacking`` off) another entry is live on its position (field ``side``, core.netting), or
    an order it will need would not fit the account's limits (field ``limit``, core.admission)."""
    mine = [p for p in entries if p.spec.symbol == spec.symbol]
    why = netting_refusal(spec, mine, stacking=stacking)
    if why is not None:
        raise EntryRefused("side", why)
    unfit = admission.refusal(
        spec, entries, foreign_conditional=account.foreign_conditional,
        foreign_open=account.foreign_open, max_open_orders=account.max_open_orders,
    )  # fmt: skip
    if unfit is not None:
        raise EntryRefused("limit", unfit.message)


@contextlib.contextmanager
def admitting(state_dir: Path) -> Iterator[None]:
    """Held from the journal read that admits an entry to the entry's write, by every process
    that admits one (blocking; the state dir must exist)."""
    lock = JournalLock(Path(state_dir) / ADMISSION_LOCK_NAME)
    try:
        with lock:
            yield
    finally:
        lock.close()
