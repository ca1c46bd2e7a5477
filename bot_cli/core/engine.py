"""The execution engine's lifecycle: one transition table and step().

``TRANSITIONS[event type][status]`` is the status an event moves an entry to; an event
with no row raises InvalidTransition and changes nothing. Handlers update the entry's
data and may override the target where the table alone cannot decide (the rules named
``rule_*``, here and in core.rules). After every step, ``converge`` (core.protect) derives
the orders the entry still needs and may move it along a state-triggered row
(``CONVERGENCE``). ``step`` checks every status change against the two tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot_cli.core import events as ev
from bot_cli.core import rules
from bot_cli.core.commands import (
    Alert,
    ArchivePending,
    Command,
    PersistPending,
    QueryClose,
    QueryEntry,
    QueryPosition,
    QueryProtection,
    ScheduleCheck,
    Send,
)
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.history import OPERATOR, attention, note
from bot_cli.core.ids import client_id
from bot_cli.core.model import UNEXPLAINED, EntrySpec, Leg, LegState, Millis, Note, Pending, PendingId, Policy, Status
from bot_cli.core.protect import at_rest, cancel_command, converge, covered, deadline
from bot_cli.core.retry import backoff_ms


R, S, OP, PF, P, PR, X, NA = (
    Status.REQUESTED,
    Status.SUBMITTING,
    Status.OPEN,
    Status.PARTIALLY_FILLED,
    Status.PROTECTING,
    Status.PROTECTED,
    Status.EXITING,
    Status.NEEDS_ATTENTION,
)
_LIVE = (R, S, OP, PF, P, PR, X, NA)
_ASKED = (S, OP, PF, P, PR, X, NA)
_HOLDING = {PF: PF, P: P, PR: PR, X: X, NA: NA}


def _same(*statuses: Status) -> dict[Status, Status]:
    return {s: s for s in statuses}


TRANSITIONS: dict[type[Any], dict[Status, Status]] = {
    ev.EntryClaimed: {R: S},  # _rule_request_expired
    ev.EntryAccepted: {S: OP, OP: OP, **_HOLDING},
    ev.EntryRejected: {S: Status.NOT_PLACED, OP: Status.NOT_PLACED, NA: NA},
    # The stream may have said what became of the order before the send's own answer came.
    ev.EntryOutcomeUnknown: _same(S, OP, PF, P, PR, X, NA),
    ev.EntryNotFound: {S: S, OP: OP, PF: PF, X: X, NA: NA},  # _rule_entry_not_found
    # Partial fills get their own row: protect the filled part while the rest works.
    ev.EntryPartiallyFilled: {S: PF, OP: PF, **_HOLDING},
    ev.EntryFilled: {S: P, OP: P, PF: P, P: P, PR: PR, X: X, NA: NA},
    # Canceled with no fill after we saw a fill: the evidence contradicts itself.
    ev.EntryCanceled: {S: Status.CANCELED, OP: Status.CANCELED, PF: NA, P: NA, PR: NA, X: NA, NA: NA},
    ev.EntryCanceledPartFilled: {S: P, OP: P, PF: P, P: P, PR: PR, X: X, NA: NA},
    ev.ProtectionReport: dict(_HOLDING),  # rules.rule_protection_report
    ev.ProtectionDeferred: dict(_HOLDING),
    ev.ProtectionLimited: dict(_HOLDING),
    ev.ProtectionRejected: dict(_HOLDING),  # rules.rule_too_many_attempts
    ev.ProtectionWouldTrigger: {PF: X, P: X, PR: X, X: X, NA: NA},  # rules.rule_immediate_trigger
    ev.ProtectionOutcomeUnknown: dict(_HOLDING),
    ev.ProtectionNotFound: dict(_HOLDING),
    ev.ProtectionCanceled: dict(_HOLDING),
    ev.PositionReport: dict(_HOLDING),
    ev.PositionUnconfirmed: dict(_HOLDING),
    ev.ShareTaken: dict(_HOLDING),  # rules.share_taken
    ev.CloseReport: {X: X, NA: NA},
    ev.CloseFailed: {X: X, NA: NA},  # rules.rule_close_failed
    ev.CloseDeferred: {X: X, NA: NA},
    ev.CloseOutcomeUnknown: {X: X, NA: NA},
    ev.CloseNotFound: {X: X, NA: NA},
    ev.QueryFailed: _same(*_ASKED),
    ev.SendDelayed: _same(*_ASKED),
    ev.CheckDue: _same(*_ASKED),
    ev.EvidenceConflict: dict.fromkeys(_ASKED, NA),
    # Cancel: S/OP/PF keep their status until the cancel's answer says what filled.
    ev.OperatorCancel: {R: Status.CANCELED, S: S, OP: OP, PF: PF, P: P, PR: PR, X: X, NA: NA},
    ev.OperatorClose: {PF: X, P: X, PR: X, X: X, NA: X},
    # Winding down or parked, there is nothing to move: the operator closes or looks instead.
    ev.OperatorAmend: _same(R, S, OP, PF, P, PR),
    ev.OperatorDrop: dict.fromkeys(_LIVE, Status.DROPPED),
}

# Where a rule may decide instead of the table: the only other targets it may choose.
RULES: dict[type[Any], frozenset[Status]] = {
    ev.EntryClaimed: frozenset({Status.NOT_PLACED}),  # the request expired, or would net
    ev.EntryNotFound: frozenset({Status.NOT_PLACED, Status.CANCELED, X, NA}),  # the window rules
    ev.EntryCanceled: frozenset({NA}),  # canceled with no fill after fills were seen
    ev.ProtectionReport: frozenset({X}),  # a leg fired: wind its siblings down
    ev.ProtectionRejected: frozenset({NA}),  # refused max_protection_attempts times
    ev.ProtectionWouldTrigger: frozenset({NA}),  # the alert policy
    ev.PositionReport: frozenset({X}),  # the share went flat outside its orders
    ev.ShareTaken: frozenset({X}),  # another entry's leg closed all of its share
    ev.OperatorCancel: frozenset({X}),  # cancel and close what filled
    ev.CloseFailed: frozenset({NA}),  # refused for good: a human must look
}

# State-triggered rows: the moves convergence makes on its own, each with its allowed targets.
CONVERGENCE: dict[Status, frozenset[Status]] = {
    PF: frozenset({X}),  # its share went flat with nothing left working; or closing what fills
    P: frozenset({PR, X}),  # covered: resting; share flat: winding down
    PR: frozenset({P, X}),  # the share changed: a new generation; flat: winding down
    X: frozenset({PF, P, Status.CLOSED}),  # a fired leg left part of it; or done
}

Reacted = tuple[Pending, list[Command]]
Handler = Callable[[Pending, Any, Millis, Policy], Reacted]


def transition(status: Status, event: ev.Event) -> Status:
    """The table lookup; raises InvalidTransition for an event with no row."""
    row = TRANSITIONS.get(type(event), {})
    if status not in row:
        raise InvalidTransition(f"can't handle {type(event).__name__} in {status.name} for {event.pending_id}")
    return row[status]


def open_entry(pending_id: PendingId, spec: EntrySpec, now: Millis, recv_window_ms: int) -> Reacted:
    """A new entry: persisted first, then sent under its deterministic client id."""
    p = Pending(pending_id, spec, S, now, now, recv_window_ms, history=(Note(now, "entry requested"),))
    return p, [PersistPending(p, new=True), rules.place_entry(p)]


def adopt_entry(
    pending_id: PendingId, spec: EntrySpec, avg_price: Decimal | None, now: Millis, recv_window_ms: int,
    *, policy: Policy = Policy(),
) -> Reacted:
    """A part of a position no entry holds, made an entry of its own (`bot adopt`): it has no
    entry order, its share is ``spec.quantity`` from the start; persisted before its legs go."""
    p, _ = request_adoption(pending_id, spec, avg_price, now, recv_window_ms)
    p, sends = converge(p, now, policy)
    return p, [PersistPending(p, new=True), *sends]


def request_adoption(
    pending_id: PendingId, spec: EntrySpec, avg_price: Decimal | None, now: Millis, recv_window_ms: int
) -> Reacted:
    """The adopted entry as written for a running daemon, its legs left for the daemon to place."""
    said = f"adopted {spec.quantity} {spec.symbol} of a position no entry held"
    p = Pending(
        pending_id, spec, P, now, now, recv_window_ms, filled_qty=spec.quantity, avg_price=avg_price,
        entry_done=True, history=(Note(now, said),),
    )  # fmt: skip
    return p, [PersistPending(p, new=True)]


def request_entry(pending_id: PendingId, spec: EntrySpec, now: Millis, recv_window_ms: int) -> Reacted:
    """An entry for the running daemon to send: persisted only; the daemon claims it."""
    p = Pending(pending_id, spec, R, now, 0, recv_window_ms, history=(Note(now, "entry requested"),))
    return p, [PersistPending(p, new=True)]


def step(p: Pending, event: ev.Event, now: Millis, policy: Policy = Policy()) -> Reacted:
    """One event in, the new entry and the ordered commands out."""
    return step_many(p, [event], now, policy)


def step_many(p: Pending, events: Sequence[ev.Event], now: Millis, policy: Policy = Policy()) -> Reacted:
    """Apply several events, then converge once: one persist for the lot."""
    current, reacts = p, []
    for event in events:
        current, more = apply(current, event, now, policy)
        reacts.extend(more)
    settled, sends = current, []
    for _ in range(3):  # a move by convergence may need one more convergence (flat -> wind down)
        before = settled
        settled, more = converge(before, now, policy)
        sends.extend(more)
        if settled.status is before.status:
            break
        if settled.status not in CONVERGENCE.get(before.status, frozenset()):
            raise InvalidTransition(f"convergence moved {p.pending_id} {before.status.name} -> {settled.status.name}")
        settled = note(settled, now, f"{before.status.name} -> {settled.status.name} on convergence: {settled.reason}")
    settled, alert = (settled, "") if settled.status.terminal else _exposure(settled, now, policy)
    return settled, _finish(p, settled, reacts + sends, now, policy, alert=alert)


def facts(p: Pending, events: Sequence[ev.Event], now: Millis, policy: Policy = Policy()) -> Pending:
    """The entry once ``events`` are applied, before convergence decides anything new: what the
    exchange said, and nothing the bot has not sent yet. Raises InvalidTransition as step does."""
    for event in events:
        p, _ = apply(p, event, now, policy)
    return p


def apply(p: Pending, event: ev.Event, now: Millis, policy: Policy) -> Reacted:
    """The table's target, then the event's handler; no protection decisions here."""
    target = transition(p.status, event)
    q, cmds = _HANDLERS[type(event)](replace(p, status=target), event, now, policy)
    if q.status is not target and q.status not in RULES.get(type(event), frozenset()):
        raise InvalidTransition(f"{type(event).__name__} moved {p.pending_id} {p.status.name} -> {q.status.name}")
    if q.status is not p.status:
        q = note(q, now, f"{p.status.name} -> {q.status.name} on {type(event).__name__}")
    return q, cmds


def _finish(
    old: Pending, new: Pending, cmds: list[Command], now: Millis, pol: Policy, *, alert: str
) -> list[Command]:
    if new.status.terminal:
        return [*cmds, ArchivePending(new, new.reason or new.status.name.lower())]
    out: list[Command] = [PersistPending(new)] if new != old else []
    out.extend(cmds)
    if new.status is NA and old.status is not NA:
        out.append(Alert(new.pending_id, new.reason))
        if not new.entry_done and old.status in (S, OP, PF):
            out.append(rules.cancel_entry(new))  # parked: its order must not keep filling unwatched
    if alert:
        out.append(Alert(new.pending_id, alert, "unprotected"))
    if not at_rest(new) and not any(isinstance(c, Send | _ASKS | ScheduleCheck) for c in out):
        out.append(ScheduleCheck(new.pending_id, max(new.retry_at, now + pol.recheck_ms)))  # every wait has a wake-up
    return out


_ASKS = QueryEntry | QueryProtection | QueryClose | QueryPosition


def _exposure(p: Pending, now: Millis, pol: Policy) -> tuple[Pending, str]:
    """Track how long a filled share has gone without a full stop; alert once, keep trying."""
    if p.share == 0 or covered(p):
        return (replace(p, exposed_since=0, alerted=False) if p.exposed_since else p), ""
    if not p.exposed_since:
        return replace(p, exposed_since=now), ""
    if not p.alerted and now - p.exposed_since >= pol.unprotected_alert_ms:
        secs = (now - p.exposed_since) // 1000
        return replace(p, alerted=True), f"{p.share} {p.spec.symbol} without a full stop for {secs} s; still trying"
    return p, ""


# -- entry handlers ---------------------------------------------------------------


def _rule_request_expired(p: Pending, e: ev.EntryClaimed, now: Millis, pol: Policy) -> Reacted:
    """Claimed: persisted as SUBMITTING (with its send time) before it is sent, unless stale
    or it would net against another entry's share."""
    if now - p.created_at > pol.request_ttl_ms:
        return replace(p, status=Status.NOT_PLACED, reason="request expired before a daemon took it"), []
    if e.conflict:
        return replace(p, status=Status.NOT_PLACED, reason=f"refused, nothing sent: {e.conflict}"), []
    q = replace(p, sent_at=now)
    return q, [rules.place_entry(q)]


def _entry_accepted(p: Pending, e: ev.EntryAccepted, now: Millis, _: Policy) -> Reacted:
    return replace(p, order_id=p.order_id or e.order_id), []


def _entry_rejected(p: Pending, e: ev.EntryRejected, now: Millis, _: Policy) -> Reacted:
    return replace(p, entry_done=True, reason=f"entry rejected ({e.code}): {e.message}"), []


def _entry_unknown(p: Pending, e: ev.EntryOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    if p.status is not S:  # its fate is known already (the stream was quicker than the answer)
        return note(p, now, f"entry send answered unknown ({e.reason}); the order is known {p.status.value}"), []
    said = f"entry outcome unknown ({e.reason}); querying by client id"
    q = note(rules.sent_as(p, e.sent_at, e.recv_window_ms), now, said)
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
    if p.status is S and e.after_cancel:
        reason = "never placed: not found after its recvWindow, and a cancel by its id found no such order"
        return replace(p, status=Status.NOT_PLACED, reason=reason), []
    if p.status is S:  # a read may lag: the matching engine answers a cancel by id for sure
        q = note(p, now, "not found after its recvWindow: cancelling it by id, in case it landed unseen")
        return q, [rules.cancel_entry(q), ScheduleCheck(p.pending_id, now + pol.recheck_ms)]
    if now < p.created_at + pol.archived_after_ms:
        # Acknowledged, so it exists: a read that cannot see it yet (lag) proves nothing.
        q = note(p, now, "acknowledged entry not visible to a query; asking again")
        return q, [ScheduleCheck(p.pending_id, now + pol.not_visible_recheck_ms)]
    if e.position is not None and e.position == 0 and p.filled_qty == 0:
        return replace(p, status=Status.CANCELED, entry_done=True, reason="entry order gone and position flat"), []
    if e.position is not None and e.position == 0:
        q = rules.add_exit(replace(p, entry_done=True), f"{UNEXPLAINED}{now}", p.share)
        return replace(q, status=X, reason="entry order gone and position already flat"), []
    return attention(p, now, "entry order not found on the exchange and the position does not settle it"), []


def _entry_fill(p: Pending, e: Any, now: Millis, _: Policy) -> Reacted:
    filled = max(p.filled_qty, e.filled_qty)
    avg = e.avg_price if e.filled_qty >= p.filled_qty and e.avg_price else p.avg_price
    done = p.entry_done or not isinstance(e, ev.EntryPartiallyFilled)
    return replace(p, order_id=p.order_id or e.order_id, filled_qty=filled, avg_price=avg, entry_done=done), []


def _entry_canceled(p: Pending, e: ev.EntryCanceled, now: Millis, _: Policy) -> Reacted:
    q = replace(p, entry_done=True)
    if p.filled_qty > 0 and p.status is NA:
        return attention(q, now, "exchange says canceled with no fill, but fills were seen"), []
    return replace(q, reason=q.reason or "canceled with no fill"), []


# -- housekeeping -----------------------------------------------------------------


def _query_failed(p: Pending, e: ev.QueryFailed, now: Millis, pol: Policy) -> Reacted:
    """The same backoff as a deferred send: the exchange's Retry-After, else a short doubling."""
    failures = p.transient + 1
    at = now + backoff_ms(failures, e.retry_after_ms, pol, p.pending_id)
    return replace(note(p, now, f"query failed ({e.reason})"), transient=failures), [ScheduleCheck(p.pending_id, at)]


def _check_due(p: Pending, e: ev.CheckDue, now: Millis, _: Policy) -> Reacted:
    """Ask again about everything whose outcome is still open."""
    cmds: list[Command] = []
    if p.status in (S, OP, PF):  # a send in doubt, or an acknowledged order a read could not see
        cmds.append(QueryEntry(p.pending_id, p.spec.symbol, client_id(p.pending_id, Leg.ENTRY)))
    elif not p.entry_done and (p.flatten or p.status is NA) and p.order_id is not None:
        cmds.append(rules.cancel_entry(p))
    for leg in p.protections:
        if leg.state in (LegState.SENDING, LegState.UNKNOWN, LegState.FIRED):
            cmds.append(QueryProtection(p.pending_id, leg.client_id))
        elif leg.state is LegState.CANCELING:
            cmds.append(cancel_command(p, leg.client_id))
    if p.close is not None:
        cmds.append(QueryClose(p.pending_id, p.spec.symbol, p.close.client_id))
    if p.verify_share:
        cmds.append(QueryPosition(p.pending_id, p.spec.symbol, p.spec.position_side))
    return p, cmds


def _evidence_conflict(p: Pending, e: ev.EvidenceConflict, now: Millis, _: Policy) -> Reacted:
    return attention(p, now, f"the exchange contradicts the journal: {e.detail}"), []


def _operator_cancel(p: Pending, e: ev.OperatorCancel, now: Millis, pol: Policy) -> Reacted:
    """Nothing sent yet: never will be. Otherwise cancel the entry order's rest; with close,
    what filled is closed at market once the cancel says how much."""
    if p.status is Status.CANCELED:  # the table's target for a request nobody sent yet
        return replace(p, entry_done=True, reason="canceled by the operator before it was sent"), []
    said = f"{OPERATOR}cancel the entry order" + (" and close what filled" if e.close else "")
    q = note(replace(p, flatten=p.flatten or e.close), now, said)
    if e.close and p.filled_qty > 0:
        q = replace(q, status=X, reason="closed by the operator")
    return q, ([] if p.entry_done else [rules.cancel_entry(q)])


def _operator_amend(p: Pending, e: ev.OperatorAmend, now: Millis, _: Policy) -> Reacted:
    """The new levels go into the spec (and the journal) before anything is sent; convergence
    then places each moved leg anew and cancels the old once the new is live."""
    s, new = p.spec, e.moved(p.spec)
    pairs: list[tuple[str, Decimal | None, Decimal | None]] = [("stop-loss", s.stop_loss, new.stop_loss)]
    pairs += ([(f"take-profit level {n}", a.price, b.price) for n, (a, b) in enumerate(zip(s.tp_levels, new.tp_levels,
              strict=True), 1)] if new.tp_levels else [("take-profit", s.take_profit, new.take_profit)])  # fmt: skip
    moved = [f"{name} {old} -> {now_}" for name, old, now_ in pairs if old != now_]
    if new.trail != s.trail and new.trail is not None:
        start = f" from {new.trail.activate}" if new.trail.activate else ""
        moved.append(f"trailing stop to {new.trail.callback_pct}%{start}")
    if not moved:
        return p, []
    return note(replace(p, spec=new), now, f"{OPERATOR}move the {', the '.join(moved)}"), []


def _operator_close(p: Pending, e: ev.OperatorClose, now: Millis, _: Policy) -> Reacted:
    """Flatten: the wind-down cancels the entry order's rest, then its legs, then closes the share."""
    q = note(replace(p, status=X, flatten=True, reason="closed by the operator"), now, f"{OPERATOR}close at market")
    return q, ([] if p.entry_done else [rules.cancel_entry(q)])


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
    ev.ProtectionReport: rules.rule_protection_report,
    ev.ProtectionDeferred: rules.protection_deferred,
    ev.ProtectionLimited: rules.protection_limited,
    ev.ProtectionRejected: rules.rule_too_many_attempts,
    ev.ProtectionWouldTrigger: rules.rule_immediate_trigger,
    ev.ProtectionOutcomeUnknown: rules.protection_unknown,
    ev.ProtectionNotFound: rules.protection_not_found,
    ev.ProtectionCanceled: rules.protection_canceled,
    ev.PositionReport: rules.position_report,
    ev.PositionUnconfirmed: rules.position_unconfirmed,
    ev.ShareTaken: rules.share_taken,
    ev.CloseReport: rules.close_report,
    ev.CloseFailed: rules.rule_close_failed,
    ev.CloseDeferred: rules.close_deferred,
    ev.CloseOutcomeUnknown: rules.close_unknown,
    ev.CloseNotFound: rules.close_not_found,
    ev.QueryFailed: _query_failed,
    ev.SendDelayed: rules.send_delayed,
    ev.CheckDue: _check_due,
    ev.EvidenceConflict: _evidence_conflict,
    ev.OperatorCancel: _operator_cancel,
    ev.OperatorAmend: _operator_amend,
    ev.OperatorClose: _operator_close,
    ev.OperatorDrop: _operator_drop,
}
assert _HANDLERS.keys() == TRANSITIONS.keys()
