"""The dead-man switch, decided: armed where an entry order works, renewed every quarter of the
countdown, turned off where none does, skipped where it would cancel orders that are not the
bot's, and never armed where the probe saw it strip the legs (or, on Binance, before a probe)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core import deadman as dm
from bot_cli.core.model import Status
from tests.core.helpers import OTHER_PID, T0, pending, spec


ON = dm.Switch(countdown_ms=120_000)


@pytest.mark.parametrize(
    ("status", "works"),
    [
        (Status.SUBMITTING, True), (Status.OPEN, True), (Status.PARTIALLY_FILLED, True),
        (Status.REQUESTED, False), (Status.PROTECTING, False), (Status.PROTECTED, False),
        (Status.EXITING, False), (Status.NEEDS_ATTENTION, False),
    ],
)  # fmt: skip
def test_a_symbol_is_wanted_while_an_entry_order_of_the_journal_works_there(status: Status, works: bool) -> None:
    assert dm.working_symbols([pending(status)]) == ({"BTCUSDT"} if works else set())


def test_a_wanted_symbol_is_armed_then_renewed_only_once_a_quarter_of_the_countdown_has_passed() -> None:
    first = dm.plan({"BTCUSDT"}, {}, {}, T0, ON)
    assert first.arm == ("BTCUSDT",)

    too_soon = dm.plan({"BTCUSDT"}, {}, {"BTCUSDT": T0}, T0 + 29_999, ON)
    due = dm.plan({"BTCUSDT"}, {}, {"BTCUSDT": T0}, T0 + 30_000, ON)

    assert too_soon.arm == ()
    assert too_soon.disarm == ()
    assert due.arm == ("BTCUSDT",)


def test_a_symbol_armed_but_no_longer_wanted_is_turned_off_so_a_later_order_by_hand_is_not_cancelled() -> None:
    done = dm.plan({"ETHUSDT"}, {}, {"BTCUSDT": T0, "ETHUSDT": T0}, T0 + 1, ON)

    assert done.disarm == ("BTCUSDT",)
    assert done.arm == ()


def test_regular_orders_that_are_not_the_bots_skip_the_symbol_unless_the_operator_includes_them() -> None:
    skipped = dm.plan({"BTCUSDT"}, {"BTCUSDT": 2}, {"BTCUSDT": T0}, T0 + 1, ON)
    included = dm.plan({"BTCUSDT"}, {"BTCUSDT": 2}, {}, T0, replace(ON, include_foreign=True))

    assert skipped.arm == ()
    assert skipped.disarm == ("BTCUSDT",)  # armed before the foreign orders appeared: off now
    assert "2 regular order(s) on BTCUSDT are not the bot's" in skipped.skipped["BTCUSDT"]
    assert 'foreign_orders = "include"' in skipped.skipped["BTCUSDT"]
    assert included.arm == ("BTCUSDT",)


def test_a_switch_the_verdict_forbids_arms_nothing_and_every_wanted_symbol_says_why() -> None:
    off = dm.switch_for(120_000, include_foreign=False, paper=True, verdict=dm.LEGS_CANCELLED, probed="2026-12-07")

    decided = dm.plan({"BTCUSDT"}, {}, {"BTCUSDT": T0}, T0 + 1, off)

    assert decided.arm == ()
    assert decided.disarm == ("BTCUSDT",)
    assert "cancel algo orders" in decided.skipped["BTCUSDT"]
    assert "strip every stop" in decided.skipped["BTCUSDT"]


@pytest.mark.parametrize(
    ("paper", "verdict", "allowed"),
    [
        (True, None, True),  # the paper venue implements the documented behaviour
        (True, dm.LEGS_SURVIVE, True),
        (True, dm.LEGS_CANCELLED, False),
        (False, None, False),  # Binance: off until a probe on this account says the legs survive
        (False, "no-effect", False),
        (False, dm.LEGS_SURVIVE, True),
        (False, dm.LEGS_CANCELLED, False),
    ],
)
def test_whether_the_switch_may_be_armed_is_the_probe_verdicts_to_say(
    paper: bool, verdict: str | None, allowed: bool
) -> None:
    switch = dm.switch_for(120_000, include_foreign=False, paper=paper, verdict=verdict, probed="2026-12-07: seen")

    assert switch.allowed is allowed
    assert bool(switch.why_not) is not allowed
    assert bool(switch.basis) is allowed


def test_countdown_zero_arms_nothing_and_turns_off_what_a_past_run_armed() -> None:
    off = dm.plan({"BTCUSDT"}, {}, {"BTCUSDT": 0}, T0, dm.Switch(countdown_ms=0))

    assert off.arm == ()
    assert off.disarm == ("BTCUSDT",)


def test_two_entries_on_two_symbols_arm_both_and_one_settling_leaves_the_other_armed() -> None:
    eth = pending(Status.OPEN, OTHER_PID, spec=spec(symbol="ETHUSDT"))
    both = dm.working_symbols([pending(Status.OPEN), eth])
    after = dm.working_symbols([pending(Status.PROTECTED), eth])

    assert both == {"BTCUSDT", "ETHUSDT"}
    assert dm.plan(after, {}, {"BTCUSDT": T0, "ETHUSDT": T0}, T0 + 1, ON).disarm == ("BTCUSDT",)
