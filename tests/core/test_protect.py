"""Specification of core.protect: the protective orders an entry still needs.

converge() runs after every step: the newest generation must be live and cover the
filled quantity; a resize is a new generation under new ids, and the old one is
canceled only once the new one is acknowledged, so the position is never unprotected.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, Exit, Leg, LegState, Pending, PositionSide, ProtectionOrder, Side, Status
from bot_cli.core.protect import converge, covered, deadline
from tests.core.helpers import (
    INSIDE,
    PID,
    POLICY,
    RECV_WINDOW,
    T0,
    D,
    cid,
    leg,
    legs,
    of_type,
    pending,
    place,
    spec,
)


SL1, TP1, SL2, TP2 = cid(Leg.SL, 1), cid(Leg.TP, 1), cid(Leg.SL, 2), cid(Leg.TP, 2)


def test_deadline_is_send_time_plus_recv_window_plus_margin() -> None:
    """A send stamped at t is signed by t + send_delay (a longer wait re-stamps it) and can land
    until that + recvWindow + margin, never after."""
    # Arrange
    sent_at = T0

    # Act
    due = deadline(sent_at, RECV_WINDOW, POLICY)

    # Assert
    assert due == T0 + POLICY.send_delay_ms + RECV_WINDOW + POLICY.not_found_margin_ms


@pytest.mark.parametrize(
    ("why", "p", "expected"),
    [
        pytest.param("nothing filled", pending(Status.OPEN), False, id="nothing filled"),
        pytest.param(
            "both legs live for the filled quantity", pending(Status.PARTIALLY_FILLED), True,
            id="both legs live for the filled quantity",
        ),
        pytest.param(
            "legs sent, not acknowledged", pending(Status.PROTECTING), False,
            id="legs sent, not acknowledged",
        ),
        pytest.param(
            "live legs for less than the filled quantity",
            pending(Status.PARTIALLY_FILLED, filled_qty=D("0.7")), False,
            id="live legs for less than the filled quantity",
        ),
        pytest.param(
            "only the SL live, the spec asks for a TP too",
            pending(Status.PARTIALLY_FILLED, protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE),)),
            False, id="SL live, TP missing",
        ),
        pytest.param(
            "only the SL live and the spec has no TP",
            pending(Status.PARTIALLY_FILLED, spec=spec(take_profit=None),
                    protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE),)),
            True, id="SL-only spec, SL live",
        ),
        pytest.param(
            "older generation live, newest generation still sending",
            pending(Status.PARTIALLY_FILLED, gen=2, filled_qty=D("0.7"), protections=(
                *legs(1, "0.4", LegState.LIVE), *legs(2, "0.7", LegState.SENDING),
            )),
            False, id="newest generation sending",
        ),
        pytest.param(
            "1.0 and 1.00 are the same quantity",
            pending(Status.PARTIALLY_FILLED, filled_qty=D("0.40")), True,
            id="equal Decimals with different exponents",
        ),
    ],
)
def test_covered_means_newest_generation_live_for_the_filled_quantity(why: str, p: Pending, expected: bool) -> None:
    """covered(): every leg of the spec, newest generation, LIVE, quantity == filled."""
    # Arrange
    entry = p

    # Act
    result = covered(entry)

    # Assert
    assert result is expected, why


@pytest.mark.parametrize(
    "status",
    [Status.SUBMITTING, Status.OPEN, Status.NEEDS_ATTENTION, Status.DROPPED],
)
def test_converge_places_nothing_outside_protecting_statuses(status: Status) -> None:
    """Only PARTIALLY_FILLED, PROTECTING, PROTECTED and EXITING have protective work to do."""
    # Arrange
    p = pending(status, filled_qty=D("1.0"), protections=())

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    assert (q, cmds) == (p, [])


def test_a_protected_entry_whose_legs_vanished_is_protected_again() -> None:
    """PROTECTED is a resting state that keeps its promise: no legs for the share, a new generation."""
    # Arrange
    p = pending(Status.PROTECTED, protections=())

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    assert q.status is Status.PROTECTING
    assert [(c.leg, c.quantity) for c in of_type(cmds, cm.PlaceProtection)] == [(Leg.SL, D("1.0")), (Leg.TP, D("1.0"))]


def test_first_generation_covers_the_filled_quantity() -> None:
    """Filled with no protection: generation 1, one order per leg, quantity = filled."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, gen=0, protections=())

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    new = legs(1, "0.4", LegState.SENDING, sent_at=INSIDE)
    assert q.gen == 1
    assert q.protections == new
    assert cmds == [place(x) for x in new]


def test_nothing_new_of_a_kind_while_its_leg_is_in_flight() -> None:
    """A SENDING or UNKNOWN leg blocks a new leg of its own kind (its outcome may still be a live
    order); the other kind, live at the old size, is resized meanwhile."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, filled_qty=D("0.7"), protections=(
        leg(Leg.SL, 1, "0.4", LegState.UNKNOWN), leg(Leg.TP, 1, "0.4", LegState.LIVE),
    ))

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    assert [(c.client_id, c.quantity) for c in of_type(cmds, cm.PlaceProtection)] == [(TP2, D("0.7"))]
    assert q.find_leg(SL1) == p.find_leg(SL1)


def test_resize_places_a_new_generation_with_new_ids_and_keeps_the_old_live() -> None:
    """More filled than covered: generation 2 is sent; generation 1 stays live meanwhile."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, filled_qty=D("0.7"))

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    placed = of_type(cmds, cm.PlaceProtection)
    assert placed == cmds
    assert [(c.client_id, c.quantity) for c in placed] == [(SL2, D("0.7")), (TP2, D("0.7"))]
    assert [(x.client_id, x.state) for x in q.protections] == [
        (SL1, LegState.LIVE), (TP1, LegState.LIVE),
        (SL2, LegState.SENDING), (TP2, LegState.SENDING),
    ]


@pytest.mark.parametrize(
    ("why", "new_legs", "cancels"),
    [
        pytest.param("only the new SL acknowledged", (
            leg(Leg.SL, 2, "0.7", LegState.LIVE), leg(Leg.TP, 2, "0.7", LegState.SENDING),
        ), [SL1], id="new SL acked, TP sending: the old SL goes, the old TP stays"),
        pytest.param("only the new TP acknowledged", (
            leg(Leg.SL, 2, "0.7", LegState.UNKNOWN), leg(Leg.TP, 2, "0.7", LegState.LIVE),
        ), [TP1], id="new TP acked, SL unknown: the old TP goes, the old SL stays"),
        pytest.param("both new legs acknowledged", legs(2, "0.7", LegState.LIVE),
                     [SL1, TP1], id="both acked: cancel the old"),
        pytest.param("neither acknowledged", legs(2, "0.7", LegState.SENDING),
                     [], id="both sending: keep the old"),
    ],
)
def test_old_generation_is_canceled_only_after_the_new_one_is_acknowledged(
    why: str, new_legs: tuple[ProtectionOrder, ...], cancels: tuple[ClientId, ...]
) -> None:
    """Cancel-after-ack, leg by leg: an old leg stays until the new leg of its kind is live, so
    the share is never without a stop and no kind is live twice longer than one answer."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, gen=2, filled_qty=D("0.7"),
                protections=(*legs(1, "0.4", LegState.LIVE), *new_legs))

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    assert cmds == [cm.CancelProtection(PID, c) for c in cancels], why
    assert {x.client_id for x in q.protections if x.state is LegState.CANCELING} == set(cancels)


def test_protecting_becomes_protected_when_only_the_newest_generation_is_left() -> None:
    """PROTECTED only once the old generation's cancels are confirmed."""
    # Arrange
    waiting = pending(Status.PROTECTING, gen=2, protections=(
        leg(Leg.SL, 1, "0.4", LegState.CANCELING), *legs(2, "1.0", LegState.LIVE),
    ))
    done = replace(waiting, protections=legs(2, "1.0", LegState.LIVE))

    # Act
    still, cmds1 = converge(waiting, INSIDE, POLICY)
    final, cmds2 = converge(done, INSIDE, POLICY)

    # Assert
    assert (still.status, cmds1) == (Status.PROTECTING, [])
    assert (final.status, final.reason, cmds2) == (Status.PROTECTED, "protected", [])


def test_partially_filled_stays_following_when_covered() -> None:
    """While the entry still works, a covered entry keeps following fills (not PROTECTED)."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED)

    # Act
    q, cmds = converge(p, INSIDE, POLICY)

    # Assert
    assert (q, cmds) == (p, [])


@pytest.mark.parametrize(
    ("now", "placed"),
    [
        pytest.param(INSIDE - 1, False, id="before retry_at: wait"),
        pytest.param(INSIDE, True, id="at retry_at: try again"),
    ],
)
def test_a_refused_protection_is_not_retried_before_retry_at(now: int, placed: bool) -> None:
    """After a refusal, the next generation waits until retry_at."""
    # Arrange
    p = pending(Status.PROTECTING, protections=(), attempts=1, retry_at=INSIDE)

    # Act
    _, cmds = converge(p, now, POLICY)

    # Assert
    assert bool(cmds) is placed


def test_generations_never_reuse_an_id() -> None:
    """Each resize bumps the generation: every client id is new, even after old ones are gone."""
    # Arrange
    p: Pending = pending(Status.PARTIALLY_FILLED, gen=7, protections=())
    seen: set[str] = set()

    # Act
    for filled in ("0.1", "0.2", "0.3"):
        p = replace(p, filled_qty=D(filled))
        p, cmds = converge(p, INSIDE, POLICY)
        seen.update(c.client_id for c in of_type(cmds, cm.PlaceProtection))
        p = replace(p, protections=tuple(replace(x, state=LegState.LIVE) for x in p.legs_of(p.gen)))

    # Assert
    assert seen == {cid(Leg.SL, g) for g in (8, 9, 10)} | {cid(Leg.TP, g) for g in (8, 9, 10)}


@pytest.mark.parametrize(
    ("why", "p", "expected_status", "expected_cmds"),
    [
        pytest.param(
            "a live TP while closing is canceled",
            pending(Status.EXITING, protections=(leg(Leg.TP, 1, "1.0", LegState.LIVE),)),
            Status.EXITING, [cm.CancelProtection(PID, TP1, urgent=True)], id="cancel live legs",
        ),
        pytest.param(
            "a cancel in progress: wait for it", pending(Status.EXITING),
            Status.EXITING, [], id="wait for cancels",
        ),
        pytest.param(
            "no protection left, close not yet acknowledged: wait",
            pending(Status.EXITING, protections=()), Status.EXITING, [], id="wait for the close",
        ),
        pytest.param(
            "no protection left, the close's execution recorded: CLOSED",
            pending(Status.EXITING, protections=(), close=None, exits=(Exit(cid(Leg.CLOSE, 2), D("1.0")),)),
            Status.CLOSED, [], id="closed",
        ),
        pytest.param(
            "nothing live, the share still open, flattening: close exactly the share",
            pending(Status.EXITING, protections=(), close=None, gen=2),
            Status.EXITING,
            [cm.ClosePosition(PID, cid(Leg.CLOSE, 3), "BTCUSDT", Side.SELL, D("1.0"), PositionSide.BOTH)],
            id="close the share",
        ),
        pytest.param(
            "a fired leg left part of the share, not flattening: protect what is left",
            pending(Status.EXITING, protections=(), close=None, flatten=False, exits=(Exit(SL1, D("0.4")),)),
            Status.PROTECTING, [], id="protect the rest",
        ),
        pytest.param(
            "the entry still works after a fired leg, not flattening: follow it again",
            pending(Status.EXITING, protections=(), close=None, flatten=False, entry_done=False),
            Status.PARTIALLY_FILLED, [], id="back to following the entry",
        ),
    ],
)
def test_closing_winds_down_protection_then_closes(
    why: str, p: Pending, expected_status: Status, expected_cmds: list[cm.Command]
) -> None:
    """CLOSING cancels every live protection and ends CLOSED when nothing is left in flight."""
    # Arrange
    entry = p

    # Act
    q, cmds = converge(entry, INSIDE, POLICY)

    # Assert
    assert (q.status, cmds) == (expected_status, expected_cmds), why
