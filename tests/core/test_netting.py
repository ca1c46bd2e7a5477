"""core.netting: an entry never nets against another entry's share of the same position, and
by default never shares a position with another entry at all.

In one-way mode Binance keeps one position per symbol: a SELL while a BUY entry holds a share
would reduce that share behind its stop-loss and take-profit. A second BUY would share the
position, where one entry's leg can close the other's share (Binance has no OCO): refused too
unless ``[protection] stacking`` is on. Such an entry is refused before anything is written or
sent; when it was already requested (a daemon claims it), it ends NOT_PLACED with the reason,
and nothing is sent.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, Pending, PositionSide, Side, Status
from bot_cli.core.netting import netted_by, netting_refusal
from bot_cli.core.reconcile import reconcile
from tests.core.helpers import PID, POLICY, T0, D, algo, of_type, pending, snapshot, spec


SELL = spec(Side.SELL, price="100", stop_loss="105", take_profit="90")
OTHER = make_pending_id(T0, 2)


def long_entry(status: Status, **changes: object) -> Pending:
    """A BUY entry of 1.0 on BTCUSDT (one-way), as the helpers build it in ``status``."""
    return pending(status, PID, **changes)


@pytest.mark.parametrize(
    "status",
    [Status.REQUESTED, Status.SUBMITTING, Status.OPEN, Status.PARTIALLY_FILLED, Status.PROTECTING,
     Status.PROTECTED, Status.NEEDS_ATTENTION],
)
def test_an_opposite_entry_is_refused_while_the_other_holds_or_may_fill(status: Status) -> None:
    """Working, filled or in doubt: the BUY entry is in the way of a SELL on its position."""
    # Arrange
    buy = long_entry(status)

    # Act
    found = netted_by(SELL, [buy])

    # Assert
    assert found is buy


def test_the_refusal_names_the_entry_in_the_way_and_what_to_do() -> None:
    # Arrange
    buy = long_entry(Status.PROTECTED)

    # Act
    why = netting_refusal(SELL, [buy])

    # Assert
    assert why is not None
    assert f"BUY entry {buy.pending_id} (PROTECTED) in one-way mode" in why
    assert f"`bot close {buy.pending_id}`" in why
    assert "\n" not in why


@pytest.mark.parametrize(
    ("other", "new"),
    [
        pytest.param(long_entry(Status.PROTECTED), replace(SELL, symbol="ETHUSDT"), id="another symbol"),
        pytest.param(long_entry(Status.CLOSED), SELL, id="the other is over"),
        pytest.param(long_entry(Status.EXITING, filled_qty=D(0)), SELL,
                     id="the other's entry is done and it holds no share"),
        pytest.param(long_entry(Status.CLOSED), spec(Side.BUY), id="same direction, the other is over"),
        pytest.param(long_entry(Status.PROTECTED, spec=spec(position_side=PositionSide.LONG)),
                     replace(SELL, position_side=PositionSide.SHORT), id="hedge mode: another position"),
    ],
)
def test_nothing_stands_in_the_way(other: Pending, new: EntrySpec) -> None:
    # Act
    found = netted_by(new, [other])

    # Assert
    assert found is None


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(long_entry(Status.OPEN, filled_qty=D(0)), id="it may still fill"),
        pytest.param(long_entry(Status.PROTECTED), id="it holds a share"),
        pytest.param(long_entry(Status.EXITING, filled_qty=D(0)), id="its legs are still being cancelled"),
        pytest.param(long_entry(Status.NEEDS_ATTENTION), id="a person must look at it"),
    ],
)
def test_by_default_a_second_entry_on_a_live_position_is_refused(other: Pending) -> None:
    """Two entries on one position: a leg of one can close the other's share (no OCO)."""
    # Act
    why = netting_refusal(spec(Side.BUY), [other])

    # Assert
    assert why is not None
    assert f"BUY entry {other.pending_id} ({other.status.value}) in one-way mode" in why
    assert "[protection] stacking = true" in why
    assert "\n" not in why


def test_with_stacking_on_an_entry_may_add_to_a_position_but_never_net_against_it() -> None:
    # Arrange
    buy = long_entry(Status.PROTECTED)

    # Act
    same = netted_by(spec(Side.BUY), [buy], stacking=True)
    opposite = netted_by(SELL, [buy], stacking=True)

    # Assert
    assert same is None
    assert opposite is buy


def test_of_two_requests_on_one_position_the_earlier_one_goes_ahead() -> None:
    # Arrange
    earlier = long_entry(Status.REQUESTED)
    later = pending(Status.REQUESTED, pid=OTHER, created_at=T0 + 1)

    # Act
    for_earlier = netted_by(earlier.spec, [earlier, later], earlier)
    for_later = netted_by(later.spec, [earlier, later], later)

    # Assert
    assert for_earlier is None
    assert for_later is earlier


def test_in_hedge_mode_a_sell_on_the_long_side_nets_against_the_long() -> None:
    """SELL with positionSide LONG reduces the long position: the same position, refused."""
    # Arrange
    buy = long_entry(Status.PROTECTED, spec=spec(position_side=PositionSide.LONG))
    sell_long = replace(SELL, position_side=PositionSide.LONG)

    # Act
    why = netting_refusal(sell_long, [buy])

    # Assert
    assert why is not None
    assert "on position side LONG" in why


def test_of_two_opposite_requests_the_earlier_one_goes_ahead() -> None:
    """Claiming the earlier one ignores the later request; claiming the later one is refused."""
    # Arrange
    earlier = long_entry(Status.REQUESTED)
    later = pending(Status.REQUESTED, pid=OTHER, spec=SELL, created_at=T0 + 1)

    # Act
    for_earlier = netted_by(earlier.spec, [earlier, later], earlier)
    for_later = netted_by(later.spec, [earlier, later], later)

    # Assert
    assert for_earlier is None
    assert for_later is earlier


def test_a_claim_with_a_conflict_is_not_placed_and_sends_nothing() -> None:
    # Arrange
    requested = pending(Status.REQUESTED, created_at=T0)

    # Act
    after, cmds = step(requested, ev.EntryClaimed(requested.pending_id, "BTCUSDT already has ..."), T0 + 10)

    # Assert
    assert after.status is Status.NOT_PLACED
    assert after.reason == "refused, nothing sent: BTCUSDT already has ..."
    assert of_type(cmds, cm.PlaceEntry) == []


def test_reconcile_refuses_a_request_that_would_net_and_sends_the_one_that_would_not() -> None:
    """A SELL requested while a BUY is protected ends NOT_PLACED; with stacking on, a BUY
    requested beside it is sent."""
    # Arrange
    buy = long_entry(Status.PROTECTED)
    sell = pending(Status.REQUESTED, pid=OTHER, spec=SELL, created_at=T0 + 1)
    more = pending(Status.REQUESTED, pid=make_pending_id(T0, 3), created_at=T0 + 2)
    state = {p.pending_id: p for p in (buy, sell, more)}

    # Act
    live = [algo(x) for x in buy.protections]
    plan = reconcile(state, snapshot(open_algos=live, position="1.0"), T0 + 10, replace(POLICY, stacking=True))

    # Assert
    rows = {r.pending_id: r for r in plan.rows}
    assert rows[sell.pending_id].result is Status.NOT_PLACED
    assert of_type(rows[sell.pending_id].commands, cm.PlaceEntry) == []
    assert rows[more.pending_id].result is Status.SUBMITTING
    assert len(of_type(rows[more.pending_id].commands, cm.PlaceEntry)) == 1


def test_reconcile_by_default_refuses_a_request_beside_a_live_entry() -> None:
    # Arrange
    buy = long_entry(Status.PROTECTED)
    more = pending(Status.REQUESTED, pid=OTHER, created_at=T0 + 1)
    state = {p.pending_id: p for p in (buy, more)}

    # Act
    live = [algo(x) for x in buy.protections]
    plan = reconcile(state, snapshot(open_algos=live, position="1.0"), T0 + 10, POLICY)

    # Assert
    row = next(r for r in plan.rows if r.pending_id == more.pending_id)
    assert row.result is Status.NOT_PLACED
    assert of_type(row.commands, cm.PlaceEntry) == []
