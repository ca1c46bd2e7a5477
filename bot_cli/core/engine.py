"""The execution engine's lifecycle: one transition table and step().

``TRANSITIONS[status][event type]`` is the status an event moves an entry to; an
event with no row raises InvalidTransition and changes nothing. Handlers update the
entry's data and may override the target where the table alone cannot decide (the
few rules below, each named ``_rule_*``). After every step, ``converge`` (in
core.protect) derives the protective orders the entry still needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot_cli.core import events as ev
from bot_cli.core.commands import (
    Alert,
    ArchivePending,
    Command,
    PersistPending,
    PlaceEntry,
    PlaceProtection,
    QueryClose,
    QueryEntry,
    QueryPosition,
    QueryProtection,
    CancelProtection,
    ScheduleCheck,
)
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    CloseOrder,
    EntrySpec,
    Leg,
    LegState,
    Millis,
    Note,
    Pending,
    PendingId,
    Policy,
    Status,
    TriggerPolicy,
)
from bot_cli.core.protect import close_command, converge, covered, deadline


R, S, O, PF, P, C, NA = (
    Status.REQUESTED,
    Status.SUBMITTING,
    Status.OPEN,
    Status.PARTIALLY_FILLED,
    Status.PROTECTING,
    Status.CLOSING,
    Status.NEEDS_ATTENTION,
)
_LIVE = (R, S, O, PF, P, C, NA)
_PROTECTING = {PF: PF, P: P, C: C, NA: NA}


def _same(*statuses: Status) -> dict[Status, Status]:
    return {s: s for s in statuses}


TRANSITIONS: dict[type[Any], dict[Status, Status]] = {
    ev.EntryClaimed: {R: S},  # _rule_request_expired
    ev.EntryAccepted: {S: O, O: O, PF: PF, P: P, C: C, NA: NA},
    ev.EntryRejected: {S: Status.NOT_PLACED, O: Status.NOT_PLACED, NA: NA},
    ev.EntryOutcomeUnknown: {S: S},
    ev.EntryNotFound: {S: S, O: O, PF: PF, NA: NA},  # _rule_entry_not_found
    # Partial fills get their own row: protect the filled part while the rest works.
    ev.EntryPartiallyFilled: {S: PF, O: PF, PF: PF, P: P, C: C, NA: NA},
    ev.EntryFilled: {S: P, O: P, PF: P, P: P, C: C, NA: NA},
    # Canceled with no fill after we saw a fill: the evidence contradicts itself.
    ev.EntryCanceled: {S: Status.CANCELED, O: Status.CANCELED, PF: NA, P: NA, NA: NA},
    ev.EntryCanceledPartFilled: {S: P, O: P, PF: P, P: P, C: C, NA: NA},
    ev.ProtectionReport: dict(_PROTECTING),  # _rule_protection_fired
    ev.ProtectionRejected: dict(_PROTECTING),  # _rule_too_many_attempts
    ev.ProtectionWouldTrigger: {PF: C, P: C, C: C, NA: NA},  # _rule_immediate_trigger
    ev.ProtectionOutcomeUnknown: dict(_PROTECTING),
    ev.ProtectionNotFound: dict(_PROTECTING),
    ev.ProtectionMissing: dict(_PROTECTING),
    ev.ProtectionCanceled: dict(_PROTECTING),
    ev.PositionReport: dict(_PROTECTING),  # _rule_position_flat
    ev.CloseAccepted: {C: C, NA: NA},
    ev.CloseFailed: {C: NA, NA: NA},
    ev.CloseNotFound: {C: C, NA: NA},
    ev.QueryFailed: _same(S, O, PF, P, C, NA),
    ev.CheckDue: _same(S, O, PF, P, C, NA),
    ev.EvidenceConflict: dict.fromkeys((S, O, PF, P, C, NA), NA),
    ev.OperatorDrop: dict.fromkeys(_LIVE, Status.DROPPED),
}

Reacted = tuple[Pending, list[Command]]
Handler = Callable[[Pending, Any, Millis, Policy], Reacted]
_HISTORY_LIMIT = 64


def transition(status: Status, event: ev.Event) -> Status:
    """The table lookup; raises InvalidTransition for an event with no row."""
    row = TRANSITIONS.get(type(event), {})
    if status not in row:
        raise InvalidTransition(
            f"can't handle {type(event).__name__} in {status.name} for {event.pending_id}"
        )
    return row[status]


def open_entry(
    pending_id: PendingId, spec: EntrySpec, now: Millis, recv_window_ms: int
) -> tuple[Pending, list[Command]]:
    """A new entry: persisted first, then sent under its deterministic client id."""
    p = Pending(pending_id, spec, S, now, now, recv_window_ms, history=(Note(now, "entry requested"),))
    return p, [PersistPending(p, new=True), _place_entry(p)]


def request_entry(
    pending_id: PendingId, spec: EntrySpec, now: Millis, recv_window_ms: int
) -> tuple[Pending, list[Command]]:
    """An entry for the running daemon to send: persisted only; the daemon claims it."""
    p = Pending(pending_id, spec, R, now, 0, recv_window_ms, history=(Note(now, "entry requested"),))
    return p, [PersistPending(p, new=True)]


def step(p: Pending, event: ev.Event, now: Millis, policy: Policy = Policy()) -> Reacted:
    """One event in, the new entry and the ordered commands out."""
    return step_many(p, [event], now, policy)


def step_many(
    p: Pending, events: Sequence[ev.Event], now: Millis, policy: Policy = Policy()
) -> Reacted:
    """Apply several events, then converge once: one persist for the lot."""
    current, reacts = p, []
    for event in events:
        current, more = apply(current, event, now, policy)
        reacts.extend(more)
    settled, sends = converge(current, now, policy)
    if settled.status is not current.status:
        text = f"{current.status.name} -> {settled.status.name} on convergence: {settled.reason}"
        settled = _note(settled, now, text)
    return settled, _finish(p, settled, reacts + sends, now)


def apply(p: Pending, event: ev.Event, now: Millis, policy: Policy) -> Reacted:
    """The table's target, then the event's handler; no protection decisions here."""
    target = transition(p.status, event)
    moved = replace(p, status=target)
    q, cmds = _HANDLERS[type(event)](moved, event, now, policy)
    if q.status is not p.status:
        q = _note(q, now, f"{p.status.name} -> {q.status.name} on {type(event).__name__}")
    return q, cmds


def _finish(old: Pending, new: Pending, cmds: list[Command], now: Millis) -> list[Command]:
    if new.status.terminal:
        return [*cmds, ArchivePending(new, new.reason or new.status.name.lower())]
    out: list[Command] = [PersistPending(new)] if new != old else []
    out.extend(cmds)
    if new.status is NA and old.status is not NA:
        out.append(Alert(new.pending_id, new.reason))
    return out


def _note(p: Pending, now: Millis, text: str) -> Pending:
    return replace(p, history=(*p.history, Note(now, text))[-_HISTORY_LIMIT:])


def _attention(p: Pending, now: Millis, reason: str) -> Pending:
    return _note(replace(p, status=NA, reason=reason), now, reason)


# -- entry handlers ---------------------------------------------------------------


def _rule_request_expired(p: Pending, e: ev.EntryClaimed, now: Millis, pol: Policy) -> Reacted:
    """Claimed: persisted as SUBMITTING (with its send time) before it is sent, unless stale."""
    if now - p.created_at > pol.request_ttl_ms:
        return replace(p, status=Status.NOT_PLACED, reason="request expired before a daemon took it"), []
    q = replace(p, sent_at=now)
    return q, [_place_entry(q)]


def _place_entry(p: Pending) -> PlaceEntry:
    s = p.spec
    return PlaceEntry(
        p.pending_id, client_id(p.pending_id, Leg.ENTRY), s.symbol, s.side, s.order_type,
        s.quantity, s.price, s.position_side,
    )


def _entry_accepted(p: Pending, e: ev.EntryAccepted, now: Millis, _: Policy) -> Reacted:
    return replace(p, order_id=p.order_id or e.order_id), []


def _entry_rejected(p: Pending, e: ev.EntryRejected, now: Millis, _: Policy) -> Reacted:
    return replace(p, reason=f"entry rejected ({e.code}): {e.message}"), []


def _entry_unknown(p: Pending, e: ev.EntryOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    q = _note(p, now, f"entry outcome unknown ({e.reason}); querying by client id")
    return q, [QueryEntry(p.pending_id, p.spec.symbol, client_id(p.pending_id, Leg.ENTRY))]


def _rule_entry_not_found(p: Pending, e: ev.EntryNotFound, now: Millis, pol: Policy) -> Reacted:
    """-2013 inside timestamp + recvWindow + margin proves nothing: wait and ask again.

    For an acknowledged entry it proves nothing until Binance's archive rule could apply.
    """
    if p.status is NA:
        return p, []
    due = deadline(p.sent_at, p.recv_window_ms, pol)
    if now < due:
        return p, [ScheduleCheck(p.pending_id, max(due, now + pol.recheck_ms))]
    if p.status is S:
        return replace(p, status=Status.NOT_PLACED, reason="never placed: not found after its recvWindow"), []
    if now < p.created_at + pol.archived_after_ms:
        # Acknowledged, so it exists: a read that cannot see it yet (lag) proves nothing.
        q = _note(p, now, "acknowledged entry not visible to a query; asking again")
        return q, [ScheduleCheck(p.pending_id, now + pol.not_visible_recheck_ms)]
    if e.position is not None and e.position == 0 and p.filled_qty == 0:
        return replace(p, status=Status.CANCELED, reason="entry order gone and position flat"), []
    if e.position is not None and e.position == 0:
        return replace(p, status=C, reason="entry order gone and position already flat"), []
    return _attention(p, now, "entry order not found on the exchange and the position does not settle it"), []


def _entry_fill(p: Pending, e: Any, now: Millis, _: Policy) -> Reacted:
    filled = max(p.filled_qty, e.filled_qty)
    avg = e.avg_price if e.filled_qty >= p.filled_qty and e.avg_price else p.avg_price
    return replace(p, order_id=p.order_id or e.order_id, filled_qty=filled, avg_price=avg), []


def _entry_canceled(p: Pending, e: ev.EntryCanceled, now: Millis, _: Policy) -> Reacted:
    if p.status is NA and p.filled_qty > 0:
        return _attention(p, now, "exchange says canceled with no fill, but fills were seen"), []
    return replace(p, reason="canceled with no fill"), []


# -- protection handlers ----------------------------------------------------------


def _without(p: Pending, cid: str) -> Pending:
    return replace(p, protections=tuple(x for x in p.protections if x.client_id != cid))


def _with_leg_state(p: Pending, cid: str, state: LegState, sent_at: Millis | None = None) -> Pending:
    legs = tuple(
        replace(x, state=state, sent_at=x.sent_at if sent_at is None else sent_at)
        if x.client_id == cid else x
        for x in p.protections
    )
    return replace(p, protections=legs)


def _rule_protection_fired(p: Pending, e: ev.ProtectionReport, now: Millis, _: Policy) -> Reacted:
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    if e.status.value == "NEW" and leg.state is LegState.CANCELING:
        return p, [CancelProtection(p.pending_id, e.client_id)]  # still open: cancel (again)
    if e.status.value == "NEW":  # refusals stop counting once a whole generation is live
        q = _with_leg_state(p, e.client_id, LegState.LIVE)
        return (replace(q, attempts=0) if covered(q) else q), []
    q = _without(p, e.client_id)
    if leg.state is LegState.CANCELING:
        return q, []
    if e.status.fired and p.status is P:
        return replace(q, status=C, reason=f"{leg.leg.name} triggered"), []
    if e.status.fired and p.status is C:  # closing anyway: the protection closed it first
        return _note(q, now, f"{leg.leg.name} triggered while closing"), []
    if e.status.fired:
        return _attention(q, now, f"{leg.leg.name} triggered while the entry is still working"), []
    q = _note(q, now, f"{e.client_id} is {e.status.value}; protecting again")
    return q, [QueryPosition(p.pending_id, p.spec.symbol, p.spec.position_side)]


def _rule_too_many_attempts(p: Pending, e: ev.ProtectionRejected, now: Millis, pol: Policy) -> Reacted:
    attempts = p.attempts + 1
    q = _note(_without(p, e.client_id), now, f"{e.client_id} rejected ({e.code}): {e.message}")
    if attempts >= pol.max_protection_attempts:
        return _attention(replace(q, attempts=attempts), now, f"protection refused {attempts} times; last ({e.code}) {e.message}"), []
    retry_at = now + pol.recheck_ms * attempts
    return replace(q, attempts=attempts, retry_at=retry_at), [ScheduleCheck(p.pending_id, retry_at)]


def _rule_immediate_trigger(p: Pending, e: ev.ProtectionWouldTrigger, now: Millis, pol: Policy) -> Reacted:
    leg = p.find_leg(e.client_id)
    q = _without(p, e.client_id)
    seen = f"{e.client_id} trigger {leg.trigger_price if leg else '?'} already crossed ({e.code})"
    if p.status is NA or q.close is not None:
        return _note(q, now, seen), []
    if pol.on_immediate_trigger is TriggerPolicy.ALERT:
        return _attention(q, now, f"{seen}; policy alert: position left as is"), []
    gen = q.gen + 1
    close = CloseOrder(client_id(p.pending_id, Leg.CLOSE, gen), q.filled_qty, LegState.SENDING, now)
    q = _note(replace(q, gen=gen, close=close, reason=f"{seen}; closed at market"), now, f"{seen}; policy close")
    return q, [close_command(q, close)]


def _protection_unknown(p: Pending, e: ev.ProtectionOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    if p.find_leg(e.client_id) is None:
        return p, []
    q = _note(_with_leg_state(p, e.client_id, LegState.UNKNOWN), now, f"{e.client_id} outcome unknown ({e.reason})")
    return q, [QueryProtection(p.pending_id, e.client_id)]


def _protection_not_found(p: Pending, e: ev.ProtectionNotFound, now: Millis, pol: Policy) -> Reacted:
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    due = deadline(leg.sent_at, p.recv_window_ms, pol)
    if now < due:
        return p, [ScheduleCheck(p.pending_id, due)]
    if leg.state is LegState.CANCELING or p.status is C:  # closing: nothing to protect
        return _without(p, e.client_id), []
    q = _with_leg_state(p, e.client_id, LegState.SENDING, now)
    s = p.spec
    send = PlaceProtection(
        p.pending_id, leg.client_id, leg.leg, s.symbol, s.side.opposite,
        leg.quantity, leg.trigger_price, s.position_side,
    )
    return _note(q, now, f"{e.client_id} never landed; sending it again"), [send]


def _protection_missing(p: Pending, e: ev.ProtectionMissing, now: Millis, pol: Policy) -> Reacted:
    leg = p.find_leg(e.client_id)
    if leg is None or leg.state is LegState.CANCELING:
        return _without(p, e.client_id), []
    q = _note(_without(p, e.client_id), now, f"{e.client_id} no longer open")
    return q, [QueryPosition(p.pending_id, p.spec.symbol, p.spec.position_side)]


def _protection_canceled(p: Pending, e: ev.ProtectionCanceled, now: Millis, _: Policy) -> Reacted:
    return _without(p, e.client_id), []


def _rule_position_flat(p: Pending, e: ev.PositionReport, now: Millis, _: Policy) -> Reacted:
    """Flat (or turned the other way): nothing of this entry is left to protect."""
    amount = e.amount if p.spec.side.value == "BUY" else -e.amount
    if amount > 0 or p.status in (C, NA):
        return p, []
    if p.status is PF:
        return _attention(p, now, "position is flat while the entry is still working"), []
    return replace(p, status=C, reason="position already flat: nothing to protect"), []


# -- close and housekeeping -------------------------------------------------------


def _close_accepted(p: Pending, e: ev.CloseAccepted, now: Millis, _: Policy) -> Reacted:
    if p.close is None:
        return p, []
    return replace(p, close=replace(p.close, state=LegState.LIVE)), []


def _close_failed(p: Pending, e: ev.CloseFailed, now: Millis, _: Policy) -> Reacted:
    return _attention(p, now, f"market close failed: {e.reason}"), []


def _close_not_found(p: Pending, e: ev.CloseNotFound, now: Millis, pol: Policy) -> Reacted:
    if p.close is None or p.close.state is LegState.LIVE:
        return p, []
    due = deadline(p.close.sent_at, p.recv_window_ms, pol)
    if now < due:
        return p, [ScheduleCheck(p.pending_id, due)]
    close = replace(p.close, state=LegState.SENDING, sent_at=now)
    return replace(p, close=close), [close_command(p, close)]


def _query_failed(p: Pending, e: ev.QueryFailed, now: Millis, pol: Policy) -> Reacted:
    return _note(p, now, f"query failed ({e.reason})"), [ScheduleCheck(p.pending_id, now + pol.recheck_ms)]


def _check_due(p: Pending, e: ev.CheckDue, now: Millis, _: Policy) -> Reacted:
    """Ask again about everything whose outcome is still open."""
    cmds: list[Command] = []
    if p.status in (S, O):
        cmds.append(QueryEntry(p.pending_id, p.spec.symbol, client_id(p.pending_id, Leg.ENTRY)))
    for leg in p.protections:
        if leg.state in (LegState.SENDING, LegState.UNKNOWN):
            cmds.append(QueryProtection(p.pending_id, leg.client_id))
        elif leg.state is LegState.CANCELING:
            cmds.append(CancelProtection(p.pending_id, leg.client_id))
    if p.close is not None and p.close.state is not LegState.LIVE:
        cmds.append(QueryClose(p.pending_id, p.spec.symbol, p.close.client_id))
    return p, cmds


def _evidence_conflict(p: Pending, e: ev.EvidenceConflict, now: Millis, _: Policy) -> Reacted:
    return _attention(p, now, f"the exchange contradicts the journal: {e.detail}"), []


def _operator_drop(p: Pending, e: ev.OperatorDrop, now: Millis, _: Policy) -> Reacted:
    return replace(p, reason=e.reason), []


_HANDLERS: dict[type[Any], Handler] = {
    ev.EntryClaimed: _rule_request_expired,
    ev.EntryAccepted: _entry_accepted,
    ev.EntryRejected: _entry_rejected,
    ev.EntryOutcomeUnknown: _entry_unknown,
    ev.EntryNotFound: _rule_entry_not_found,
    ev.EntryPartiallyFilled: _entry_fill,
    ev.EntryFilled: _entry_fill,
    ev.EntryCanceled: _entry_canceled,
    ev.EntryCanceledPartFilled: _entry_fill,
    ev.ProtectionReport: _rule_protection_fired,
    ev.ProtectionRejected: _rule_too_many_attempts,
    ev.ProtectionWouldTrigger: _rule_immediate_trigger,
    ev.ProtectionOutcomeUnknown: _protection_unknown,
    ev.ProtectionNotFound: _protection_not_found,
    ev.ProtectionMissing: _protection_missing,
    ev.ProtectionCanceled: _protection_canceled,
    ev.PositionReport: _rule_position_flat,
    ev.CloseAccepted: _close_accepted,
    ev.CloseFailed: _close_failed,
    ev.CloseNotFound: _close_not_found,
    ev.QueryFailed: _query_failed,
    ev.CheckDue: _check_due,
    ev.EvidenceConflict: _evidence_conflict,
    ev.OperatorDrop: _operator_drop,
}
assert _HANDLERS.keys() == TRANSITIONS.keys()
