"""Take profit in steps, and a trailing stop beside the stop-loss (the core's rules).

Each take-profit level is a leg of its own for its part of the share; a level that fires is a
step, not the end: the other levels stay and the stops shrink to what is left. A trailing stop
is a stop like the stop-loss: sized to the share, resized with it, cancelled when a sibling fires.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.ids import client_id, parse_client_id
from bot_cli.core.model import AlgoStatus, EntrySpec, Leg, LegState, Pending, Policy, Status, TpLevel, Trail
from bot_cli.core.protect import converge, target
from bot_cli.exchange.requests import new_protection
from tests.core.helpers import INSIDE, ORDER_ID, PID, D, of_type, pending, spec


LEVELS = replace(spec(quantity="1.0"), take_profit=D("105"),
                 tp_levels=(TpLevel(D("105"), D("0.3")), TpLevel(D("110"), D("0.7"))))  # fmt: skip
TRAILED = replace(spec(quantity="1.0"), trail=Trail(D("1.5"), D("104")))


def filled(s: EntrySpec, qty: str = "1.0") -> Pending:
    """PROTECTING, ``qty`` filled, no legs yet."""
    return replace(pending(Status.PROTECTING, filled_qty=D(qty), protections=(), gen=0), spec=s)


def placed(cmds: list[cm.Command]) -> list[tuple[Leg, str, Decimal, Decimal]]:
    """(leg, its level as the id says it, quantity, trigger) of each leg placed, in a stable order."""
    rows = [(c.leg, c.client_id.rsplit("-", 1)[-1] if c.client_id.count("-") > 1 else "", c.quantity,
             c.trigger_price) for c in of_type(cmds, cm.PlaceProtection)]  # fmt: skip
    return sorted(rows, key=lambda r: (r[0].value, r[1]))


def all_live(p: Pending) -> Pending:
    return replace(p, protections=tuple(replace(x, state=LegState.LIVE) for x in p.protections))


def test_each_level_is_a_leg_of_its_own_for_its_part_and_the_stop_covers_the_whole_share() -> None:
    _, cmds = converge(filled(LEVELS), INSIDE, Policy())

    assert placed(cmds) == [(Leg.SL, "", D("1.0"), D("95")), (Leg.TP, "1", D("0.3"), D("105")),
                            (Leg.TP, "2", D("0.7"), D("110"))]  # fmt: skip


def test_a_partial_fill_is_the_first_levels() -> None:
    p = filled(LEVELS, "0.5")

    assert (target(p, (Leg.TP, 1)), target(p, (Leg.TP, 2))) == (D("0.3"), D("0.2"))


def test_a_level_that_fires_is_a_step_the_stop_shrinks_to_what_is_left_and_the_other_level_stays() -> None:
    q, _ = converge(filled(LEVELS), INSIDE, Policy())
    q = replace(all_live(q), status=Status.PROTECTED)
    level_1 = next(x for x in q.protections if x.level == 1)

    r, cmds = step(q, ev.ProtectionReport(PID, level_1.client_id, AlgoStatus.FINISHED, D("0.3"), D("105")),
                   INSIDE, Policy())  # fmt: skip

    assert r.status is Status.PROTECTING  # not EXITING: nothing else is cancelled
    assert r.share == D("0.7")
    assert placed(cmds) == [(Leg.SL, "", D("0.7"), D("95"))]
    assert of_type(cmds, cm.CancelProtection) == []  # the old stop goes once the new one is live
    assert [x.level for x in r.protections if x.leg is Leg.TP] == [2]


def test_the_last_level_firing_winds_the_entry_down() -> None:
    q, _ = converge(filled(LEVELS), INSIDE, Policy())
    q = replace(all_live(q), status=Status.PROTECTED, exits=())
    one, two = (next(x for x in q.protections if x.level == n) for n in (1, 2))
    r, _ = step(q, ev.ProtectionReport(PID, one.client_id, AlgoStatus.FINISHED, D("0.3")), INSIDE, Policy())

    s, cmds = step(r, ev.ProtectionReport(PID, two.client_id, AlgoStatus.FINISHED, D("0.7")), INSIDE, Policy())

    assert s.status is Status.EXITING
    assert s.share == 0
    assert of_type(cmds, cm.CancelProtection)  # the stop-loss goes


def test_a_trailing_stop_is_placed_beside_the_stop_loss_for_the_whole_share_with_its_rate() -> None:
    _, cmds = converge(filled(TRAILED), INSIDE, Policy())

    [trail] = [c for c in of_type(cmds, cm.PlaceProtection) if c.leg is Leg.TRAIL]
    assert (trail.quantity, trail.trigger_price, trail.trail) == (D("1.0"), D("104"), Trail(D("1.5"), D("104")))
    assert {c.leg for c in of_type(cmds, cm.PlaceProtection)} == {Leg.SL, Leg.TP, Leg.TRAIL}


def test_a_trailing_stop_goes_to_binance_as_trailing_stop_market_with_callback_rate_and_activate_price() -> None:
    _, cmds = converge(filled(TRAILED), INSIDE, Policy())
    [trail] = [c for c in of_type(cmds, cm.PlaceProtection) if c.leg is Leg.TRAIL]

    sent = dict(new_protection(trail, hedge_mode=False).params)

    assert sent["type"] == "TRAILING_STOP_MARKET"
    assert (sent["callbackRate"], sent["activatePrice"]) == ("1.5", "104")
    assert "triggerPrice" not in sent
    assert sent["reduceOnly"] == "true"


def test_a_trailing_stop_that_fires_is_the_end_of_the_entry_like_any_stop() -> None:
    q, _ = converge(filled(TRAILED), INSIDE, Policy())
    q = replace(all_live(q), status=Status.PROTECTED)
    trail = next(x for x in q.protections if x.leg is Leg.TRAIL)

    r, cmds = step(q, ev.ProtectionReport(PID, trail.client_id, AlgoStatus.FINISHED, D("1.0"), D("102")),
                   INSIDE, Policy())  # fmt: skip

    assert r.status is Status.EXITING
    assert len(of_type(cmds, cm.CancelProtection)) == 2  # the floor stop and the take-profit


def test_level_ids_say_their_level_and_parse_back() -> None:
    cid = client_id(PID, Leg.TP, 3, 2)

    assert cid == f"{PID}-tp3-2"
    parsed = parse_client_id(cid)
    assert parsed is not None
    assert (parsed.leg, parsed.gen, parsed.level) == (Leg.TP, 3, 2)
    assert parse_client_id(f"{PID}-sl3-2") is None  # only a take-profit has levels
    assert parse_client_id(f"{PID}-tr1") is not None


def test_a_resize_by_a_partial_fill_keeps_the_levels_in_order() -> None:
    q, _ = converge(filled(LEVELS, "0.2"), INSIDE, Policy())
    q = replace(all_live(q), status=Status.PARTIALLY_FILLED, entry_done=False)

    _, cmds = step(q, ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")), INSIDE, Policy())

    assert (Leg.TP, "1", D("0.3"), D("105")) in placed(cmds)
    assert (Leg.TP, "2", D("0.7"), D("110")) in placed(cmds)
