"""Command -> venue call -> outcome event. The only place a send happens.

Every adapter error is mapped here to the event the core expects; the core, not the
HTTP status, decides what an unknown outcome means.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.model import AlgoStatus, PendingId
from bot_cli.venue import (
    Duplicate,
    LimitReached,
    NotFound,
    OutcomeUnknown,
    Rejected,
    Unavailable,
    Venue,
    VenueError,
    WouldTrigger,
)


@dataclass(frozen=True, slots=True)
class PositionSeen:
    """The entry's position as read (the net of every entry on it); core.positions.judge says
    what it means for each entry's share."""

    pending_id: PendingId
    amount: Decimal


Outcome = list[Any]


async def place_entry(venue: Venue, c: cm.PlaceEntry) -> Outcome:
    pid = c.pending_id
    try:
        report = await venue.place_entry(c)
    except (Duplicate, OutcomeUnknown) as err:
        return [ev.EntryOutcomeUnknown(pid, _why(err), *_sent(err))]
    except (Rejected, Unavailable) as err:  # not executed: not placed, the operator may retry
        return [ev.EntryRejected(pid, err.code, err.message)]
    except VenueError as err:  # auth and the unlisted: not proven either way
        return [ev.EntryOutcomeUnknown(pid, _why(err), *_sent(err))]
    return [ev.entry_event(pid, report)]


async def place_protection(venue: Venue, c: cm.PlaceProtection) -> Outcome:
    pid, cid = c.pending_id, c.client_id
    try:
        report = await venue.place_protection(c)
    except WouldTrigger as err:
        return [ev.ProtectionWouldTrigger(pid, cid, err.code, err.message)]
    except LimitReached as err:  # the account's limit, not this order: again once room frees
        return [ev.ProtectionLimited(pid, cid, err.code, err.message)]
    except Unavailable as err:  # transient: retried with backoff, never a refusal
        return [ev.ProtectionDeferred(pid, cid, _why(err), _ms(err))]
    except Rejected as err:
        return [ev.ProtectionRejected(pid, cid, err.code, err.message)]
    except VenueError as err:  # unknown, duplicate (-4116: it is open), unlisted: query it
        return [ev.ProtectionOutcomeUnknown(pid, cid, _why(err), *_sent(err))]
    return [ev.protection_event(pid, report)]


async def close_position(venue: Venue, c: cm.ClosePosition) -> Outcome:
    try:
        report = await venue.close_position(c)
    except Unavailable as err:
        return [ev.CloseDeferred(c.pending_id, _why(err), _ms(err))]
    except Rejected as err:
        return [ev.CloseFailed(c.pending_id, f"({err.code}) {err.message}", err.code)]
    except VenueError as err:
        return [ev.CloseOutcomeUnknown(c.pending_id, _why(err), *_sent(err))]
    return [ev.close_event(c.pending_id, report)]  # booked by what it executed


async def cancel_entry(venue: Venue, c: cm.CancelEntry) -> Outcome:
    """Cancel the entry order's rest; the answer (or a query, if it is no longer open) says
    what it filled in the end."""
    try:
        report = await venue.cancel_order(c.symbol, c.client_id)
    except NotFound:
        found = await query_entry(venue, cm.QueryEntry(c.pending_id, c.symbol, c.client_id))
        return [replace(e, after_cancel=True) if isinstance(e, ev.EntryNotFound) else e for e in found]
    except VenueError as err:
        return [ev.QueryFailed(c.pending_id, f"cancel {c.client_id}: {_why(err)}", _wait(err))]
    return [ev.entry_event(c.pending_id, report)]


async def cancel_protection(venue: Venue, c: cm.CancelProtection) -> Outcome:
    """Cancel a leg; if it is no longer open it may have fired: its query says what it executed."""
    try:
        await venue.cancel_protection(c.client_id)
    except NotFound:
        found = await query_protection(venue, cm.QueryProtection(c.pending_id, c.client_id))
        return [_after_cancel(c, e) for e in found]
    except VenueError as err:
        return [ev.QueryFailed(c.pending_id, f"cancel {c.client_id}: {_why(err)}", _wait(err))]
    return [ev.ProtectionCanceled(c.pending_id, c.client_id)]


def _after_cancel(c: cm.CancelProtection, e: ev.Event) -> ev.Event:
    """What a query says of a leg its cancel did not find. The cancel is authoritative: a read
    showing it still NEW lags, so it counts as not found (the position then says the rest)."""
    stale = isinstance(e, ev.ProtectionReport) and e.status is AlgoStatus.NEW
    if stale or isinstance(e, ev.ProtectionNotFound):
        return ev.ProtectionNotFound(c.pending_id, c.client_id, after_cancel=True)
    return e


async def query_entry(venue: Venue, c: cm.QueryEntry) -> Outcome:
    return await _query(
        c.pending_id, venue.query_order(c.symbol, c.client_id),
        lambda r: ev.entry_event(c.pending_id, r), ev.EntryNotFound(c.pending_id),
    )


async def query_protection(venue: Venue, c: cm.QueryProtection) -> Outcome:
    return await _query(
        c.pending_id, venue.query_algo(c.client_id),
        lambda r: ev.protection_event(c.pending_id, r),
        ev.ProtectionNotFound(c.pending_id, c.client_id),
    )


async def query_close(venue: Venue, c: cm.QueryClose) -> Outcome:
    return await _query(
        c.pending_id, venue.query_order(c.symbol, c.client_id),
        lambda r: ev.close_event(c.pending_id, r), ev.CloseNotFound(c.pending_id),
    )


async def query_position(venue: Venue, c: cm.QueryPosition) -> Outcome:
    try:
        positions = await venue.positions()
    except VenueError as err:
        return [ev.QueryFailed(c.pending_id, _why(err), _wait(err))]
    amount = positions.get((c.symbol, c.position_side))
    return [PositionSeen(c.pending_id, amount if amount is not None else Decimal(0))]


async def _query(
    pid: PendingId, call: Awaitable[Any], found: Callable[[Any], ev.Event], missing: ev.Event
) -> Outcome:
    try:
        report = await call
    except NotFound:
        return [missing]
    except VenueError as err:
        return [ev.QueryFailed(pid, _why(err), _wait(err))]
    return [found(report)]


def _sent(err: VenueError) -> tuple[int, int]:
    """When the request was signed and the recvWindow it carried; 0 where the adapter did not say."""
    return err.sent_at_ms or 0, err.recv_window_ms or 0


def _ms(err: Unavailable) -> int:
    return int(err.retry_after * 1000)


def _wait(err: VenueError) -> int:
    """How long the exchange asked us to wait (0: it did not say; the core's backoff decides)."""
    return _ms(err) if isinstance(err, Unavailable) else 0


def _why(err: VenueError) -> str:
    code = f" ({err.code})" if err.code else ""
    return f"{type(err).__name__}{code}: {err.message}"


SENDS: dict[type[Any], Callable[[Venue, Any], Awaitable[Outcome]]] = {
    cm.PlaceEntry: place_entry,
    cm.PlaceProtection: place_protection,
    cm.ClosePosition: close_position,
    cm.CancelProtection: cancel_protection,
    cm.CancelEntry: cancel_entry,
    cm.QueryEntry: query_entry,
    cm.QueryProtection: query_protection,
    cm.QueryClose: query_close,
    cm.QueryPosition: query_position,
}
