"""An operator moves a stop-loss or a take-profit: the new level is written before anything is
sent, and the legs follow it without a moment unprotected.

Binance cannot modify an algo order: every move is a new order and a cancel. Alone on its
position (the default) the new leg goes first and the old one is cancelled once the new one is
live: for that moment two stops, harmless as a reduce-only leg never executes more than the
position. Stacked, two stops for one share could take another entry's share, so the old leg is
cancelled first and the new one placed once the cancel is answered (a trigger crossed meanwhile
is the immediate-trigger rule's, as for any leg).
"""

from __future__ import annotations

import pytest

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.model import AlgoStatus, Leg, LegState, Pending, Policy, Status, Trail
from bot_cli.core.protect import converge
from tests.core.helpers import INSIDE, PID, D, cid, of_type, pending, sends


MOVED = D("98")  # the spec's stop-loss is 95 below an entry at 100


def protected() -> Pending:
    return pending(Status.PROTECTED)


def live(q: Pending, which: Leg) -> list[tuple[int, str]]:
    return [(x.gen, str(x.trigger_price)) for x in q.protections if x.leg is which and x.state is LegState.LIVE]


def test_a_moved_stop_is_in_the_spec_and_a_new_stop_goes_out_while_the_old_one_stays_live() -> None:
    p = protected()

    q, cmds = step(p, ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, Policy())

    assert q.spec.stop_loss == MOVED
    kinds = [type(c) for c in cmds]
    assert kinds.index(cm.PersistPending) < kinds.index(cm.PlaceProtection), "written before anything is sent"
    [sent] = of_type(cmds, cm.PlaceProtection)
    assert (sent.leg, sent.trigger_price, sent.quantity) == (Leg.SL, MOVED, p.share)
    assert of_type(cmds, cm.CancelProtection) == []
    assert live(q, Leg.SL) == [(1, str(p.spec.stop_loss))]
    assert q.status is Status.PROTECTING
    assert any(n.text == f"operator: move the stop-loss {p.spec.stop_loss} -> {MOVED}" for n in q.history)


def test_the_old_stop_is_cancelled_once_the_new_one_is_live_and_the_take_profit_is_left_alone() -> None:
    q, _ = step(protected(), ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, Policy())

    r, cmds = step(q, ev.ProtectionReport(PID, cid(Leg.SL, 2), AlgoStatus.NEW), INSIDE, Policy())

    assert [c.client_id for c in of_type(cmds, cm.CancelProtection)] == [cid(Leg.SL, 1)]
    assert of_type(cmds, cm.PlaceProtection) == []
    assert live(r, Leg.SL) == [(2, str(MOVED))]
    assert live(r, Leg.TP) == [(1, str(r.spec.take_profit))]

    s, _ = step(r, ev.ProtectionReport(PID, cid(Leg.SL, 1), AlgoStatus.CANCELED), INSIDE, Policy())
    assert s.status is Status.PROTECTED


def test_stacked_the_old_stop_is_cancelled_first_and_the_new_one_placed_once_the_cancel_is_answered() -> None:
    stacked = Policy(stacking=True)

    q, cmds = step(protected(), ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, stacked)

    assert [c.client_id for c in of_type(cmds, cm.CancelProtection)] == [cid(Leg.SL, 1)]
    assert of_type(cmds, cm.PlaceProtection) == []

    r, cmds = step(q, ev.ProtectionReport(PID, cid(Leg.SL, 1), AlgoStatus.CANCELED), INSIDE, stacked)
    [sent] = of_type(cmds, cm.PlaceProtection)
    assert (sent.leg, sent.trigger_price, sent.quantity) == (Leg.SL, MOVED, r.share)


def test_a_moved_take_profit_moves_only_the_take_profit() -> None:
    q, cmds = step(protected(), ev.OperatorAmend(PID, take_profit=D("112")), INSIDE, Policy())

    assert [(c.leg, c.trigger_price) for c in of_type(cmds, cm.PlaceProtection)] == [(Leg.TP, D("112"))]
    assert q.spec.stop_loss == protected().spec.stop_loss


def test_an_entry_that_has_not_filled_only_remembers_the_new_levels() -> None:
    q, cmds = step(pending(Status.OPEN), ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, Policy())

    assert q.spec.stop_loss == MOVED
    assert of_type(cmds, cm.PlaceProtection) == []


def test_the_same_levels_again_change_nothing() -> None:
    p = protected()

    q, cmds = step(p, ev.OperatorAmend(PID, stop_loss=p.spec.stop_loss), INSIDE, Policy())

    assert q == p
    assert sends(cmds) == []


@pytest.mark.parametrize("status", [Status.EXITING, Status.NEEDS_ATTENTION, Status.CLOSED])
def test_an_entry_winding_down_or_parked_has_nothing_to_move(status: Status) -> None:
    with pytest.raises(InvalidTransition):
        step(pending(status), ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, Policy())


def test_after_a_crash_at_any_point_the_legs_converge_to_exactly_the_new_level() -> None:
    """Journal says: moved, the new leg in flight or unknown, the old one live. Converging again
    sends nothing twice; once the new one is live, the old one goes."""
    q, _ = step(protected(), ev.OperatorAmend(PID, stop_loss=MOVED), INSIDE, Policy())

    again, cmds = converge(q, INSIDE, Policy())

    assert sends(cmds) == []
    assert again == q


def test_a_trailing_stop_added_later_goes_beside_the_stop_and_a_new_rate_replaces_it_new_first() -> None:
    q, cmds = step(protected(), ev.OperatorAmend(PID, trail=Trail(D("1"))), INSIDE, Policy())

    [trail] = [c for c in of_type(cmds, cm.PlaceProtection) if c.leg is Leg.TRAIL]
    assert (trail.quantity, trail.trail) == (q.share, Trail(D("1")))
    assert of_type(cmds, cm.CancelProtection) == []
    r, _ = step(q, ev.ProtectionReport(PID, trail.client_id, AlgoStatus.NEW), INSIDE, Policy())
    assert r.status is Status.PROTECTED

    s, cmds = step(r, ev.OperatorAmend(PID, trail=Trail(D("2"))), INSIDE, Policy())

    [wider] = of_type(cmds, cm.PlaceProtection)
    assert (wider.leg, wider.trail) == (Leg.TRAIL, Trail(D("2")))
    assert of_type(cmds, cm.CancelProtection) == []  # the old one goes once the new one is live
    assert any(n.text == "operator: move the trailing stop to 2%" for n in s.history)
