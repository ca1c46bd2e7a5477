"""Entries stacked on one position ([protection] stacking): exact legs, and an exact account when
the missing OCO bites.

Binance has no one-cancels-other and nets the entries of one position. Stacked, an entry's legs
of a kind never may execute more than its share, not even while it is resized: a larger share
gets a leg for the increment only; a smaller one has its newest legs cancelled first and what
they covered placed again once the cancels are answered. When an entry's legs executed more than
it filled anyway (both fired before the cancel landed), the extra is charged, by the share rule,
to the entries that lost it: exactly, with who and at what price, and an over_execution alert.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.model import AlgoStatus, Exit, Leg, LegState, Pending, Policy, Status
from bot_cli.core.protect import converge, exposure
from bot_cli.core.shares import charge
from tests.core.helpers import INSIDE, ORDER_ID, OTHER_PID, PID, T0, D, cid, leg, of_type, pending


STACKED = Policy(stacking=True)
KEY = ("BTCUSDT", pending().spec.position_side)


def partly(filled: str, *legs_: tuple[Leg, int, str, LegState]) -> Pending:
    """A PARTIALLY_FILLED entry (1.0 asked) with ``filled`` and exactly these legs."""
    p = pending(Status.PARTIALLY_FILLED, filled_qty=D(filled))
    legs = tuple(leg(kind, gen, qty, state) for kind, gen, qty, state in legs_)
    return replace(p, protections=legs, gen=max((x.gen for x in legs), default=0))


def placed(cmds: list[cm.Command]) -> dict[Leg, Decimal]:
    return {c.leg: c.quantity for c in of_type(cmds, cm.PlaceProtection)}


def test_a_resize_places_legs_for_the_increment_only_and_cancels_nothing() -> None:
    # Arrange: 0.4 filled and covered, then the entry fills to 0.7
    p = partly("0.4", (Leg.SL, 1, "0.4", LegState.LIVE), (Leg.TP, 1, "0.4", LegState.LIVE))

    # Act
    q, cmds = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.7"), D("100")), INSIDE, STACKED)

    # Assert
    assert placed(cmds) == {Leg.SL: D("0.3"), Leg.TP: D("0.3")}
    assert of_type(cmds, cm.CancelProtection) == []
    assert (exposure(q, Leg.SL), exposure(q, Leg.TP)) == (D("0.7"), D("0.7"))


def test_alone_on_its_position_a_resize_replaces_the_leg_whole() -> None:
    """The default: one leg per kind, the new one for the whole share; the old one goes once
    the new one is live."""
    p = partly("0.4", (Leg.SL, 1, "0.4", LegState.LIVE), (Leg.TP, 1, "0.4", LegState.LIVE))

    _, cmds = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.7"), D("100")), INSIDE, Policy())

    assert placed(cmds) == {Leg.SL: D("0.7"), Leg.TP: D("0.7")}


def test_pieces_that_add_up_to_the_share_are_protected_and_at_rest() -> None:
    # Arrange
    p = replace(
        pending(Status.PROTECTING, gen=2),
        protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE), leg(Leg.TP, 1, "0.4", LegState.LIVE),
                     leg(Leg.SL, 2, "0.6", LegState.LIVE), leg(Leg.TP, 2, "0.6", LegState.LIVE)),
    )  # fmt: skip

    # Act
    q, cmds = converge(p, INSIDE, STACKED)

    # Assert
    assert q.status is Status.PROTECTED
    assert cmds == []


def test_a_smaller_share_cancels_the_newest_legs_first_and_places_the_rest_once_they_are_gone() -> None:
    """0.4 + 0.6 live for a share now 0.5: the 0.6 goes first (0.4 stays live), and only when
    its cancel is answered is 0.1 placed; at no step may the legs execute more than 0.5."""
    # Arrange
    p = replace(
        pending(Status.PROTECTED, gen=2, exits=(Exit(f"external:{T0}", D("0.5")),)),
        protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE), leg(Leg.SL, 2, "0.6", LegState.LIVE)),
        spec=replace(pending().spec, take_profit=None),
    )  # fmt: skip

    # Act
    q, first = converge(p, INSIDE, STACKED)
    r, then = step(q, ev.ProtectionCanceled(PID, cid(Leg.SL, 2)), INSIDE + 1, STACKED)

    # Assert
    assert of_type(first, cm.CancelProtection) == [cm.CancelProtection(PID, cid(Leg.SL, 2))]
    assert placed(first) == {}
    assert placed(then) == {Leg.SL: D("0.1")}
    live = [x for x in r.protections if x.state is not LegState.CANCELING]
    assert sum((x.quantity for x in live), D(0)) == D("0.5")


def test_a_piece_that_vanished_is_placed_again_alone_for_its_own_quantity() -> None:
    # Arrange: the 0.6 stop expired on the exchange; the position read confirmed the share
    p = replace(
        pending(Status.PROTECTED, gen=2),
        protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE), leg(Leg.TP, 1, "1.0", LegState.LIVE)),
    )  # fmt: skip

    # Act
    _, cmds = converge(p, INSIDE, STACKED)

    # Assert
    assert placed(cmds) == {Leg.SL: D("0.6")}
    assert of_type(cmds, cm.CancelProtection) == []


# -- the missing OCO: both legs of an entry executed ------------------------------------------


def test_legs_executing_more_than_the_entry_filled_tell_the_runtime_who_did_it_and_at_what_price() -> None:
    # Arrange: its SL executed all 1.0; then its TP executes 0.4 more (the position had it)
    p = replace(pending(Status.EXITING, flatten=False, close=None), exits=(Exit(cid(Leg.SL, 1), D("1.0")),),
                protections=(leg(Leg.TP, 1, "1.0", LegState.CANCELING),))  # fmt: skip

    # Act
    report = ev.ProtectionReport(PID, cid(Leg.TP, 1), AlgoStatus.FINISHED, D("0.4"), D("101.5"))
    q, cmds = step(p, report, INSIDE)

    # Assert
    (over,) = of_type(cmds, cm.Overdrawn)
    assert (over.client_id, over.quantity, over.what, over.price) == (cid(Leg.TP, 1), D("0.4"), "TP", D("101.5"))
    assert q.share == 0
    assert q.verify_share  # its end waits for one position read that agrees


def test_the_share_taken_is_booked_exactly_and_said_with_who_and_the_price() -> None:
    # Arrange
    victim = pending(Status.PROTECTED)

    # Act
    taken = ev.ShareTaken(PID, cid(Leg.TP, 1, OTHER_PID), D("0.4"), OTHER_PID, "TP", D("101.5"))
    q, cmds = step(victim, taken, INSIDE, STACKED)

    # Assert
    assert q.share == D("0.6")
    said = f"0.4 BTCUSDT of its share closed by entry {OTHER_PID}'s TP at 101.5"
    assert any(n.text.startswith(said) for n in q.history)
    (alert,) = of_type(cmds, cm.Alert)
    assert alert.kind == "over_execution"
    assert OTHER_PID in alert.message
    assert "share is now 0.6" in alert.message
    # its legs for 1.0 go first; 0.6 is placed once their cancels are answered
    assert {c.client_id for c in of_type(cmds, cm.CancelProtection)} == {cid(Leg.SL, 1), cid(Leg.TP, 1)}
    assert placed(cmds) == {}


def test_a_share_taken_whole_winds_the_entry_down_naming_who_closed_it() -> None:
    victim = pending(Status.PROTECTED)

    taken = ev.ShareTaken(PID, cid(Leg.SL, 1, OTHER_PID), D("1.0"), OTHER_PID, "SL", D("95"))
    q, cmds = step(victim, taken, INSIDE, STACKED)

    assert q.status is Status.EXITING
    assert q.reason == f"closed by entry {OTHER_PID}'s SL at 95"
    assert {c.client_id for c in of_type(cmds, cm.CancelProtection)} == {cid(Leg.SL, 1), cid(Leg.TP, 1)}


def test_a_loss_a_position_read_booked_first_is_the_same_loss_not_a_second_one() -> None:
    """A restart may read the position before it reads the legs that explain it."""
    victim = pending(Status.PROTECTED, exits=(Exit(f"external:{T0}", D("0.4")),))

    taken = ev.ShareTaken(PID, cid(Leg.TP, 1, OTHER_PID), D("0.4"), OTHER_PID, "TP")
    q, _ = step(victim, taken, INSIDE, STACKED)

    assert q.share == D("0.6")
    assert [(x.key, x.quantity) for x in q.exits] == [(f"taken:{cid(Leg.TP, 1, OTHER_PID)}", D("0.4"))]


@pytest.mark.parametrize(
    ("newer_in_doubt", "expected"),
    [
        pytest.param(False, {"newer": D("0.4")}, id="the newest pays first"),
        pytest.param(True, {"newer": D("0.3"), "older": D("0.1")}, id="an entry never pays more than it holds"),
    ],
)
def test_the_share_rule_charges_the_newest_entries_first(newer_in_doubt: bool, expected: dict[str, Decimal]) -> None:
    # Arrange: the taker, an older entry holding 1.0, a newer one holding 0.3 or 0.5
    older = pending(Status.PROTECTED, pid=OTHER_PID)
    newer = pending(Status.PROTECTED, created_at=T0 + 5, filled_qty=D("0.3") if newer_in_doubt else D("0.5"))
    taker = "bc0mgj6k3cw00009"

    # Act
    got = charge([older, newer], KEY, older.spec.side, D("0.4"), taker=taker)  # type: ignore[arg-type]

    # Assert
    names = {older.pending_id: "older", newer.pending_id: "newer"}
    assert {names[pid]: qty for pid, qty in got.items()} == expected


def test_a_piece_too_small_to_stand_alone_is_merged_with_the_newest_of_its_kind() -> None:
    """Hedge mode: legs cannot be reduce-only, so MIN_NOTIONAL (-4164) applies to each piece.
    The 0.1 increment is refused: the newest live SL piece (0.4) is cancelled first, then one
    piece of 0.5 is placed; never above the share, and no refusal counted."""
    # Arrange
    p = partly("0.5", (Leg.SL, 1, "0.4", LegState.LIVE), (Leg.SL, 2, "0.1", LegState.SENDING))
    p = replace(p, spec=replace(p.spec, take_profit=None))
    refused = ev.ProtectionRejected(PID, cid(Leg.SL, 2), -4164, "Order's notional must be no smaller than 5")

    # Act
    q, first = step(p, refused, INSIDE, STACKED)
    r, then = step(q, ev.ProtectionCanceled(PID, cid(Leg.SL, 1)), INSIDE + 1, STACKED)

    # Assert
    assert of_type(first, cm.CancelProtection) == [cm.CancelProtection(PID, cid(Leg.SL, 1))]
    assert placed(first) == {}
    assert q.attempts == 0
    assert placed(then) == {Leg.SL: D("0.5")}
    assert exposure(r, Leg.SL) == D("0.5")


def test_a_share_too_small_for_any_piece_is_refused_as_before() -> None:
    p = partly("0.1", (Leg.SL, 1, "0.1", LegState.SENDING))
    p = replace(p, spec=replace(p.spec, take_profit=None))

    q, cmds = step(p, ev.ProtectionRejected(PID, cid(Leg.SL, 1), -4164, "too small"), INSIDE, STACKED)

    assert q.attempts == 1
    assert of_type(cmds, cm.CancelProtection) == []
