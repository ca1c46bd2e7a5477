"""An entry order that landed while every read lags is cancelled by id, never left unwatched.

The entry's send loses its answer (outcome unknown) and the venue's reads do not show the
order for longer than timestamp + recvWindow + margin. A query then says "not found", which
used to be taken as proof that it never landed: the order rested on the book with nothing
following it. A cancel by client id reaches the matching engine: it finds the order and
cancels it. Only a cancel that finds nothing ends the entry NOT_PLACED.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, OrderStatus, OrderType, Side, Status
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import decode
from tests.fakes import FakeClock, FakeExchange


SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal(100), Decimal(95), Decimal(110))
PAST_THE_WINDOW_MS = 60_000


def run_until_settled(engine: ExecutionEngine, clock: FakeClock, pid: str) -> Status:
    """Advance the clock through the entry's checks until it leaves SUBMITTING (bounded)."""
    async def scenario() -> Status:
        for _ in range(20):
            p = engine.state.get(pid)  # type: ignore[call-overload]
            if p is None or p.status is not Status.SUBMITTING:
                break
            clock.advance(PAST_THE_WINDOW_MS)
            await engine.run_due_checks()
        p = engine.state.get(pid)  # type: ignore[call-overload]
        return Status.CANCELED if p is None else p.status
    return asyncio.run(scenario())


def test_an_entry_that_landed_unseen_is_cancelled_not_left_resting(tmp_path: Path) -> None:
    # Arrange: the send's answer is lost and reads lag far past the window
    clock = FakeClock()
    venue = FakeExchange(clock)
    venue.fault("place_entry", "lost")
    venue.order_lag_ms = 10 * PAST_THE_WINDOW_MS
    engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
    p = asyncio.run(engine.execute_entry(SPEC))

    # Act
    run_until_settled(engine, clock, p.pending_id)

    # Assert: from the venue's side, nothing of it is working
    entry = venue.orders[client_id(p.pending_id, Leg.ENTRY)]
    assert entry.status is OrderStatus.CANCELED
    assert venue.calls["cancel_order"] >= 1
    with PendingEntryStore(tmp_path) as store:
        (line,) = [a for a in store.archived() if a["id"] == p.pending_id]
    archived = decode(line["rec"])
    assert archived.status is Status.CANCELED
    assert any("cancelling it by id" in n.text for n in archived.history)


def test_an_entry_that_never_landed_is_not_placed_once_a_cancel_finds_nothing(tmp_path: Path) -> None:
    # Arrange: the send is lost on the way (it never reaches the venue)
    clock = FakeClock()
    venue = FakeExchange(clock)
    venue.fault("place_entry", "timeout")
    engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
    p = asyncio.run(engine.execute_entry(SPEC))

    # Act
    run_until_settled(engine, clock, p.pending_id)

    # Assert
    assert client_id(p.pending_id, Leg.ENTRY) not in venue.orders
    assert venue.calls["cancel_order"] == 1
    with PendingEntryStore(tmp_path) as store:
        (line,) = [a for a in store.archived() if a["id"] == p.pending_id]
    assert line["rec"]["status"] == "NOT_PLACED"
    assert "a cancel by its id found no such order" in line["reason"]
