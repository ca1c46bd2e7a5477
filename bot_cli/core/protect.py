"""Convergence: from an entry's facts, the orders it still needs (one rule per status).

Applied after every step (and after reconcile):

- PARTIALLY_FILLED / PROTECTING / PROTECTED: for each leg the entry asks for (SL, and TP when
  it has one), live legs of that kind cover the entry's share (its fills minus what its own
  legs and closes executed). A leg that vanished is replaced alone, never its sibling with it.
  How a share that changed is covered depends on whether entries may share a position:

  - alone on its position (the default): a leg of the wrong size gets a new leg of that kind
    for the whole share under a new id, and the old one is cancelled only once the new one is
    live, so the share is never without a stop. For that moment both are live; harmless, as a
    reduce-only leg never executes more than the position.
  - stacked (``Policy.stacking``): exact legs. What the legs of a kind may execute (every leg
    not known gone, the ones being cancelled too) never exceeds the share, not even for a
    moment: a larger share gets a leg for the increment only, a smaller one has its newest
    legs cancelled first and what they covered placed anew once the cancels are answered.
    Pieces are not merged to save orders: a merge is either a moment with two stops (the stacked
    risk) or one without; each resize costs one open conditional order per kind until the entry
    is flat, which admission counts. Only a piece refused as too small to stand alone (hedge
    mode: no reduce-only, so MIN_NOTIONAL applies) is merged, cancel first (core.rules._merge).
- EXITING (a leg fired, the share is flat, or a trigger was already crossed): cancel every
  live leg (Binance has no OCO: the bot is it), wait for fired legs to report what they
  executed, close what is left at market when flattening; then CLOSED once the share is
  flat and nothing of the entry is live, or back to protecting what a fired leg left.
- NEEDS_ATTENTION: only legs that protect nothing are cancelled.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core.commands import CancelProtection, ClosePosition, Command, PlaceProtection
from bot_cli.core.ids import client_id, parse_client_id
from bot_cli.core.model import (
    HOLDING,
    IN_FLIGHT,
    UNSETTLED,
    ClientId,
    CloseOrder,
    Leg,
    LegState,
    Millis,
    OrderType,
    Pending,
    Policy,
    ProtectionOrder,
    Slot,
    Status,
    Trail,
)


Converged = tuple[Pending, list[Command]]


def deadline(sent_at: Millis, recv_window_ms: int, policy: Policy) -> Millis:
    """After this, a send stamped at sent_at can no longer land: its timestamp (at most
    ``send_delay_ms`` after the stamp) + recvWindow + the margin."""
    return sent_at + policy.send_delay_ms + recv_window_ms + policy.not_found_margin_ms


def converge(p: Pending, now: Millis, policy: Policy) -> Converged:
    if p.status in HOLDING:
        return _protect(p, now, policy)
    if p.status is Status.EXITING:
        return _wind_down(p, now)
    if p.status is Status.NEEDS_ATTENTION and p.share == 0 and p.entry_done:
        return cancel_legs(p, _live(p))
    return p, []


def target(p: Pending, slot: Slot) -> Decimal:
    """What the legs of one slot must cover now: the share (stop-loss, a single take-profit, a
    trailing stop); a take-profit level, what of the share it takes (``_level_targets``)."""
    leg, level = slot
    if leg is Leg.TP and level:
        targets = _level_targets(p)
        return targets[level - 1] if level <= len(targets) else Decimal(0)
    return p.share


def _level_targets(p: Pending) -> tuple[Decimal, ...]:
    """Each take-profit level's part of the share: what it takes of the fills, less what its own
    legs executed; where the share is smaller than their sum (another entry's leg took part of
    it), the last levels give way first."""
    done = [Decimal(0)] * len(p.spec.tp_levels)
    for x in p.exits:
        parsed = parse_client_id(x.key)
        if parsed is not None and parsed.leg is Leg.TP and 0 < parsed.level <= len(done):
            done[parsed.level - 1] += x.quantity
    left = [max(q - d, Decimal(0)) for q, d in zip(p.spec.level_quantities(p.filled_qty), done, strict=True)]
    excess = sum(left, Decimal(0)) - p.share
    for n in reversed(range(len(left))):
        if excess <= 0:
            break
        cut = min(excess, left[n])
        left[n] -= cut
        excess -= cut
    return tuple(left)


def covers(p: Pending, slot: Slot) -> bool:
    """Live legs of this slot cover exactly what it must: the current one alone, or (exact
    legs) every leg of the slot not being cancelled, each of them live; nothing, where the slot
    has nothing left to cover."""
    want = target(p, slot)
    kept = _kept(p, slot)
    if want == 0:
        return not kept
    if _covers_alone(p, slot):
        return True
    return bool(kept) and all(x.state is LegState.LIVE and _at_level(p, x) for x in kept) and _total(kept) == want


def _at_level(p: Pending, x: ProtectionOrder) -> bool:
    """The leg triggers where the entry now asks (an operator may have moved it, or changed how
    far a trailing stop trails)."""
    trail = p.spec.trail if x.leg is Leg.TRAIL else None
    return x.trigger_price == p.spec.trigger(x.leg, x.level) and (trail is None or x.callback_pct == trail.callback_pct)


def _covers_alone(p: Pending, slot: Slot) -> bool:
    x = p.current(*slot)
    want = target(p, slot)
    return x is not None and want > 0 and x.state is LegState.LIVE and x.quantity == want and _at_level(p, x)


def _kept(p: Pending, slot: Slot) -> list[ProtectionOrder]:
    return [x for x in p.protections if x.slot == slot and x.state is not LegState.CANCELING]


def _total(legs: list[ProtectionOrder]) -> Decimal:
    return sum((x.quantity for x in legs), Decimal(0))


def exposure(p: Pending, leg: Leg, level: int = 0) -> Decimal:
    """What the legs of this kind (and level) may still execute: every one not known gone."""
    return _total([x for x in p.protections if x.slot == (leg, level)])


def covered(p: Pending) -> bool:
    """Every leg the entry asks for is live and covers what it must."""
    return p.share > 0 and all(covers(p, slot) for slot in p.spec.slots)


def at_rest(p: Pending) -> bool:
    """Nothing to wait for but the market or an operator: no wake-up needed."""
    if p.status is Status.REQUESTED:
        return True
    if p.status is Status.OPEN:  # a market order acknowledged NEW fills at once: ask about it
        return p.spec.order_type is not OrderType.MARKET
    if p.status in (Status.SUBMITTING, Status.EXITING) or p.close is not None or p.verify_share:
        return False
    if any(x.state is not LegState.LIVE for x in p.protections):
        return False
    if p.status is Status.NEEDS_ATTENTION:
        return True
    if p.share == 0:
        return not p.protections and not p.entry_done
    return covered(p) and not _superseded(p) and p.status is not Status.PROTECTING


def _live(p: Pending) -> list[ProtectionOrder]:
    return [x for x in p.protections if x.state is LegState.LIVE]


def _superseded(p: Pending) -> list[ProtectionOrder]:
    """Live legs a newer live leg of their slot replaces (it covers alone now), and live legs of
    a slot with nothing left to cover (a take-profit level taken by another entry's exit)."""
    slots = set(p.spec.slots)
    return [
        x for x in _live(p)
        if (_covers_alone(p, x.slot) and x is not p.current(*x.slot)) or x.slot not in slots or target(p, x.slot) == 0
    ]  # fmt: skip


def _protect(p: Pending, now: Millis, policy: Policy) -> Converged:
    if p.flatten and p.filled_qty > 0:  # an operator asked to close what fills
        return replace(p, status=Status.EXITING, reason=p.reason or "closed by the operator"), []
    if p.verify_share or any(x.state is LegState.FIRED for x in p.protections):
        return p, []  # an answer is outstanding: decide once it is in
    if p.share <= 0:
        if _live(p):
            return cancel_legs(p, _live(p))  # nothing of this entry left to protect
        if p.entry_done:
            return replace(p, status=Status.EXITING, reason=p.reason or "its share of the position is flat"), []
        return p, []
    if policy.stacking:
        q, cancels = _trim(p)
        q, sends = _new_legs(q, now, stacking=True)
    else:
        q, sends = _new_legs(p, now, stacking=False)
        q, cancels = cancel_legs(q, _superseded(q))
    if covered(q) and not _superseded(q):
        q = replace(q, sl_first=False)
        if q.status is Status.PROTECTING and all(x.state is LegState.LIVE for x in q.protections):
            q = replace(q, status=Status.PROTECTED, reason="protected")
    elif sends and q.status is Status.PROTECTED:
        q = replace(q, status=Status.PROTECTING)
    return q, [*sends, *cancels]


def _trim(p: Pending) -> Converged:
    """Exact legs: where the legs of a slot kept exceed what it must cover, cancel the newest
    first until they do not (the oldest are the ones seen live longest). A live leg an operator
    moved is cancelled first and placed anew at its new level once the cancel is answered: two
    stops for one share, even for a moment, could take another entry's share."""
    drop = [x for x in p.protections if x.state is LegState.LIVE and not _at_level(p, x)]
    for slot in {x.slot for x in p.protections} | set(p.spec.slots):
        kept = [x for x in _kept(p, slot) if x not in drop]
        excess = _total(kept) - (target(p, slot) if slot in p.spec.slots else Decimal(0))
        for x in sorted(kept, key=lambda x: x.gen, reverse=True):
            if excess <= 0:
                break
            drop.append(x)
            excess -= x.quantity
    return cancel_legs(p, drop) if drop else (p, [])


def _new_legs(p: Pending, now: Millis, stacking: bool) -> Converged:
    """A new leg for each slot that needs one, for what it needs: what it must cover where the
    current leg is neither in flight nor covering it; with exact legs (``stacking``), what it
    must cover beyond what the legs of its slot may execute, once none of that slot is being
    cancelled (a trim or a merge: what it covered is placed with the rest, as one). All placed
    in one step share one new generation number (ids are never reused; levels differ by name)."""
    if now < p.retry_at:
        return p, []
    needed = _increments(p) if stacking else {
        slot: target(p, slot) for slot in p.spec.slots if target(p, slot) > 0 and _needs_new(p, slot)
    }  # fmt: skip
    if p.sl_first and not covers(p, (Leg.SL, 0)):
        needed = {slot: qty for slot, qty in needed.items() if slot[0] is not Leg.TP}  # the SL takes the room first
    if not needed:
        return p, []
    gen, s = p.gen + 1, p.spec
    rate = s.trail.callback_pct if s.trail is not None else None
    legs = tuple(
        ProtectionOrder(
            leg, gen, client_id(p.pending_id, leg, gen, level), qty, s.trigger(leg, level), LegState.SENDING, now,
            level, rate if leg is Leg.TRAIL else None,
        )
        for (leg, level), qty in needed.items()
    )  # fmt: skip
    return replace(p, gen=gen, protections=(*p.protections, *legs)), [protection_command(p, x) for x in legs]


def _increments(p: Pending) -> dict[Slot, Decimal]:
    return {
        slot: target(p, slot) - exposure(p, *slot) for slot in p.spec.slots
        if exposure(p, *slot) < target(p, slot)
        and not any(x.slot == slot and x.state is LegState.CANCELING for x in p.protections)
    }  # fmt: skip


def _needs_new(p: Pending, slot: Slot) -> bool:
    x = p.current(*slot)
    if x is None:
        return True
    at_rest = x.state is LegState.LIVE and x.quantity == target(p, slot) and _at_level(p, x)
    return x.state not in IN_FLIGHT and not at_rest


def protection_command(p: Pending, x: ProtectionOrder) -> PlaceProtection:
    s = p.spec
    trail = Trail(x.callback_pct, x.trigger_price or None) if x.leg is Leg.TRAIL and x.callback_pct else None
    return PlaceProtection(
        p.pending_id, x.client_id, x.leg, s.symbol, s.side.opposite, x.quantity, x.trigger_price, s.position_side,
        trail=trail or (s.trail if x.leg is Leg.TRAIL else None),
    )


def cancel_legs(p: Pending, legs: list[ProtectionOrder]) -> Converged:
    """Mark ``legs`` CANCELING and cancel them by their client ids."""
    ids = {x.client_id for x in legs}
    updated = tuple(replace(x, state=LegState.CANCELING) if x.client_id in ids else x for x in p.protections)
    return replace(p, protections=updated), [cancel_command(p, x.client_id) for x in legs]


def cancel_command(p: Pending, cid: ClientId) -> CancelProtection:
    """The cancel of one of ``p``'s legs; urgent while ``p`` winds down (a leg fired: until
    its siblings are gone they may execute too)."""
    return CancelProtection(p.pending_id, cid, urgent=p.status is Status.EXITING)


def _wind_down(p: Pending, now: Millis) -> Converged:
    q, cmds = cancel_legs(p, _live(p))
    if q.verify_share or q.close is not None or any(x.state in UNSETTLED for x in q.protections):
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
