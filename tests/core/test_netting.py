"""core.netting: an entry never nets against another entry's share of the same position.

In one-way mode Binance keeps one position per symbol: a SELL while a BUY entry holds a share
would reduce that share behind its stop-loss and take-profit. Such an entry is refused before
anything is written or sent; when it was already requested (a daemon claims it), it ends
NOT_PLACED with the reason, and nothing is sent.
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
        pytest.param(long_entry(Status.PROTECTED), spec(Side.BUY), id="same direction: adds to it"),
        pytest.param(long_entry(Status.PROTECTED), replace(SELL, symbol="ETHUSDT"), id="another symbol"),
        pytest.param(long_entry(Status.CLOSED), SELL, id="the other is over"),
        pytest.param(long_entry(Status.EXITING, filled_qty=D(0)), SELL,
                     id="the other's entry is done and it holds no share"),
        pytest.param(long_entry(Status.PROTECTED, spec=spec(position_side=PositionSide.LONG)),
                     replace(SELL, position_side=PositionSide.SHORT), id="hedge mode: another position"),
    ],
)
def test_nothing_stands_in_the_way(other: Pending, new: EntrySpec) -> None:
    # Act
    found = netted_by(new, [other])

    # Assert
    assert found is None


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
    """A SELL requested while a BUY is protected ends NOT_PLACED; a BUY requested beside it is sent."""
    # Arrange
    buy = long_entry(Status.PROTECTED)
    sell = pending(Status.REQUESTED, pid=OTHER, spec=SELL, created_at=T0 + 1)
    more = pending(Status.REQUESTED, pid=make_pending_id(T0, 3), created_at=T0 + 2)
    state = {p.pending_id: p for p in (buy, sell, more)}

    # Act
    live = [algo(x) for x in buy.protections]
    plan = reconcile(state, snapshot(open_algos=live, position="1.0"), T0 + 10, POLICY)

    # Assert
    rows = {r.pending_id: r for r in plan.rows}
    assert rows[sell.pending_id].result is Status.NOT_PLACED
    assert of_type(rows[sell.pending_id].commands, cm.PlaceEntry) == []
    assert rows[more.pending_id].result is Status.SUBMITTING
    assert len(of_type(rows[more.pending_id].commands, cm.PlaceEntry)) == 1
