"""The daemon's journal watcher: entries written by `bot enter` are sent by the daemon."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.core.engine import request_entry
from bot_cli.core.events import ProtectionReport
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import AlgoStatus, EntrySpec, Leg, OrderType, Side, Status
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode
from tests.fakes import FakeClock, FakeExchange


SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal("100"), Decimal("95"), Decimal("110"))


class Quiet:
    def recovered(self, *_: Any) -> None: ...
    def message(self, *_: Any) -> None: ...
    def note(self, *_: Any) -> None: ...


def test_a_requested_entry_read_in_by_an_event_is_still_claimed(tmp_path: Path) -> None:
    """An unrelated event makes the engine read the journal first; the watcher still sends the entry."""
    async def scenario() -> tuple[FakeExchange, Status]:
        # Arrange: a daemon's engine, then `bot enter` (another process) writes a REQUESTED entry
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type,return-value]
        pid = make_pending_id(clock.now_ms(), 1)
        p, _ = request_entry(pid, SPEC, clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(p))
        # an event for an entry the engine does not know yet: it reads the journal in
        await engine.handle(ProtectionReport(make_pending_id(clock.now_ms(), 2), client_id(pid, Leg.SL, 1), AlgoStatus.CANCELED))
        assert engine.state[pid].status is Status.REQUESTED

        # Act
        await daemon._watch_journal()

        # Assert
        return venue, engine.state[pid].status

    venue, status = asyncio.run(scenario())
    assert status is Status.OPEN
    assert sum(venue.entries_placed.values()) == 1
