"""The daemon's heartbeat: what `bot status` reads about a running daemon."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, OrderType, Policy, Side
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.runtime.heartbeat import Heartbeat, read
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange


D = Decimal
LONG = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"))
SHORT = EntrySpec("ETHUSDT", Side.SELL, D("2"), OrderType.LIMIT, D("10"), D("11"), None)


def test_the_heartbeat_names_the_daemon_its_stream_and_each_symbol_s_exposure(tmp_path: Path) -> None:
    async def scenario() -> dict[str, object] | None:
        # Arrange: a protected long, a short filled 0.5 of 2 (its SL live), one open order
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock, policy=Policy(stacking=True))
        beat = Heartbeat(engine, "paper", clock.now_ms())
        a = await engine.execute_entry(LONG)
        await engine.on_order_report(venue.fill(client_id(a.pending_id, Leg.ENTRY), D("1.0")))
        b = await engine.execute_entry(SHORT)
        await engine.on_order_report(venue.fill(client_id(b.pending_id, Leg.ENTRY), D("0.5")))
        await engine.execute_entry(LONG)

        # Act
        clock.advance(1_000)
        beat.stream(True)
        beat.event()
        beat.reconciled(await engine.recover(), "start-up")
        beat.write()
        return read(tmp_path)

    got = asyncio.run(scenario())
    assert got is not None
    assert (got["venue"], got["stream"]["connected"]) == ("paper", True)  # type: ignore[index]
    assert got["entries"] == {"OPEN": 1, "PARTIALLY_FILLED": 1, "PROTECTED": 1}
    assert got["exposure"] == [
        {"symbol": "BTCUSDT", "side": "BUY", "position_side": "BOTH", "share": "1.0",
         "stop_loss": "1.0", "take_profit": "1.0", "entries": 1, "covered": True},
        {"symbol": "ETHUSDT", "side": "SELL", "position_side": "BOTH", "share": "0.5",
         "stop_loss": "0.5", "take_profit": "0", "entries": 1, "covered": True},
    ]
    last = got["last_reconcile"]
    assert isinstance(last, dict)
    assert last["why"] == "start-up"
    assert last["entries"] == 3


def test_no_heartbeat_file_reads_as_none(tmp_path: Path) -> None:
    assert read(tmp_path) is None
    (tmp_path / "heartbeat.json").write_text("{torn")
    assert read(tmp_path) is None


def test_the_heartbeat_keeps_the_request_weight_the_start_spent(tmp_path: Path) -> None:
    """The venue's weight count at the first reconcile is the start's; later ones leave it."""
    class Metered(FakeExchange):
        weight_spent = 17

    async def scenario() -> tuple[object, object]:
        clock, venue = FakeClock(), Metered()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        beat = Heartbeat(engine, "paper", clock.now_ms())
        beat.reconciled(await engine.recover(), "stream connected")
        first = beat.payload()["start_weight"]
        venue.weight_spent = 99
        beat.reconciled(await engine.recover(), "stream reconnected")
        return first, beat.payload()["start_weight"]

    assert asyncio.run(scenario()) == (17, 17)
