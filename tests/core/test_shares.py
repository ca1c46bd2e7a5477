"""Specification of core.shares: which part of a symbol's net position is each entry's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core.model import Exit, Pending, PositionSide, Side, Status
from bot_cli.core.shares import allocate, shortfall
from tests.core.helpers import T0, D, pending, spec


def _entry(n: int, filled: str, side: Side = Side.BUY, **changes: object) -> Pending:
    entry = spec(side, stop_loss="95" if side is Side.BUY else "105", take_profit="110" if side is Side.BUY else "90")
    p = pending(Status.PROTECTED, pid=f"bc0mgj6k3cw0000{n}", spec=entry, filled_qty=D(filled), created_at=T0 + n)  # type: ignore[arg-type]
    return replace(p, **changes) if changes else p  # type: ignore[arg-type]


BOTH = PositionSide.BOTH


def test_every_entry_gets_its_share_when_the_position_holds_them_all() -> None:
    a, b = _entry(1, "1.0"), _entry(2, "0.5")
    assert allocate([a, b], "BTCUSDT", BOTH, D("1.5")) == {a.pending_id: D("1.0"), b.pending_id: D("0.5")}


def test_a_reduction_nobody_explains_is_charged_to_the_newest_entry_first() -> None:
    a, b = _entry(1, "1.0"), _entry(2, "0.5")
    assert allocate([b, a], "BTCUSDT", BOTH, D("1.2")) == {a.pending_id: D("1.0"), b.pending_id: D("0.2")}


def test_an_entry_whose_leg_vanished_unseen_is_charged_before_any_other() -> None:
    """Its leg most likely fired: the older entry without such doubt keeps its share."""
    a, b = _entry(1, "1.0", verify_share=True), _entry(2, "0.5")
    assert allocate([a, b], "BTCUSDT", BOTH, D("0.5")) == {a.pending_id: D(0), b.pending_id: D("0.5")}


def test_an_entry_gets_no_more_than_its_own_share_of_a_larger_position() -> None:
    """Its own legs' executions are not its share any more, whatever the position says."""
    a = _entry(1, "1.0", exits=(Exit("x", D("0.4")),))
    assert allocate([a], "BTCUSDT", BOTH, D("5")) == {a.pending_id: D("0.6")}


@pytest.mark.parametrize(
    ("side", "amount", "expected"),
    [
        pytest.param(Side.BUY, "1.0", "1.0", id="long entry, long position"),
        pytest.param(Side.BUY, "-1.0", "0", id="long entry, position turned short"),
        pytest.param(Side.SELL, "-1.0", "1.0", id="short entry, short position"),
        pytest.param(Side.SELL, "1.0", "0", id="short entry, position turned long"),
    ],
)
def test_a_position_counts_for_an_entry_only_when_it_points_the_entry_s_way(
    side: Side, amount: str, expected: str
) -> None:
    a = _entry(1, "1.0", side)
    assert allocate([a], "BTCUSDT", BOTH, D(amount)) == {a.pending_id: D(expected)}


def test_entries_of_other_symbols_and_archived_ones_are_left_out() -> None:
    a = _entry(1, "1.0")
    other = replace(_entry(2, "1.0"), spec=replace(a.spec, symbol="ETHUSDT"))
    gone = _entry(3, "1.0", status=Status.CLOSED)
    assert allocate([a, other, gone], "BTCUSDT", BOTH, D("1.0")) == {a.pending_id: D("1.0")}


def test_shortfall_is_what_the_position_lacks_of_every_share() -> None:
    a, b = _entry(1, "1.0"), _entry(2, "0.5")
    assert shortfall([a, b], "BTCUSDT", BOTH, D("1.5")) == D(0)
    assert shortfall([a, b], "BTCUSDT", BOTH, D("1.0")) == D("0.5")
    assert shortfall([a, b], "BTCUSDT", BOTH, D("2.0")) == D(0)  # a fill not seen yet is no loss
