"""core.drop: when forgetting an entry would leave something working on the exchange."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core.commands import ArchivePending
from bot_cli.core.drop import drop_blocker, still_live
from bot_cli.core.engine import step
from bot_cli.core.events import OperatorDrop
from bot_cli.core.model import CloseOrder, Leg, LegState, Status
from tests.core.helpers import INSIDE, PID, T0, cid, legs, pending


LIVE = [s for s in Status if not s.terminal]


def test_an_entry_not_sent_yet_is_safe_to_drop() -> None:
    """REQUESTED: nothing was sent; a daemon that claims it later finds it archived."""
    assert drop_blocker(pending(Status.REQUESTED)) is None


@pytest.mark.parametrize("status", [Status.SUBMITTING, Status.OPEN])
def test_a_working_entry_order_blocks(status: Status) -> None:
    """The entry order may still fill with nothing to protect it: named with its client id."""
    reason = drop_blocker(pending(status))
    assert reason is not None
    assert "\n" not in reason
    assert reason.startswith(f"{PID}: entry order {cid(Leg.ENTRY)} ({status.value})")


def test_live_protective_orders_block_and_are_each_named() -> None:
    """A partly filled entry: its entry order and both legs would be left to themselves."""
    p = pending(Status.PARTIALLY_FILLED)
    reason = drop_blocker(p)
    assert reason is not None
    for x in p.protections:
        assert f"{x.client_id} ({x.state.value})" in reason
    assert "stop-loss" in reason
    assert "take-profit" in reason
    assert "them" in reason


@pytest.mark.parametrize("state", list(LegState))
def test_a_leg_in_any_state_blocks(state: LegState) -> None:
    """Being sent, unknown, canceling or fired: the exchange may still hold it."""
    p = pending(Status.PROTECTED, protections=legs(1, "1.0", state))
    names = ("stop-loss", "take-profit")
    assert still_live(p) == tuple(
        f"{name} {x.client_id} ({state.value})" for name, x in zip(names, p.protections, strict=True)
    )


def test_a_close_in_flight_blocks_and_a_landed_one_does_not() -> None:
    """A market close whose outcome is not known yet may still execute."""
    base = pending(Status.PROTECTED, protections=())
    sending = replace(base, close=CloseOrder(cid(Leg.CLOSE, 2), base.filled_qty, LegState.SENDING, T0))
    landed = replace(sending, close=replace(sending.close, state=LegState.LIVE))  # type: ignore[type-var]
    assert still_live(sending) == (f"market close {cid(Leg.CLOSE, 2)} (SENDING)",)
    assert drop_blocker(landed) is None


def test_nothing_left_on_the_exchange_is_safe() -> None:
    """Filled, no legs, no close: the journal knows of nothing working (the exchange check
    elsewhere looks at the position)."""
    assert drop_blocker(pending(Status.NEEDS_ATTENTION, protections=())) is None


@pytest.mark.parametrize("status", LIVE, ids=lambda s: s.name)
def test_every_live_status_drops_through_the_lifecycle(status: Status) -> None:
    """What ops.drop_pending relies on: OperatorDrop from any live status archives, nothing else."""
    p = pending(status)
    q, cmds = step(p, OperatorDrop(p.pending_id, "dropped"), INSIDE)
    assert q.status is Status.DROPPED
    assert cmds == [ArchivePending(q, "dropped")]
