"""A leg that fired unseen is counted before anything is closed: an entry never exits twice.

The entry has filled 0.4 of 1.0 and its stop-loss for 0.4 is live. The market crosses the
stop: the venue fires it, but its report has not reached the bot. The rest of the entry fills;
the bot sizes a new stop for 1.0, which the venue refuses with -2021 (already crossed), so the
bot closes at market. It must first learn what the old stop executed: its cancel answers
"unknown order" (it fired), and the query by its id says it executed 0.4. So the close is for
the 0.6 left, and the entry's legs and closes execute exactly what it filled.
(Found by a soak run: the cancel's "unknown order" was taken as "cancelled", the close was for
the whole share, and together they executed 0.080 of an entry that filled 0.050.)
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, OrderType, PendingId, Policy, PositionSide, Side, Status
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange


SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal(100), Decimal(95), Decimal(110))


def test_a_stop_that_fired_unseen_is_not_closed_again(tmp_path: Path) -> None:
    async def scenario() -> tuple[FakeExchange, PendingId, Status]:
        # Arrange: another entry holds 1.0 of the position; this one has 0.4 filled and protected
        clock = FakeClock()
        venue = FakeExchange(clock)
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock, policy=Policy(stacking=True))
        other = client_id((await engine.execute_entry(SPEC)).pending_id, Leg.ENTRY)
        venue.fill(other, Decimal("1.0"))
        await engine.handle_order_filled(other, Decimal("1.0"), Decimal(100))
        clock.advance(1)
        p = await engine.execute_entry(SPEC)
        pid, entry = p.pending_id, client_id(p.pending_id, Leg.ENTRY)
        venue.fill(entry, Decimal("0.4"))
        await engine.handle_order_filled(entry, Decimal("0.4"), Decimal(100))
        assert engine.state[pid].status is Status.PARTIALLY_FILLED
        old_stop = client_id(pid, Leg.SL, 1)

        # Act: the stop fires at the venue (its report not seen), then the rest fills and the
        # new stop is refused as already crossed
        venue.fire(old_stop)
        venue.fill(entry, Decimal("1.0"))
        venue.fault("place_protection", "would_trigger")
        await engine.handle_order_filled(entry, Decimal("1.0"), Decimal(100))
        after = engine.state.get(pid)
        return venue, pid, Status.CLOSED if after is None else after.status

    venue, pid, status = asyncio.run(scenario())

    # Assert: from the venue's side
    mine = {cid: qty for cid, qty in venue.executed.items() if cid.startswith(f"{pid}-")}
    assert sum(mine.values()) == Decimal("1.0"), mine
    assert mine[client_id(pid, Leg.SL, 1)] == Decimal("0.4")
    assert venue.position[("BTCUSDT", PositionSide.BOTH)] == Decimal("1.0")  # the other's share, intact
    assert status is Status.CLOSED
