"""The venue protocol: what the runtime needs from an exchange, Binance or paper.

Adapters parse wire payloads into core values at their edge and raise only the
errors below, each named by what the caller does next:

VenueError
 +-- Rejected          definitely not executed (carries the exchange code)
 |    +-- WouldTrigger  -2021 / -4142: a protective trigger is already crossed
 |    +-- LimitReached  -4045: the account's open conditional orders are at their limit
 +-- Duplicate         -4116: an OPEN order with this client id exists; query it
 +-- OutcomeUnknown    may or may not have executed (timeout, 503 unknown, -1006, -1007)
 +-- NotFound          -2013 / -2011: no such (open) order; not proof it never existed
 +-- Unavailable       transient, definitely not executed (-1008, 503 "Service Unavailable",
 |    |                 unreachable before sending): try again later, it is not a refusal
 |    +-- RateLimited   429/418/-1003: not executed; wait retry_after seconds
 |         +-- WeightThrottled  not sent: this client's own budget of the minute's request weight
 +-- AuthFailed        keys or signature refused; a human must fix the config
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.model import AlgoReport, ClientId, OrderReport, PositionSide


class VenueError(Exception):
    """Base of every error an adapter raises."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # When the request was signed and the recvWindow it carried (local clock): after them
        # it can no longer land. Set by the adapter; None where nothing was sent.
        self.sent_at_ms: int | None = None
        self.recv_window_ms: int | None = None


class Rejected(VenueError):
    """The exchange refused the request; it was not executed."""


class WouldTrigger(Rejected):
    """The trigger price is already crossed."""


class LimitReached(Rejected):
    """The account is at a limit of open orders: not executed; room may free later."""


class Duplicate(VenueError):
    """An open order already carries this client id: an earlier send landed."""


class OutcomeUnknown(VenueError):
    """The request may have executed; resolve by querying the client id, never by resending."""


class NotFound(VenueError):
    """No such order (or no such open order, for a cancel)."""


class Unavailable(VenueError):
    """Transient trouble; the request was definitely not executed. Retry after retry_after s."""

    def __init__(self, message: str, code: int = 0, retry_after: float = 1.0) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    """Too many requests; not executed."""

    def __init__(self, message: str, code: int = -1003, retry_after: float = 60.0) -> None:
        super().__init__(message, code, retry_after)


class WeightThrottled(RateLimited):
    """Not sent: the minute's request weight is nearly spent, as this client counts it (a read
    is held back before the exchange's own 429). The venue is reachable."""


class AuthFailed(VenueError):
    """The API key or signature was refused."""


Positions = dict[tuple[str, PositionSide], Decimal]

# The request weight of one read of an open book (orders, or algo orders): of one symbol, or of
# every symbol (Binance's weights, reference §3; the paper venue charges the same). A
# reconciliation reads the books symbol by symbol while that costs less.
BOOK_WEIGHT_ONE_SYMBOL = 1
BOOK_WEIGHT_ALL_SYMBOLS = 40


@runtime_checkable
class Metered(Protocol):
    """A venue that counts the request weight it has spent (BinanceRest does)."""

    @property
    def weight_spent(self) -> int: ...


@runtime_checkable
class OrderMetered(Protocol):
    """A venue that knows the account's new-order budget (the ORDERS rate limits)."""

    def order_room(self) -> int | None:
        """How many new orders may be sent now (None: no limit known)."""
        ...

    def order_wait_s(self) -> float:
        """Seconds until the fullest order-count window rolls over."""
        ...

    def order_reserve(self) -> int:
        """The last slots of a window kept for stop-losses and closes."""
        ...


@runtime_checkable
class Countdown(Protocol):
    """A venue with a dead-man switch (Binance's countdownCancelAll; the paper venue has one)."""

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> int:
        """Cancel the symbol's open regular orders ``countdown_ms`` from now unless called again;
        0 turns it off. Returns the countdown the venue set."""
        ...


class Venue(Protocol):
    async def place_entry(self, cmd: PlaceEntry) -> OrderReport: ...

    async def place_protection(self, cmd: PlaceProtection) -> AlgoReport: ...

    async def close_position(self, cmd: ClosePosition) -> OrderReport: ...

    async def cancel_protection(self, client_id: ClientId) -> None: ...

    async def cancel_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        """Cancel what is left of a matching-engine order; the answer carries its final fill.

        NotFound if it is no longer open (filled or canceled already): query it instead."""
        ...

    async def query_order(self, symbol: str, client_id: ClientId) -> OrderReport: ...

    async def query_algo(self, client_id: ClientId) -> AlgoReport: ...

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """The open matching-engine orders of one symbol, or of every symbol (a costlier read)."""
        ...

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]:
        """The open algo (conditional) orders of one symbol, or of every symbol (a costlier read)."""
        ...

    async def positions(self) -> Positions: ...

    async def mark_price(self, symbol: str) -> Decimal:
        """The symbol's current mark price (what the protective triggers work on)."""
        ...
