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
    Alert,
    CancelEntry,
    CancelProtection,
    Command,
    Overdrawn,
    PlaceEntry,
    QueryClose,
    QueryPosition,
    QueryProtection,
    ScheduleCheck,
)
from bot_cli.core.history import attention, note
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    UNEXPLAINED,
    AlgoStatus,
    ClientId,
    Exit,
    Leg,
    LegState,
    Millis,
    Pending,
    Policy,
    ProtectionOrder,
    Status,
    TriggerPolicy,
)
from bot_cli.core.protect import cancel_command, cancel_legs, close_command, covered, deadline, protection_command
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
            return p, [cancel_command(p, e.client_id)]  # still open: cancel (again)
        if leg.state is LegState.FIRED:
            return p, []  # a stale read: it has fired
        q = with_leg_state(p, e.client_id, LegState.LIVE)
        return (replace(q, attempts=0, transient=0) if covered(q) else q), []
    if e.status.fired:
        return _fired(p, e, now, leg)
    q = without(p, e.client_id)
    if leg.state is LegState.CANCELING:
        return q, []
    q = note(q, now, f"{e.client_id} is {e.status.value}; reading the position before protecting again")
    return replace(q, verify_share=True), [_query_position(q)]


def _fired(p: Pending, e: ev.ProtectionReport, now: Millis, leg: ProtectionOrder) -> Reacted:
    """A leg fired: the entry exits (its siblings cancelled), except a take-profit level that
    leaves part of the share: the other levels stay and the stops are resized to what is left."""
    cmds: list[Command] = []
    name = f"{leg.leg.name} level {leg.level}" if leg.level else leg.leg.name
    if e.status is AlgoStatus.FINISHED and e.executed_qty is None:  # what it executed, unknown
        q = note(without(p, e.client_id), now, f"{name} {e.client_id} finished; reading the position")
        q = replace(q, verify_share=True)
    elif e.status is AlgoStatus.FINISHED:
        at = f" at {e.avg_price}" if e.avg_price is not None else ""
        q = note(without(p, e.client_id), now, f"{name} {e.client_id} finished: executed {e.executed_qty}{at}")
        q, cmds = book_exit(q, e.client_id, e.executed_qty or Decimal(0), now, what=name, price=e.avg_price)
    else:
        q = note(with_leg_state(p, e.client_id, LegState.FIRED), now, f"{name} {e.client_id} {e.status.value}")
    if p.status in (Status.EXITING, Status.NEEDS_ATTENTION):
        return q, cmds
    if leg.level and (q.share > 0 or e.status is not AlgoStatus.FINISHED) and not q.verify_share:
        return replace(q, reason=f"{name} taken"), cmds  # a step of the take-profit: the rest stays protected
    return replace(q, status=Status.EXITING, reason=f"{name} triggered"), cmds


def book_exit(
    p: Pending, key: str, executed: Decimal, now: Millis, *, what: str, price: Decimal | None = None
) -> Reacted:
    """Book what one of its own orders executed. Its legs and closes executing more than it
    filled (both legs fired before the bot cancelled one: Binance has no OCO) took that much
    from another entry on the position, or from a part no entry held: its own books are capped
    at its fills (a later fill of its order is its share again), and ``Overdrawn`` tells the
    runtime, which charges the entries that lost it by the share rule (core.shares.charge)."""
    q = add_exit(p, key, max(executed, _booked(p, key)))
    over = q.exited - q.filled_qty
    if over <= 0:
        return q, []
    q = add_exit(q, f"overdrawn:{key}", _booked(q, f"overdrawn:{key}") - over)
    at = f" at {price}" if price is not None else ""
    q = note(q, now, f"its {what} {key} executed {over} more than it filled{at}: that closed another share")
    s = p.spec
    return replace(q, verify_share=True), [
        Overdrawn(p.pending_id, ClientId(key), s.symbol, s.position_side, s.side, over, what, price)
    ]


def share_taken(p: Pending, e: ev.ShareTaken, now: Millis, _: Policy) -> Reacted:
    """Part of its share was closed by another entry's order beyond that entry's fills: booked
    exactly, said loudly; its legs are resized by convergence. (The taker tells each extra
    once: its own books say what it told.) A loss a position read booked before as unexplained
    is this one, now explained: it is not taken twice."""
    key = f"taken:{e.client_id}"
    at = f" at {e.price}" if e.price is not None else ""
    said = (f"{e.quantity} {p.spec.symbol} of its share closed by entry {e.by}'s {e.what}{at}"
            f" ({e.by}'s orders executed more than it filled: Binance has no OCO)")
    q = note(add_exit(_explained(p, e.quantity), key, _booked(p, key) + e.quantity), now, said)
    if q.share == 0 and q.entry_done and q.status not in (Status.EXITING, Status.NEEDS_ATTENTION):
        q = replace(q, status=Status.EXITING, reason=f"closed by entry {e.by}'s {e.what}{at}")
    alert = f"{said}; {p.pending_id}'s share is now {q.share}"
    return q, [Alert(p.pending_id, alert, "over_execution")]


def _booked(p: Pending, key: str) -> Decimal:
    return next((x.quantity for x in p.exits if x.key == key), Decimal(0))


def _explained(p: Pending, quantity: Decimal) -> Pending:
    """Up to ``quantity`` of the losses position reads booked as unexplained, taken off them."""
    exits = []
    for x in reversed(p.exits):
        if x.key.startswith(UNEXPLAINED) and quantity > 0:
            part = min(x.quantity, quantity)
            quantity -= part
            if x.quantity > part:
                exits.append(Exit(x.key, x.quantity - part))
        else:
            exits.append(x)
    return replace(p, exits=tuple(reversed(exits)))


# Below MIN_NOTIONAL: waived for reduce-only orders, so it bites where legs cannot be reduce-only
# (hedge mode), and for an exact leg's small increment first of all.
BELOW_MIN_NOTIONAL = -4164


def _merge(p: Pending, refused: ProtectionOrder | None, now: Millis) -> Reacted | None:
    """An exact leg's piece refused for being below the minimum notional: cancel the newest live
    piece of its kind, and its quantity and the refused one's are placed as one piece once the
    cancel is answered (never above the share; for that round trip that piece's part has no
    leg). None when there is no other piece to merge with: the share itself is too small."""
    if refused is None:
        return None
    others = [x for x in p.protections if x.slot == refused.slot and x.state is LegState.LIVE]
    if not others:
        return None
    newest = max(others, key=lambda x: x.gen)
    said = (f"{refused.client_id} ({refused.quantity}) is below the minimum notional alone: merging it with"
            f" {newest.client_id} ({newest.quantity}), cancelled first, then placed as one")
    return cancel_legs(note(p, now, said), [newest])


def rule_too_many_attempts(p: Pending, e: ev.ProtectionRejected, now: Millis, pol: Policy) -> Reacted:
    """Only definite refusals count; after max_protection_attempts a human must look. An exact
    leg too small to stand alone is merged instead (``_merge``)."""
    attempts = p.attempts + 1
    q = note(without(p, e.client_id), now, f"{e.client_id} rejected ({e.code}): {e.message}")
    if e.code == BELOW_MIN_NOTIONAL and pol.stacking and (merged := _merge(q, p.find_leg(e.client_id), now)):
        return merged
    if attempts >= pol.max_protection_attempts:
        text = f"protection refused {attempts} times; last ({e.code}) {e.message}"
        return attention(replace(q, attempts=attempts), now, text), []
    retry_at = now + pol.recheck_ms * attempts
    return replace(q, attempts=attempts, retry_at=retry_at), [ScheduleCheck(p.pending_id, retry_at)]


def protection_deferred(p: Pending, e: ev.ProtectionDeferred, now: Millis, pol: Policy) -> Reacted:
    """Not executed, not refused: try again after a backoff, however many times it takes."""
    if p.find_leg(e.client_id) is None:
        return p, []
    return _try_again(p, e, f"not sent ({e.reason})", now, pol)


def _try_again(
    p: Pending, e: ev.ProtectionDeferred | ev.ProtectionLimited, why: str, now: Millis, pol: Policy
) -> Reacted:
    """The leg is forgotten and placed anew after the backoff (never a refusal)."""
    failures = p.transient + 1
    retry_at = now + backoff_ms(failures, e.retry_after_ms, pol, p.pending_id)
    q = note(without(p, e.client_id), now, f"{e.client_id} {why}; again at +{retry_at - now} ms")
    return replace(q, transient=failures, retry_at=retry_at), [ScheduleCheck(p.pending_id, retry_at)]


def protection_limited(p: Pending, e: ev.ProtectionLimited, now: Millis, pol: Policy) -> Reacted:
    """Refused for the account's limit, not for what it is: tried again as room frees, never
    parked. An SL takes the room first: the entry's own TP is cancelled to make it."""
    leg = p.find_leg(e.client_id)
    if leg is None:
        return p, []
    why = f"refused for the account's limit ({e.code}: {e.message})"
    q, cmds = _try_again(p, e, why, now, pol)
    if leg.leg is Leg.SL:
        tps = [x for x in q.protections if x.leg is Leg.TP and x.state is LegState.LIVE]
        q, cancels = cancel_legs(replace(q, sl_first=True), tps)
        cmds += cancels
    if q.transient == 1:
        said = f"{p.spec.symbol} {leg.leg.name} of {p.pending_id} refused: the account is at its limit of open"
        cmds.append(Alert(p.pending_id, f"{said} conditional orders ({e.code}); retrying as room frees", "limit"))
    return q, cmds


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
    if leg.state is not LegState.SENDING:  # the stream told its fate before the send's answer
        return note(p, now, f"{e.client_id} send answered unknown ({e.reason}); it is known {leg.state.value}"), []
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


def protection_canceled(p: Pending, e: ev.ProtectionCanceled, now: Millis, _: Policy) -> Reacted:
    q = without(p, e.client_id)
    if q.verify_share:  # it was cancelled because it could not be seen: read the share
        return q, [_query_position(q)]
    return q, []


def position_report(p: Pending, e: ev.PositionReport, now: Millis, _: Policy) -> Reacted:
    """The entry's part of the position, on proof (core.positions): less than its share means
    the position was reduced outside its own orders (by hand, liquidation, ADL, another entry's
    leg); only now is that booked."""
    q = replace(p, verify_share=False)
    lost = p.share - e.amount
    if lost <= 0:
        return q, []
    said = (f"{lost} {p.spec.symbol} of its share is gone from the position, which no order of its own"
            f" explains (by hand, liquidation, ADL, or another entry's leg): its share is now {e.amount}")
    q = note(add_exit(q, f"{UNEXPLAINED}{now}", lost), now, said)
    if q.share == 0 and q.status not in (Status.EXITING, Status.NEEDS_ATTENTION) and q.entry_done:
        q = replace(q, status=Status.EXITING, reason="position closed outside the bot")
    return q, [Alert(p.pending_id, said, "share_lost")]


def position_unconfirmed(p: Pending, e: ev.PositionUnconfirmed, now: Millis, pol: Policy) -> Reacted:
    """Its position read could not be believed yet: read it again a little later."""
    if not p.verify_share:
        return p, []
    return p, [ScheduleCheck(p.pending_id, now + pol.position_confirm_ms)]


def send_delayed(p: Pending, e: ev.SendDelayed, now: Millis, _: Policy) -> Reacted:
    """A send that waited and did not go: the same order, stamped now (persisted before it goes),
    unless a later send of it (or its end) made this one obsolete."""
    at = e.stamped_at
    if e.client_id == client_id(p.pending_id, Leg.ENTRY):
        if p.status is not Status.SUBMITTING or p.sent_at != at:
            return p, []
        q = replace(p, sent_at=now)
        return q, [place_entry(q)]
    leg = p.find_leg(e.client_id)
    if leg is not None and leg.state is LegState.SENDING and leg.sent_at == at:
        q = with_leg_state(p, e.client_id, LegState.SENDING, now)
        return q, [protection_command(q, replace(leg, sent_at=now))]
    close = p.close
    if close is not None and close.client_id == e.client_id and close.state is LegState.SENDING and close.sent_at == at:
        close = replace(close, sent_at=now)
        return replace(p, close=close), [close_command(p, close)]
    return p, []  # no longer waiting to be sent as stamped: nothing to send


def place_entry(p: Pending) -> PlaceEntry:
    s = p.spec
    cid = client_id(p.pending_id, Leg.ENTRY)
    return PlaceEntry(p.pending_id, cid, s.symbol, s.side, s.order_type, s.quantity, s.price, s.position_side)


# -- closes ---------------------------------------------------------------------------


def close_report(p: Pending, e: ev.CloseReport, now: Millis, pol: Policy) -> Reacted:
    """A close is booked by what it executed. Final (filled, expired, canceled): it is done, and
    what it left of the share is closed by the next one. Not final: asked about again."""
    q, over = book_exit(p, e.client_id, e.executed_qty, now, what="close") if e.executed_qty > 0 else (p, [])
    if p.close is None or p.close.client_id != e.client_id:
        return q, over  # an earlier close of this entry reporting late: only its execution counts
    if e.final:
        said = f"close {e.client_id} {e.status.value}: executed {e.executed_qty} of {p.close.quantity}"
        return note(replace(q, close=None, transient=0), now, said), over
    close = replace(p.close, state=LegState.LIVE)
    return replace(q, close=close), [*over, ScheduleCheck(p.pending_id, now + pol.recheck_ms)]


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
    retry_at = now + backoff_ms(failures, e.retry_after_ms, pol, p.pending_id)
    q = note(replace(p, close=None, transient=failures, retry_at=retry_at), now, f"close not sent ({e.reason})")
    return q, [ScheduleCheck(p.pending_id, retry_at)]


def close_unknown(p: Pending, e: ev.CloseOutcomeUnknown, now: Millis, _: Policy) -> Reacted:
    if p.close is None or p.close.state is LegState.LIVE:  # none, or the stream told of it first
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
