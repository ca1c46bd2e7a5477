"""Specification of core.shares: which part of a symbol's net position is each entry's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core.model import Exit, Pending, PositionSide, Side, Status
from bot_cli.core.shares import allocate, shortfall, unclaimed
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


# -- positions no entry explains ------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "position", "expected"),
    [
        pytest.param([], "0", None, id="flat: nothing"),
        pytest.param(["1.0"], "1.0", None, id="the entry's share is the position"),
        pytest.param(["1.0", "0.5"], "1.5", None, id="two shares make the position"),
        pytest.param(["1.0"], "0.4", None, id="less than the shares: a reduction, not an excess"),
        pytest.param(["1.0"], "1.3", (Side.BUY, "0.3"), id="0.3 more than the entries hold"),
        pytest.param([], "2.0", (Side.BUY, "2.0"), id="a position with no entry at all"),
        pytest.param(["1.0"], "-0.5", (Side.SELL, "0.5"), id="a short where the entries are long"),
    ],
)
def test_a_position_larger_than_the_entries_explain_is_unclaimed(
    entries: list[str], position: str, expected: tuple[Side, str] | None
) -> None:
    # Arrange
    live = [_entry(n, filled) for n, filled in enumerate(entries, start=1)]

    # Act
    found = unclaimed(live, "BTCUSDT", BOTH, D(position))

    # Assert
    assert found == (None if expected is None else (expected[0], D(expected[1])))


def test_a_working_entry_order_may_have_filled_into_the_position_before_its_report() -> None:
    """Its unfilled rest explains an excess (a fill's reports may cross); a request not sent
    yet explains nothing."""
    # Arrange
    working = replace(_entry(1, "0"), status=Status.OPEN, entry_done=False)
    requested = replace(_entry(2, "0"), status=Status.REQUESTED, entry_done=False)

    # Act
    while_working = unclaimed([working], "BTCUSDT", BOTH, D("1.0"))
    while_requested = unclaimed([requested], "BTCUSDT", BOTH, D("1.0"))

    # Assert
    assert while_working is None
    assert while_requested == (Side.BUY, D("1.0"))


def test_in_hedge_mode_each_position_side_is_its_own() -> None:
    # Arrange
    long_entry = replace(_entry(1, "1.0"), spec=spec(position_side=PositionSide.LONG))

    # Act
    on_long = unclaimed([long_entry], "BTCUSDT", PositionSide.LONG, D("1.0"))
    on_short = unclaimed([long_entry], "BTCUSDT", PositionSide.SHORT, D("-1.0"))

    # Assert
    assert on_long is None
    assert on_short == (Side.SELL, D("1.0"))
