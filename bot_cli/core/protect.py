"""Protection convergence: from an entry's facts, the protective orders it still needs.

Not a table row but one rule applied after every step (and after reconcile): the
newest generation of protective orders must be live and cover the filled quantity.
A resize places a new generation under new ids and cancels the old one only after
the new one is acknowledged, so the position is never without a stop.
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


def deadline(sent_at: Millis, recv_window_ms: int, policy: Policy) -> Millis:
    """After this, a send decided at sent_at can no longer land (timestamp + recvWindow + margin)."""
    return sent_at + recv_window_ms + policy.not_found_margin_ms


def converge(p: Pending, now: Millis, policy: Policy) -> tuple[Pending, list[Command]]:
    if p.status in (Status.PARTIALLY_FILLED, Status.PROTECTING):
        return _protect(p, now)
    if p.status is Status.CLOSING:
        return _wind_down(p, now)
    return p, []


def covered(p: Pending) -> bool:
    """The newest generation is live, complete and covers everything filled."""
    newest = [x for x in p.legs_of(p.gen) if x.state is LegState.LIVE]
    legs = {x.leg for x in newest if x.quantity == p.filled_qty}
    return p.filled_qty > 0 and legs >= set(p.spec.legs)


def _protect(p: Pending, now: Millis) -> tuple[Pending, list[Command]]:
    if any(x.state in _IN_FLIGHT for x in p.protections) or p.filled_qty <= 0:
        return p, []
    if not covered(p):
        return _new_generation(p, now) if now >= p.retry_at else (p, [])
    old = [x for x in p.protections if x.gen < p.gen and x.state is LegState.LIVE]
    if old:
        return _cancel(p, old)
    if p.status is Status.PROTECTING and len(p.protections) == len(p.legs_of(p.gen)):
        return replace(p, status=Status.PROTECTED, reason="protected"), []
    return p, []


def _new_generation(p: Pending, now: Millis) -> tuple[Pending, list[Command]]:
    gen, s = p.gen + 1, p.spec
    legs = tuple(
        ProtectionOrder(leg, gen, client_id(p.pending_id, leg, gen), p.filled_qty, s.trigger(leg), LegState.SENDING, now)
        for leg in s.legs
    )
    sends: list[Command] = [
        PlaceProtection(p.pending_id, x.client_id, x.leg, s.symbol, s.side.opposite, x.quantity, x.trigger_price, s.position_side)
        for x in legs
    ]
    return replace(p, gen=gen, protections=(*p.protections, *legs)), sends


def _cancel(p: Pending, legs: list[ProtectionOrder]) -> tuple[Pending, list[Command]]:
    ids = {x.client_id for x in legs}
    updated = tuple(replace(x, state=LegState.CANCELING) if x.client_id in ids else x for x in p.protections)
    return replace(p, protections=updated), [CancelProtection(p.pending_id, x.client_id) for x in legs]


def _wind_down(p: Pending, now: Millis) -> tuple[Pending, list[Command]]:
    """Closing: cancel whatever protection is live; close what filled meanwhile; then done."""
    live = [x for x in p.protections if x.state is LegState.LIVE]
    if live:
        return _cancel(p, live)
    close = p.close
    if close is not None and close.state is LegState.LIVE and p.filled_qty > close.quantity:
        gen = p.gen + 1
        more = CloseOrder(client_id(p.pending_id, Leg.CLOSE, gen), p.filled_qty, LegState.SENDING, now, close.quantity)
        return replace(p, gen=gen, close=more), [close_command(p, more)]
    if p.protections or (close is not None and close.state is not LegState.LIVE):
        return p, []
    return replace(p, status=Status.CLOSED), []


def close_command(p: Pending, close: CloseOrder) -> ClosePosition:
    """The reduce-only market order closing what this close order adds to the earlier ones."""
    s = p.spec
    return ClosePosition(
        p.pending_id, close.client_id, s.symbol, s.side.opposite, close.quantity - close.prior, s.position_side
    )
