"""Convergence: from an entry's facts, the orders it still needs (one rule per status).

Applied after every step (and after reconcile):

- PARTIALLY_FILLED / PROTECTING / PROTECTED: the newest generation of legs is live and
  covers the entry's share (its fills minus what its own legs and closes executed). A
  resize places a new generation under new ids and cancels the old one only once the new
  one is live, so the share is never without a stop.
- EXITING (a leg fired, the share is flat, or a trigger was already crossed): cancel every
  live leg (Binance has no OCO: the bot is it), wait for fired legs to report what they
  executed, close what is left at market when flattening; then CLOSED once the share is
  flat and nothing of the entry is live, or back to protecting what a fired leg left.
- NEEDS_ATTENTION: only legs that protect nothing are cancelled.
"""

from __future__ import annotations

from dataclasses import replace

from bot_cli.core.commands import CancelProtection, ClosePosition, Command, PlaceProtection
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    CloseOrder,
    Leg,
    LegState,
    Millis,
    Pending,
    Policy,
    ProtectionOrder,
    Status,
)


_IN_FLIGHT = (LegState.SENDING, LegState.UNKNOWN)
_UNSETTLED = (LegState.SENDING, LegState.UNKNOWN, LegState.CANCELING, LegState.FIRED)
_HOLDING = (Status.PARTIALLY_FILLED, Status.PROTECTING, Status.PROTECTED)
Converged = tuple[Pending, list[Command]]


def deadline(sent_at: Millis, recv_window_ms: int, policy: Policy) -> Millis:
    """After this, a send made at sent_at can no longer land (timestamp + recvWindow + margin)."""
    return sent_at + recv_window_ms + policy.not_found_margin_ms


def converge(p: Pending, now: Millis, policy: Policy) -> Converged:
    if p.status in _HOLDING:
        return _protect(p, now)
    if p.status is Status.EXITING:
        return _wind_down(p, now)
    if p.status is Status.NEEDS_ATTENTION and p.share == 0 and p.entry_done:
        return _cancel(p, _live(p))
    return p, []


def covered(p: Pending) -> bool:
    """The newest generation is live, complete and covers the entry's share."""
    newest = [x for x in p.legs_of(p.gen) if x.state is LegState.LIVE]
    legs = {x.leg for x in newest if x.quantity == p.share}
    return p.share > 0 and legs >= set(p.spec.legs)


def at_rest(p: Pending) -> bool:
    """Nothing to wait for but the market or an operator: no wake-up needed."""
    if p.status in (Status.REQUESTED, Status.OPEN):
        return True
    if p.status in (Status.SUBMITTING, Status.EXITING) or p.close is not None or p.verify_share:
        return False
    if any(x.state is not LegState.LIVE for x in p.protections):
        return False
    if p.status is Status.NEEDS_ATTENTION:
        return True
    if p.share == 0:
        return not p.protections and not p.entry_done
    return covered(p) and all(x.gen == p.gen for x in p.protections) and p.status is not Status.PROTECTING


def _live(p: Pending) -> list[ProtectionOrder]:
    return [x for x in p.protections if x.state is LegState.LIVE]


def _protect(p: Pending, now: Millis) -> Converged:
    if p.flatten and p.filled_qty > 0:  # an operator asked to close what fills
        return replace(p, status=Status.EXITING, reason=p.reason or "closed by the operator"), []
    if p.verify_share or any(x.state in (*_IN_FLIGHT, LegState.FIRED) for x in p.protections):
        return p, []  # an answer is outstanding: decide once it is in
    if p.share <= 0:
        if _live(p):
            return _cancel(p, _live(p))  # nothing of this entry left to protect
        if p.entry_done:
            return replace(p, status=Status.EXITING, reason=p.reason or "its share of the position is flat"), []
        return p, []
    if not covered(p):
        if now < p.retry_at:
            return p, []
        status = Status.PROTECTING if p.status is Status.PROTECTED else p.status
        return _new_generation(replace(p, status=status), now)
    old = [x for x in p.protections if x.gen < p.gen and x.state is LegState.LIVE]
    if old:
        return _cancel(p, old)
    if p.status is Status.PROTECTING and len(p.protections) == len(p.legs_of(p.gen)):
        return replace(p, status=Status.PROTECTED, reason="protected"), []
    return p, []


def _new_generation(p: Pending, now: Millis) -> Converged:
    gen, s = p.gen + 1, p.spec
    legs = tuple(
        ProtectionOrder(leg, gen, client_id(p.pending_id, leg, gen), p.share, s.trigger(leg), LegState.SENDING, now)
        for leg in s.legs
    )
    sends: list[Command] = [protection_command(p, x) for x in legs]
    return replace(p, gen=gen, protections=(*p.protections, *legs)), sends


def protection_command(p: Pending, x: ProtectionOrder) -> PlaceProtection:
    s = p.spec
    return PlaceProtection(
        p.pending_id, x.client_id, x.leg, s.symbol, s.side.opposite, x.quantity, x.trigger_price, s.position_side
    )


def _cancel(p: Pending, legs: list[ProtectionOrder]) -> Converged:
    ids = {x.client_id for x in legs}
    updated = tuple(replace(x, state=LegState.CANCELING) if x.client_id in ids else x for x in p.protections)
    return replace(p, protections=updated), [CancelProtection(p.pending_id, x.client_id) for x in legs]


def _wind_down(p: Pending, now: Millis) -> Converged:
    q, cmds = _cancel(p, _live(p))
    if q.verify_share or q.close is not None or any(x.state in _UNSETTLED for x in q.protections):
        return q, cmds  # cancels, fired legs, a close or a position read still outstanding
    if not q.entry_done:
        if q.flatten:
            return q, cmds  # the rest of the entry order is being cancelled first
        return replace(q, status=Status.PARTIALLY_FILLED, reason=""), cmds
    if q.share > 0 and not q.flatten:
        return replace(q, status=Status.PROTECTING, reason=""), cmds  # a fired leg left part of it
    if q.share > 0:
        if now < q.retry_at:
            return q, cmds
        gen = q.gen + 1
        close = CloseOrder(client_id(q.pending_id, Leg.CLOSE, gen), q.share, LegState.SENDING, now)
        return replace(q, gen=gen, close=close), [*cmds, close_command(q, close)]
    return replace(q, status=Status.CLOSED, reason=q.reason or "flat"), cmds


def close_command(p: Pending, close: CloseOrder) -> ClosePosition:
    """The reduce-only market order closing the entry's own share, never more."""
    s = p.spec
    return ClosePosition(p.pending_id, close.client_id, s.symbol, s.side.opposite, close.quantity, s.position_side)
