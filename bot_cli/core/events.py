"""Events: everything that can happen to a pending entry, as data.

Outcomes of our own sends come back as events too, and "unknown" is an outcome:
a timeout or an "execution status unknown" answer is EntryOutcomeUnknown, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId, Millis, OrderReport, OrderStatus, PendingId


@dataclass(frozen=True, slots=True)
class EntryClaimed:
    """The process that will send a REQUESTED entry takes it (persisted before the send).

    ``conflict``: why it must not be sent after all (core.netting), as the claimer saw the
    other entries; empty when nothing stands in the way."""

    pending_id: PendingId
    conflict: str = ""


@dataclass(frozen=True, slots=True)
class EntryAccepted:
    """The entry order is on the book with nothing filled."""

    pending_id: PendingId
    order_id: int


@dataclass(frozen=True, slots=True)
class EntryRejected:
    """The exchange definitely did not take the entry order."""

    pending_id: PendingId
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class EntryOutcomeUnknown:
    """The entry send may or may not have landed (timeout, 503 unknown, -1006, -1007, -4116).

    sent_at / recv_window_ms: what the request actually carried (0 when unknown); they
    bound when it can still land, later than the decision after a resync or a slow queue."""

    pending_id: PendingId
    reason: str
    sent_at: Millis = 0
    recv_window_ms: int = 0


@dataclass(frozen=True, slots=True)
class EntryNotFound:
    """A query by client id found no such order (-2013): not proof of absence on its own."""

    pending_id: PendingId
    position: Decimal | None = None  # the symbol's position, when the caller knows it
    after_cancel: bool = False  # a cancel by its client id had just answered "unknown order"


@dataclass(frozen=True, slots=True)
class EntryPartiallyFilled:
    pending_id: PendingId
    order_id: int
    filled_qty: Decimal  # cumulative (z / executedQty)
    avg_price: Decimal | None


@dataclass(frozen=True, slots=True)
class EntryFilled:
    pending_id: PendingId
    order_id: int
    filled_qty: Decimal
    avg_price: Decimal | None


@dataclass(frozen=True, slots=True)
class EntryCanceled:
    """Canceled or expired with nothing filled."""

    pending_id: PendingId
    order_id: int


@dataclass(frozen=True, slots=True)
class EntryCanceledPartFilled:
    """Canceled or expired after part of it filled: the filled part needs protection."""

    pending_id: PendingId
    order_id: int
    filled_qty: Decimal
    avg_price: Decimal | None


@dataclass(frozen=True, slots=True)
class ProtectionReport:
    """A protective algo order seen on the exchange (send answer, query, stream or snapshot)."""

    pending_id: PendingId
    client_id: ClientId
    status: AlgoStatus
    executed_qty: Decimal | None = None  # what its child order filled (final once FINISHED)


@dataclass(frozen=True, slots=True)
class ProtectionDeferred:
    """Transient trouble (429, -1008, 503 unavailable, unreachable): not executed, not a refusal."""

    pending_id: PendingId
    client_id: ClientId
    reason: str
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class ProtectionRejected:
    """A protective order definitely refused (not a crossed trigger)."""

    pending_id: PendingId
    client_id: ClientId
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ProtectionWouldTrigger:
    """-2021 / -4142: the trigger is already crossed."""

    pending_id: PendingId
    client_id: ClientId
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ProtectionOutcomeUnknown:
    pending_id: PendingId
    client_id: ClientId
    reason: str
    sent_at: Millis = 0  # as EntryOutcomeUnknown
    recv_window_ms: int = 0


@dataclass(frozen=True, slots=True)
class ProtectionNotFound:
    """A query by clientAlgoId found nothing."""

    pending_id: PendingId
    client_id: ClientId
    after_cancel: bool = False  # a cancel by its clientAlgoId had just answered "unknown order"


@dataclass(frozen=True, slots=True)
class ProtectionMissing:
    """A protection we had acknowledged is no longer open (snapshot)."""

    pending_id: PendingId
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class ProtectionCanceled:
    """Our cancel of a superseded protection is done (or it was no longer open)."""

    pending_id: PendingId
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The part of its symbol's position that can be this entry's (core.shares.allocate),
    in the entry's direction; zero means its share is flat."""

    pending_id: PendingId
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CloseAccepted:
    pending_id: PendingId


@dataclass(frozen=True, slots=True)
class CloseFailed:
    """The market close was definitely refused: a human must look (unless it found nothing to
    reduce: then the position decides)."""

    pending_id: PendingId
    reason: str
    code: int = 0


@dataclass(frozen=True, slots=True)
class CloseDeferred:
    """Transient trouble before the close executed: try again after a backoff."""

    pending_id: PendingId
    reason: str
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class CloseOutcomeUnknown:
    """The close may have executed: ask by its client id, never resend blindly."""

    pending_id: PendingId
    reason: str
    sent_at: Millis = 0  # as EntryOutcomeUnknown
    recv_window_ms: int = 0


@dataclass(frozen=True, slots=True)
class CloseNotFound:
    pending_id: PendingId


@dataclass(frozen=True, slots=True)
class QueryFailed:
    """A read (query, cancel) did not get an answer; try again later."""

    pending_id: PendingId
    reason: str


@dataclass(frozen=True, slots=True)
class CheckDue:
    """A ScheduleCheck's time has come."""

    pending_id: PendingId


@dataclass(frozen=True, slots=True)
class EvidenceConflict:
    """What the exchange says cannot follow from the journal: a human must look."""

    pending_id: PendingId
    detail: str


@dataclass(frozen=True, slots=True)
class OperatorCancel:
    """An operator cancels what is left of the entry order; what filled is then protected
    (or closed at market with ``close``)."""

    pending_id: PendingId
    close: bool = False


@dataclass(frozen=True, slots=True)
class OperatorClose:
    """An operator closes the entry's own share at market (reduce-only), cancelling the rest
    of its entry order first and its legs after."""

    pending_id: PendingId


@dataclass(frozen=True, slots=True)
class OperatorDrop:
    pending_id: PendingId
    reason: str = "dropped"


Event = (
    EntryClaimed
    | EntryAccepted
    | EntryRejected
    | EntryOutcomeUnknown
    | EntryNotFound
    | EntryPartiallyFilled
    | EntryFilled
    | EntryCanceled
    | EntryCanceledPartFilled
    | ProtectionReport
    | ProtectionDeferred
    | ProtectionRejected
    | ProtectionWouldTrigger
    | ProtectionOutcomeUnknown
    | ProtectionNotFound
    | ProtectionMissing
    | ProtectionCanceled
    | PositionReport
    | CloseAccepted
    | CloseFailed
    | CloseDeferred
    | CloseOutcomeUnknown
    | CloseNotFound
    | QueryFailed
    | CheckDue
    | EvidenceConflict
    | OperatorCancel
    | OperatorClose
    | OperatorDrop
)

_ENDED = (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.EXPIRED_IN_MATCH)


def entry_event(pending_id: PendingId, report: OrderReport) -> Event:
    """Translate an entry order's report into the one event the lifecycle table knows."""
    oid, qty, avg = report.order_id, report.filled_qty, report.avg_price
    if report.status is OrderStatus.FILLED:
        return EntryFilled(pending_id, oid, qty, avg)
    if report.status in _ENDED or report.status is OrderStatus.REJECTED:
        if qty > 0:
            return EntryCanceledPartFilled(pending_id, oid, qty, avg)
        if report.status is OrderStatus.REJECTED:
            return EntryRejected(pending_id, 0, "rejected by the matching engine")
        return EntryCanceled(pending_id, oid)
    if qty > 0:
        return EntryPartiallyFilled(pending_id, oid, qty, avg)
    return EntryAccepted(pending_id, oid)


def protection_event(pending_id: PendingId, report: AlgoReport) -> ProtectionReport:
    """A protective algo order's report (answer, query, stream or listing) as the table's event."""
    return ProtectionReport(pending_id, report.client_id, report.status, report.executed_qty)
