"""Admission: accept an entry only if every order it will need fits the account's limits (pure).

Binance counts, per account, at most 200 open conditional orders across all symbols (the algo
book, where stop-losses and take-profits live, since 2025-12-29: -4045 beyond it) and, per
symbol, MAX_NUM_ORDERS open regular orders (-2025). An entry that fills where its legs do not
fit is a fill left bare, so it is refused before anything is written or sent.

What an entry holds of the algo book: every leg it has there or may have there (live, being
sent, in doubt, being cancelled), and, before its first legs, the legs it will place. A resize
or a replaced leg needs one more leg of a kind for a moment: at the limit the new stop-loss
takes the room of the entry's own take-profit first (core.rules.protection_limited), so the
share is never without a stop; an entry with no take-profit whose order may still fill keeps
one slot in reserve for that moment. The bot's own count is what the journal says; what the
exchange lists that is not the bot's (another tool, a manual order) is passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import (
    ENTRY_WORKING,
    AlgoReport,
    EntrySpec,
    Leg,
    LegState,
    OrderReport,
    OrderType,
    Pending,
    Status,
)


__all__ = ["MAX_CONDITIONAL", "Refusal", "conditional_held", "foreign", "refusal", "regular_held"]

MAX_CONDITIONAL = 200  # open conditional orders per account, every symbol (since 2025-12-29)
_ON_THE_BOOK = frozenset({LegState.SENDING, LegState.UNKNOWN, LegState.LIVE, LegState.CANCELING})
_MAY_FILL = ENTRY_WORKING | {Status.REQUESTED}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an entry does not fit: the limit, what is in use, and what to do, in one line."""

    limit: str  # "conditional" or "open_orders"
    message: str

    def __str__(self) -> str:
        return self.message


def conditional_held(p: Pending) -> int:
    """The algo-book slots ``p`` holds now or will need."""
    if p.status.terminal:
        return 0
    on_book = sum(1 for x in p.protections if x.state in _ON_THE_BOOK)
    may_fill = p.status in _MAY_FILL and not p.entry_done
    placed_later = len(p.spec.slots) if may_fill and not p.protections else 0
    return max(on_book, placed_later) + _reserve(p.spec, may_fill)


def _reserve(spec: EntrySpec, may_fill: bool) -> int:
    """A resize needs one more stop for a moment; without a take-profit to give way, it is kept."""
    return 1 if may_fill and Leg.TP not in spec.legs else 0


def regular_held(p: Pending, symbol: str) -> int:
    """Open regular orders ``p`` holds on ``symbol``: its working entry order (a limit; a market
    order fills at once)."""
    if p.spec.symbol != symbol or p.entry_done or p.status not in _MAY_FILL:
        return 0
    return 1 if p.spec.order_type is OrderType.LIMIT else 0


def foreign(orders: Iterable[OrderReport | AlgoReport], live: Collection[str]) -> int:
    """Orders no entry of the journal holds: not the bot's ids, or an entry no longer in it."""
    ids = (parse_client_id(o.client_id) for o in orders)
    return sum(1 for parsed in ids if parsed is None or parsed.pending_id not in live)


def refusal(
    spec: EntrySpec,
    entries: Iterable[Pending],
    *,
    foreign_conditional: int = 0,
    foreign_open: int = 0,
    max_open_orders: int = 0,
    max_conditional: int = MAX_CONDITIONAL,
) -> Refusal | None:
    """Why ``spec`` must be refused for the account's limits, or None when every order fits.

    ``foreign_*``: what the exchange lists that is not the bot's (conditional orders on every
    symbol; open regular orders on ``spec.symbol``). ``max_open_orders``: the symbol's
    MAX_NUM_ORDERS (0: none known)."""
    live = list(entries)
    need = len(spec.slots) + _reserve(spec, may_fill=spec.order_type is not OrderType.ADOPTED)
    held = sum(conditional_held(p) for p in live) + foreign_conditional
    if held + need > max_conditional:
        return Refusal("conditional", (
            f"the account's open conditional orders would exceed {max_conditional}: {held} in use or reserved"
            f" ({foreign_conditional} not the bot's), this entry needs {need} for its stop-loss"
            f"{' and take-profit' if spec.take_profit is not None else ''}; close or cancel entries"
            " (`bot close ID`) or cancel conditional orders first"))  # fmt: skip
    opened = sum(regular_held(p, spec.symbol) for p in live) + foreign_open
    if max_open_orders and spec.order_type is OrderType.LIMIT and opened + 1 > max_open_orders:
        return Refusal("open_orders", (
            f"{spec.symbol} would exceed MAX_NUM_ORDERS {max_open_orders} open orders: {opened} open"
            f" ({foreign_open} not the bot's); cancel some first"))  # fmt: skip
    return None
