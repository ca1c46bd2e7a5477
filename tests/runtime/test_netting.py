"""The daemon never sends an entry that would net against another entry's position share.

A BUY limit entry works on BTCUSDT (one-way mode). A SELL on the same symbol, sent here or
left REQUESTED by `bot enter`, the API or the inbox, is refused: nothing reaches the venue.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.engine import request_entry
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side, Status
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import EntryNetting, ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode
from tests.fakes import FakeClock, FakeExchange, QuietView


BUY = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal(100), Decimal(95), Decimal(110))
SELL = replace(BUY, side=Side.SELL, price=Decimal(120), stop_loss=Decimal(125), take_profit=Decimal(110))


def test_an_opposite_entry_sent_here_is_refused_before_it_is_written(tmp_path: Path) -> None:
    async def scenario() -> tuple[FakeExchange, ExecutionEngine]:
        # Arrange
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue := FakeExchange(), clock=FakeClock())
        await engine.execute_entry(BUY)

        # Act
        with pytest.raises(EntryNetting, match="would net against its share"):
            await engine.execute_entry(SELL)
        return venue, engine

    venue, engine = asyncio.run(scenario())

    # Assert
    assert sum(venue.entries_placed.values()) == 1
    assert [p.spec.side for p in engine.state.values()] == [Side.BUY]
    with PendingEntryStore(tmp_path) as store:
        assert len(store.load_all()) == 1


def test_a_requested_opposite_entry_ends_not_placed_and_nothing_is_sent(tmp_path: Path) -> None:
    """Another process wrote a REQUESTED SELL; the daemon's watcher claims it and refuses it."""
    async def scenario() -> tuple[FakeExchange, dict[str, Any]]:
        # Arrange
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, QuietView())  # type: ignore[arg-type]  # no stream here
        buy = await engine.execute_entry(BUY)
        pid = make_pending_id(clock.now_ms(), 7)
        sell, _ = request_entry(pid, SELL, clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(sell))

        # Act
        daemon._watch_journal()
        await engine.idle()

        # Assert
        with PendingEntryStore(tmp_path) as store:
            (line,) = [a for a in store.archived() if a["id"] == pid]
            assert list(store.load_all()) == [buy.pending_id]
        return venue, line

    venue, line = asyncio.run(scenario())
    assert line["rec"]["status"] == Status.NOT_PLACED.value
    assert "would net against its share" in line["reason"]
    assert sum(venue.entries_placed.values()) == 1


def test_a_requested_entry_that_no_longer_fits_the_account_ends_not_placed(tmp_path: Path) -> None:
    """`bot enter` admitted it; before the daemon claimed it, conditional orders the bot does not
    hold filled the account (its count says 199): it is refused at the claim, nothing is sent."""
    async def scenario() -> tuple[FakeExchange, dict[str, Any]]:
        # Arrange
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        engine.foreign_conditional = 199
        daemon = Daemon(engine, lambda **_: None, QuietView())  # type: ignore[arg-type]  # no stream here
        pid = make_pending_id(clock.now_ms(), 9)
        p, _ = request_entry(pid, BUY, clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(p))

        # Act
        daemon._watch_journal()
        await engine.idle()

        # Assert
        with PendingEntryStore(tmp_path) as store:
            (line,) = [a for a in store.archived() if a["id"] == pid]
        return venue, line

    venue, line = asyncio.run(scenario())
    assert line["rec"]["status"] == Status.NOT_PLACED.value
    assert "open conditional orders would exceed 200" in line["reason"]
    assert sum(venue.entries_placed.values()) == 0
