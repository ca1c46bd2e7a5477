"""Events: everything that can happen to a pending entry, as data.

Outcomes of our own sends come back as events too, and "unknown" is an outcome:
a timeout or an "execution status unknown" answer is EntryOutcomeUnknown, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import (
    ORDER_FINAL,
    PROTECTIVE,
    AlgoReport,
    AlgoStatus,
    ClientId,
    EntrySpec,
    Leg,
    Millis,
    OrderReport,
    OrderStatus,
    PendingId,
    Trail,
)


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
    avg_price: Decimal | None = None  # what its child order filled at, once fired


@dataclass(frozen=True, slots=True)
class ProtectionDeferred:
    """Transient trouble (429, -1008, 503 unavailable, unreachable): not executed, not a refusal."""

    pending_id: PendingId
    client_id: ClientId
    reason: str
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class ProtectionLimited:
    """Refused for an account limit (-4045: 200 open conditional orders): not a refusal of this
    order; retried once room frees, with the SL before the TP, and said loudly."""

    pending_id: PendingId
    client_id: ClientId
    code: int
    message: str
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
class ProtectionCanceled:
    """Our cancel of a superseded protection is done (or it was no longer open)."""

    pending_id: PendingId
    client_id: ClientId


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The entry's part of its position, on proof (core.positions.judge): the orders on that
    position have settled and a fresh read agrees. Zero means its share is flat."""

    pending_id: PendingId
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ShareTaken:
    """Another entry's leg or close executed more than that entry filled (Binance has no OCO:
    both of its legs fired): the extra closed this much of this entry's share, by the share
    rule (core.shares.charge). ``client_id``: the order that did; ``by``: its entry."""

    pending_id: PendingId
    client_id: ClientId
    quantity: Decimal
    by: PendingId
    what: str  # "SL", "TP" or "close"
    price: Decimal | None = None  # what it executed at, where the exchange said


@dataclass(frozen=True, slots=True)
class PositionUnconfirmed:
    """A position read this entry waits for could not be believed yet (orders on the position
    unsettled, or a shortfall not confirmed by a fresh read): read it again later."""

    pending_id: PendingId


@dataclass(frozen=True, slots=True)
class CloseReport:
    """The market close as the exchange reports it: what it executed so far (``z`` /
    ``executedQty``) and whether it is final (filled, expired, canceled)."""

    pending_id: PendingId
    client_id: ClientId
    status: OrderStatus
    executed_qty: Decimal

    @property
    def final(self) -> bool:
        return self.status in ORDER_FINAL


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
    """A read (query, cancel) did not get an answer; try again after a backoff (the exchange's
    Retry-After, when it gave one)."""

    pending_id: PendingId
    reason: str
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class SendDelayed:
    """A send waited longer than ``send_delay_ms`` before it could go (the order budget, another
    answer for the same order): it did not go. ``stamped_at``: the send time it carried; if that
    is still the order's, stamp it anew (persisted) and send it; else a later send replaced it."""

    pending_id: PendingId
    client_id: ClientId
    stamped_at: Millis


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
class OperatorAmend:
    """An operator moves the entry's stop-loss and/or take-profit (checked before it is taken:
    ``ops.amend``). The legs follow: a new leg at the new trigger first, the old one cancelled
    once the new is live."""

    pending_id: PendingId
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    tp_levels: tuple[Decimal, ...] = ()  # new prices of every take-profit level, in order
    trail: Trail | None = None  # a trailing stop to add, or how it trails now

    def moved(self, s: EntrySpec) -> EntrySpec:
        """The entry as the operator asks for it now (what the checks judge, the journal keeps,
        and a request is seen as taken by). Level prices apply only where the count matches."""
        levels = s.tp_levels
        if self.tp_levels and len(self.tp_levels) == len(levels):
            levels = tuple(replace(x, price=price) for x, price in zip(levels, self.tp_levels, strict=True))
        tp = levels[0].price if levels else (s.take_profit if self.take_profit is None else self.take_profit)
        return replace(
            s, stop_loss=s.stop_loss if self.stop_loss is None else self.stop_loss, take_profit=tp,
            tp_levels=levels, trail=s.trail if self.trail is None else self.trail,
        )  # fmt: skip


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
    | ProtectionLimited
    | ProtectionRejected
    | ProtectionWouldTrigger
    | ProtectionOutcomeUnknown
    | ProtectionNotFound
    | ProtectionCanceled
    | PositionReport
    | PositionUnconfirmed
    | ShareTaken
    | CloseReport
    | CloseFailed
    | CloseDeferred
    | CloseOutcomeUnknown
    | CloseNotFound
    | QueryFailed
    | SendDelayed
    | CheckDue
    | EvidenceConflict
    | OperatorCancel
    | OperatorAmend
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
    return ProtectionReport(pending_id, report.client_id, report.status, report.executed_qty, report.avg_price)


def close_event(pending_id: PendingId, report: OrderReport) -> CloseReport:
    """A market close's report: booked by what it executed, never by its quantity."""
    return CloseReport(pending_id, report.client_id, report.status, report.filled_qty)


def of_order(report: OrderReport) -> Event | None:
    """A matching-engine order's report (stream or REST) as the event of the entry whose client
    id it carries; None for an order that is not one of ours."""
    parsed = parse_client_id(report.client_id)
    if parsed is None:
        return None
    if parsed.leg is Leg.ENTRY:
        return entry_event(parsed.pending_id, report)
    if parsed.leg is Leg.CLOSE:
        return close_event(parsed.pending_id, report)
    return None  # a triggered leg's child order: its algo order reports what it executed


def of_algo(report: AlgoReport) -> Event | None:
    """An algo order's report as the event of the entry whose leg it is; None if not ours."""
    parsed = parse_client_id(report.client_id)
    if parsed is None or parsed.leg not in PROTECTIVE:
        return None
    return protection_event(parsed.pending_id, report)
