"""An entry as asked for, checked against the symbol's filters and mark price, and against the
entries in the journal (core.netting), before anything is written or sent. Shared by `bot enter`,
the Python API, the signal inbox and the demo.

Every refusal is an ``EntryRefused`` naming the field (``symbol``, ``quantity``, ``price``,
``stop_loss``, ``take_profit``, ``position_side``) and one line saying what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bot_cli.core.checks import Filters, check_entry
from bot_cli.core.model import EntrySpec, OrderType, PositionSide, Side
from bot_cli.core.netting import netting_refusal
from bot_cli.errors import BotError, UsageError
from bot_cli.ops.journal import Unreadable, decode_record
from bot_cli.state_store import PendingEntryStore
from bot_cli.venue import VenueError


__all__ = ["EntryRefused", "Market", "Order", "checked_spec", "read_market", "refuse_netting"]

# core.checks names what it refuses ("stop-loss", "notional", ...); callers name arguments.
_FIELDS = {
    "quantity": "quantity", "notional": "quantity", "price": "price",
    "stop-loss": "stop_loss", "take-profit": "take_profit",
}  # fmt: skip


class EntryRefused(UsageError):
    """Refused before anything was written or sent; ``field`` names the value at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Market(Protocol):
    """What the checks read from the venue (BinanceRest has it)."""

    hedge_mode: bool

    async def exchange_info(self) -> Mapping[str, Filters]: ...

    async def mark_price(self, symbol: str) -> Decimal: ...


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


async def read_market(market: Market, symbol: str, venue_name: str) -> tuple[Filters, Decimal]:
    """The symbol's filters and its mark price; refused if the venue does not trade it."""
    try:
        filters = (await market.exchange_info()).get(symbol)
        if filters is None:
            raise EntryRefused("symbol", f"symbol {symbol} is not traded on the {venue_name} venue")
        mark = await market.mark_price(symbol)
    except VenueError as err:
        raise BotError(
            f"cannot read {symbol}'s filters and mark price from the {venue_name} venue"
            f" ({err}); nothing was sent: try again"
        ) from None
    return filters, mark


def checked_spec(
    order: Order, filters: Filters, mark: Decimal, hedge: bool, ps_name: str = "position_side"
) -> EntrySpec:
    """The entry, once every order it needs passes the symbol's filters at ``mark``."""
    kind = OrderType.MARKET if order.price is None else OrderType.LIMIT
    spec = EntrySpec(
        order.symbol, Side(order.side.upper()), order.quantity, kind, order.price,
        order.stop_loss, order.take_profit,
        position_side(hedge, order.side, order.position_side, ps_name),
    )  # fmt: skip
    violation = check_entry(spec, filters, mark)
    if violation is not None:
        raise EntryRefused(_FIELDS.get(violation.subject, violation.subject), violation.message)
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


def refuse_netting(store: PendingEntryStore, spec: EntrySpec) -> None:
    """EntryRefused (field ``side``, nothing written) if ``spec`` would net against the share
    of an entry in the journal (core.netting); only the records on its symbol are decoded."""
    mine = [decode_record(k, r) for k, r in store.load_all().items() if r.get("symbol") == spec.symbol]
    why = netting_refusal(spec, [p for p in mine if not isinstance(p, Unreadable)])
    if why is not None:
        raise EntryRefused("side", why)
