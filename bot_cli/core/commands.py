"""Commands: the core's decisions, executed by the runtime strictly in order.

PersistPending always precedes any send that depends on it: the runtime makes it
durable (fsync) before it runs the next command.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot_cli.core.model import (
    ClientId,
    Leg,
    Millis,
    OrderType,
    Pending,
    PendingId,
    PositionSide,
    Side,
    Trail,
)


@dataclass(frozen=True, slots=True)
class PersistPending:
    pending: Pending
    new: bool = False  # the first record of an entry; every later one replaces a live record


@dataclass(frozen=True, slots=True)
class ArchivePending:
    """Remove from the journal; the final record goes to the archive with the reason."""

    pending: Pending
    reason: str


@dataclass(frozen=True, slots=True)
class PlaceEntry:
    pending_id: PendingId
    client_id: ClientId
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    position_side: PositionSide


@dataclass(frozen=True, slots=True)
class PlaceProtection:
    """A STOP_MARKET (SL), TAKE_PROFIT_MARKET (TP) or TRAILING_STOP_MARKET (TRAIL, ``trail`` set)
    algo order, reduce-only in one-way mode."""

    pending_id: PendingId
    client_id: ClientId
    leg: Leg
    symbol: str
    side: Side
    quantity: Decimal
    trigger_price: Decimal  # a trailing stop's activation price (0: activated at once)
    position_side: PositionSide
    trail: Trail | None = None


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """A reduce-only MARKET order closing what the entry filled."""

    pending_id: PendingId
    client_id: ClientId
    symbol: str
    side: Side
    quantity: Decimal
    position_side: PositionSide


@dataclass(frozen=True, slots=True)
class CancelEntry:
    """Cancel what is left of the entry order (before a close, or when parking the entry)."""

    pending_id: PendingId
    symbol: str
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class QueryEntry:
    pending_id: PendingId
    symbol: str
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class QueryProtection:
    pending_id: PendingId
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class QueryClose:
    pending_id: PendingId
    symbol: str
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class QueryPosition:
    pending_id: PendingId
    symbol: str
    position_side: PositionSide


@dataclass(frozen=True, slots=True)
class CancelProtection:
    pending_id: PendingId
    client_id: ClientId
    # A sibling of a leg that fired (the entry winds down): until it is gone it may execute
    # too, so it goes before anything else waiting (Binance has no OCO: this is it).
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleCheck:
    pending_id: PendingId
    at: Millis


@dataclass(frozen=True, slots=True)
class Alert:
    """A person must hear of it: ``kind`` says what (needs_attention, unprotected)."""

    pending_id: PendingId
    message: str
    kind: str = "needs_attention"


@dataclass(frozen=True, slots=True)
class Overdrawn:
    """The entry's legs and closes executed more than it filled (both legs fired before the
    bot, the OCO, cancelled one): ``quantity`` of another entry's share on the same position
    was closed by ``client_id``. The runtime finds whose (core.shares.charge) and tells it."""

    pending_id: PendingId
    client_id: ClientId
    symbol: str
    position_side: PositionSide
    side: Side  # the entry's side: the shares taken are of entries on this side
    quantity: Decimal
    what: str  # "SL", "TP" or "close"
    price: Decimal | None = None


Send = PlaceEntry | PlaceProtection | ClosePosition | CancelProtection | CancelEntry
Query = QueryEntry | QueryProtection | QueryClose | QueryPosition
Command = PersistPending | ArchivePending | Send | Query | ScheduleCheck | Alert | Overdrawn
