"""The lifecycle's handlers for protective legs and closes (the table is in core.engine).

A handler updates the entry's data and may override the table's target where the table
alone cannot decide; each such rule is named ``rule_*``. Protection decisions (what to
place, cancel or close next) are left to core.protect.converge.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core import events as ev
from bot_cli.core.commands import (
    CancelEntry,
    CancelProtection,
    Command,
    QueryClose,
    QueryPosition,
    QueryProtection,
    ScheduleCheck,
)
from bot_cli.core.history import attention, note
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    AlgoStatus,
    Exit,
    Leg,
    LegState,
    Millis,
    Pending,
    Policy,
    Status,
    TriggerPolicy,
)
from bot_cli.core.protect import close_command, covered, deadline, protection_command
from bot_cli.core.retry import backoff_ms


Reacted = tuple[Pending, list[Command]]
_ACKED = (LegState.LIVE, LegState.CANCELING, LegState.FIRED)


def without(p: Pending, cid: str) -> Pending:
    return replace(p, protections=tuple(x for x in p.protections if x.client_id != cid))


def with_leg_state(p: Pending, cid: str, state: LegState, sent_at: Millis | None = None) -> Pending:
    legs = tuple(
        replace(x, state=state, sent_at=x.sent_at if sent_at is None else sent_at)
        if x.client_id == cid else x
        for x in p.protections
    )
    return replace(p, protections=legs)


def add_exit(p: Pending, key: str, quantity: Decimal) -> Pending:
    """Record what one of its orders executed; the same order twice counts once."""
    kept = tuple(x for x in p.exits if x.key != key)
    return replace(p, exits=(*kept, Exit(key, quantity)))


def sent_as(p: Pending, sent_at: Millis, recv_window_ms: int) -> Pending:
    """The send time and recvWindow the request actually carried, where later than decided."""
    return replace(p, sent_at=max(p.sent_at, sent_at), recv_window_ms=max(p.recv_window_ms, recv_window_ms))


def cancel_entry(p: Pending) -> CancelEntry:
    return CancelEntry(p.pending_id, p.spec.symbol, client_id(p.pending_id, Leg.ENTRY))


def _query_position(p: Pending) -> QueryPosition:
    return QueryPosition(p.pending_id, p.spec.symbol, p.spec.position_side)


# -- protective legs --------------------------------------------------------------


def rule_protection_report(p: Pending, e: ev.ProtectionReport, now: Millis, _: Policy) -> Reacted:
    """NEW: live. Fired: the entry exits (siblings cancelled). Gone otherwise: read the share."""
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    if e.status is AlgoStatus.NEW:
        if leg.state is LegState.CANCELING:
            return p, [CancelProtection(p.pending_id, e.client_id)]  # still open: cancel (again)
        if leg.state is LegState.FIRED:
            return p, []  # a stale read: it has fired
        q = with_leg_state(p, e.client_id, LegState.LIVE)
        return (replace(q, attempts=0, transient=0) if covered(q) else q), []
    if e.status.fired:
        return _fired(p, e, now, leg.leg.name, leg.quantity), []
    q = without(p, e.client_id)
    if leg.state is LegState.CANCELING:
        return q, []
    q = note(q, now, f"{e.client_id} is {e.status.value}; reading the position before protecting again")
    return replace(q, verify_share=True), [_query_position(q)]


def _fired(p: Pending, e: ev.ProtectionReport, now: Millis, name: str, quantity: Decimal) -> Pending:
    if e.status is AlgoStatus.FINISHED:
        executed = e.executed_qty if e.executed_qty is not None else quantity
        q = add_exit(without(p, e.client_id), e.client_id, executed)
        q = note(q, now, f"{name} {e.client_id} finished: executed {executed}")
    else:
        q = note(with_leg_state(p, e.client_id, LegState.FIRED), now, f"{name} {e.client_id} {e.status.value}")
    if p.status in (Status.EXITING, Status.NEEDS_ATTENTION):
        return q
    return replace(q, status=Status.EXITING, reason=f"{name} triggered")


def rule_too_many_attempts(p: Pending, e: ev.ProtectionRejected, now: Millis, pol: Policy) -> Reacted:
    """Only definite refusals count; after max_protection_attempts a human must look."""
    attempts = p.attempts + 1
    q = note(without(p, e.client_id), now, f"{e.client_id} rejected ({e.code}): {e.message}")
    if attempts >= pol.max_protection_attempts:
        text = f"protection refused {attempts} times; last ({e.code}) {e.message}"
        return attention(replace(q, attempts=attempts), now, text), []
    retry_at = now + pol.recheck_ms * attempts
    return replace(q, attempts=attempts, retry_at=retry_at), [ScheduleCheck(p.pending_id, retry_at)]


def protection_deferred(p: Pending, e: ev.ProtectionDeferred, now: Millis, pol: Policy) -> Reacted:
    """Not executed, not refused: try again after a backoff, however many times it takes."""
    if p.find_leg(e.client_id) is None:
        return p, []
    failures = p.transient + 1
    retry_at = now + backoff_ms(failures, e.retry_after_ms, pol)
    q = note(without(p, e.client_id), now, f"{e.client_id} not sent ({e.reason}); again at +{retry_at - now} ms")
    return replace(q, transient=failures, retry_at=retry_at), [ScheduleCheck(p.pending_id, retry_at)]


def rule_immediate_trigger(p: Pending, e: ev.ProtectionWouldTrigger, now: Millis, pol: Policy) -> Reacted:
    """-2021 / -4142: the policy closes the entry's share at market (or alerts)."""
    leg = p.find_leg(e.client_id)
    q = without(p, e.client_id)
    seen = f"{e.client_id} trigger {leg.trigger_price if leg else '?'} already crossed ({e.code})"
    if p.status is Status.NEEDS_ATTENTION or q.flatten:
        return note(q, now, seen), []
    if pol.on_immediate_trigger is TriggerPolicy.ALERT:
        return attention(q, now, f"{seen}; policy alert: position left as is"), []
    q = note(replace(q, flatten=True, reason=f"{seen}; closed at market"), now, f"{seen}; policy close")
    return q, ([] if q.entry_done else [cancel_entry(q)])


def protection_unknown(p: Pending, e: ev.ProtectionOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    q = with_leg_state(p, e.client_id, LegState.UNKNOWN, max(leg.sent_at, e.sent_at))
    q = replace(q, recv_window_ms=max(p.recv_window_ms, e.recv_window_ms))
    q = note(q, now, f"{e.client_id} outcome unknown ({e.reason})")
    return q, [QueryProtection(p.pending_id, e.client_id)]


def protection_not_found(p: Pending, e: ev.ProtectionNotFound, now: Millis, pol: Policy) -> Reacted:
    """Not found by id. Never sent for sure only after its deadline; an acknowledged leg is
    only not visible yet (read lag) until read_lag_ms, then cancelled by id before any new one."""
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    if e.after_cancel:  # neither open nor found: it may have fired unseen, so the position says
        q = note(without(p, e.client_id), now, f"{e.client_id} neither open nor found; reading the position")
        return replace(q, verify_share=True), [_query_position(q)]
    if leg.state in _ACKED:
        if now < leg.sent_at + pol.read_lag_ms and leg.state is not LegState.CANCELING:
            q = note(p, now, f"{e.client_id} acknowledged but not visible; asking again")
            return q, [ScheduleCheck(p.pending_id, now + pol.recheck_ms)]
        said = f"{e.client_id} not visible; cancelling it by id"
        q = note(with_leg_state(p, e.client_id, LegState.CANCELING), now, said)
        return replace(q, verify_share=True), [CancelProtection(p.pending_id, e.client_id)]
    due = deadline(leg.sent_at, p.recv_window_ms, pol)
    if now < due:
        return p, [ScheduleCheck(p.pending_id, due)]
    if p.status is Status.EXITING:  # winding down: nothing to protect
        return without(p, e.client_id), []
    said = f"{e.client_id} never landed; sending it again"
    q = note(with_leg_state(p, e.client_id, LegState.SENDING, now), now, said)
    return q, [protection_command(q, leg)]


def protection_missing(p: Pending, e: ev.ProtectionMissing, now: Millis, pol: Policy) -> Reacted:
    """An acknowledged leg is gone and what it executed is unknown: read the share first."""
    leg = p.find_leg(e.client_id)
    if leg is None or leg.state is LegState.CANCELING:
        return without(p, e.client_id), []
    q = note(without(p, e.client_id), now, f"{e.client_id} no longer open")
    return replace(q, verify_share=True), [_query_position(q)]


def protection_canceled(p: Pending, e: ev.ProtectionCanceled, now: Millis, _: Policy) -> Reacted:
    q = without(p, e.client_id)
    if q.verify_share:  # it was cancelled because it could not be seen: read the share
        return q, [_query_position(q)]
    return q, []


def position_report(p: Pending, e: ev.PositionReport, now: Millis, _: Policy) -> Reacted:
    """The entry's allocated part of the position: less than its share means the position
    was reduced outside its own orders (by hand, liquidation, ADL, another entry's leg)."""
    q = replace(p, verify_share=False)
    lost = p.share - e.amount
    if lost <= 0:
        return q, []
    q = note(add_exit(q, f"external:{now}", lost), now, f"position share {e.amount}: {lost} closed outside its orders")
    if q.share == 0 and q.status not in (Status.EXITING, Status.NEEDS_ATTENTION) and q.entry_done:
        q = replace(q, status=Status.EXITING, reason="position closed outside the bot")
    return q, []


# -- closes ---------------------------------------------------------------------------


def close_accepted(p: Pending, e: ev.CloseAccepted, now: Millis, _: Policy) -> Reacted:
    if p.close is None:
        return p, []
    q = add_exit(replace(p, close=None, transient=0), p.close.client_id, p.close.quantity)
    return note(q, now, f"close {p.close.client_id} of {p.close.quantity} accepted"), []


# A reduce-only close refused because there is nothing (left) to reduce: a leg or another
# close took the position first. The position read decides; only repeated refusals park it.
NOTHING_TO_REDUCE = (-2022, -4118)


def rule_close_failed(p: Pending, e: ev.CloseFailed, now: Millis, pol: Policy) -> Reacted:
    q = replace(p, close=None)
    if e.code in NOTHING_TO_REDUCE and p.status is Status.EXITING and p.attempts + 1 < pol.max_protection_attempts:
        q = replace(q, attempts=p.attempts + 1, verify_share=True)
        q = note(q, now, f"close refused ({e.reason}); reading the position")
        return q, [_query_position(q)]
    return attention(q, now, f"market close refused: {e.reason}"), []


def close_deferred(p: Pending, e: ev.CloseDeferred, now: Millis, pol: Policy) -> Reacted:
    """Not executed: the same share is closed again after a backoff, never given up."""
    failures = p.transient + 1
    retry_at = now + backoff_ms(failures, e.retry_after_ms, pol)
    q = note(replace(p, close=None, transient=failures, retry_at=retry_at), now, f"close not sent ({e.reason})")
    return q, [ScheduleCheck(p.pending_id, retry_at)]


def close_unknown(p: Pending, e: ev.CloseOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    if p.close is None:
        return p, []
    close = replace(p.close, state=LegState.UNKNOWN, sent_at=max(p.close.sent_at, e.sent_at))
    q = replace(p, close=close, recv_window_ms=max(p.recv_window_ms, e.recv_window_ms))
    q = note(q, now, f"close outcome unknown ({e.reason}); asking by its id")
    return q, [QueryClose(p.pending_id, p.spec.symbol, p.close.client_id)]


def close_not_found(p: Pending, e: ev.CloseNotFound, now: Millis, pol: Policy) -> Reacted:
    if p.close is None:
        return p, []
    due = deadline(p.close.sent_at, p.recv_window_ms, pol)
    if now < due:
        return p, [ScheduleCheck(p.pending_id, due)]
    close = replace(p.close, state=LegState.SENDING, sent_at=now)
    return replace(p, close=close), [close_command(p, close)]
