"""The daemon's watchers: entries written by `bot enter` are sent; positions moved outside are seen."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.core.engine import request_adoption, request_entry
from bot_cli.core.events import ProtectionReport
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import AlgoStatus, ClientId, EntrySpec, Leg, OrderType, PositionSide, Side, Status
from bot_cli.exchange.wire import AccountUpdate
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from bot_cli.store import requests
from bot_cli.store.codec import encode
from tests.fakes import FakeClock, FakeExchange


SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal(100), Decimal(95), Decimal(110))


class Quiet:
    def recovered(self, *_: Any) -> None: ...
    def message(self, *_: Any) -> None: ...
    def note(self, *_: Any, **__: Any) -> None: ...


def test_a_requested_entry_read_in_by_an_event_is_still_claimed(tmp_path: Path) -> None:
    """An unrelated event makes the engine read the journal first; the watcher still sends the entry."""
    async def scenario() -> tuple[FakeExchange, Status]:
        # Arrange: a daemon's engine, then `bot enter` (another process) writes a REQUESTED entry
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        pid = make_pending_id(clock.now_ms(), 1)
        p, _ = request_entry(pid, SPEC, clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(p))
        # an event for an entry the engine does not know yet: it reads the journal in
        stranger = make_pending_id(clock.now_ms(), 2)
        await engine.handle(ProtectionReport(stranger, client_id(pid, Leg.SL, 1), AlgoStatus.CANCELED))
        assert engine.state[pid].status is Status.REQUESTED

        # Act
        daemon._watch_journal()
        await engine.idle()

        # Assert
        return venue, engine.state[pid].status

    venue, status = asyncio.run(scenario())
    assert status is Status.OPEN
    assert sum(venue.entries_placed.values()) == 1


class Recorded(Quiet):
    def __init__(self) -> None:
        self.why: list[str] = []

    def recovered(self, _: Any, why: str) -> None:
        self.why.append(why)


def test_a_position_closed_by_hand_while_running_cancels_both_legs(tmp_path: Path) -> None:
    """ACCOUNT_UPDATE shows the position gone with no leg fired: the daemon reconciles, shares
    the position out, and cancels the legs that now protect nothing."""
    async def scenario() -> tuple[FakeExchange, dict[ClientId, str], list[str]]:
        # Arrange: a protected entry on a running daemon
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        view = Recorded()
        daemon = Daemon(engine, lambda **_: None, view)  # type: ignore[arg-type]  # no stream is started here
        p = await engine.execute_entry(SPEC)
        await engine.on_order_report(venue.fill(client_id(p.pending_id, Leg.ENTRY), Decimal("1.0")))
        assert engine.state[p.pending_id].status is Status.PROTECTED

        # Act: someone closes it by hand; the stream says so
        venue.reduce("BTCUSDT", Decimal("1.0"))
        await daemon._on_message(AccountUpdate(clock.now_ms(), {("BTCUSDT", PositionSide.BOTH): Decimal(0)}))
        watchers = [asyncio.create_task(daemon._watch_positions()), asyncio.create_task(daemon._reconciler())]
        await _until(lambda: not daemon._position_moved.is_set() and view.why)
        await engine.idle()
        for watcher in watchers:
            watcher.cancel()

        # Assert
        statuses = {cid: a.report.status.value for cid, a in venue.algos.items()}
        return venue, statuses, view.why

    _venue, statuses, why = asyncio.run(scenario())
    assert set(statuses.values()) == {"CANCELED"}
    assert why == ["a position changed outside the bot's orders"]


def test_a_position_that_grew_with_a_fill_wakes_nothing(tmp_path: Path) -> None:
    """An ACCOUNT_UPDATE every share can explain (a fill of ours) costs no reconcile."""
    async def scenario() -> bool:
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        p = await engine.execute_entry(SPEC)
        await engine.on_order_report(venue.fill(client_id(p.pending_id, Leg.ENTRY), Decimal("0.4")))
        await daemon._on_message(AccountUpdate(clock.now_ms(), {("BTCUSDT", PositionSide.BOTH): Decimal("0.4")}))
        return daemon._position_moved.is_set()

    assert asyncio.run(scenario()) is False


async def _until(condition: Any, bound_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + bound_s
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_an_operator_close_request_flattens_the_entry_and_is_forgotten(tmp_path: Path) -> None:
    """`bot close` with a daemon leaves a request file; the daemon cancels the legs, closes
    exactly the entry's share, archives it, and removes the request."""
    async def scenario() -> tuple[FakeExchange, ExecutionEngine, str]:
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        p = await engine.execute_entry(SPEC)
        await engine.on_order_report(venue.fill(client_id(p.pending_id, Leg.ENTRY), Decimal("1.0")))

        requests.put(tmp_path, p.pending_id, "close")
        daemon._watch_journal()
        await engine.idle()
        return venue, engine, p.pending_id

    venue, engine, pid = asyncio.run(scenario())
    assert pid not in engine.state
    assert {a.report.status.value for a in venue.algos.values()} == {"CANCELED"}
    assert venue.position[("BTCUSDT", PositionSide.BOTH)] == 0
    assert venue.executed[client_id(pid, Leg.CLOSE, 2)] == Decimal("1.0")  # type: ignore[arg-type]
    assert requests.pending(tmp_path) == []


def test_a_request_for_an_unknown_entry_is_dropped_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> FakeExchange:
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        requests.put(tmp_path, "bc0mgj6k3cw0zzzz", "cancel")
        daemon._watch_journal()
        await engine.idle()
        return venue

    venue = asyncio.run(scenario())
    assert sum(venue.calls.values()) == 0
    assert requests.pending(tmp_path) == []


def test_a_request_the_table_has_no_row_for_is_refused_not_parked(tmp_path: Path) -> None:
    """A stale `close` for an entry that is only OPEN (nothing filled) changes nothing."""
    async def scenario() -> tuple[Status, list[Any]]:
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        p = await engine.execute_entry(SPEC)
        requests.put(tmp_path, p.pending_id, "close")
        daemon._watch_journal()
        await engine.idle()
        return engine.state[p.pending_id].status, requests.pending(tmp_path)

    status, left = asyncio.run(scenario())
    assert status is Status.OPEN
    assert left == []


def test_an_entry_the_reconcile_claimed_is_not_claimed_again_by_the_watcher(tmp_path: Path) -> None:
    """The watcher listed the entry REQUESTED, then a reconcile sent it: one send, not parked."""
    async def scenario() -> tuple[FakeExchange, Status]:
        clock, venue = FakeClock(), FakeExchange()
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        pid = make_pending_id(clock.now_ms(), 1)
        p, _ = request_entry(pid, SPEC, clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(p))
        engine.absorb_external()
        await engine.recover()  # the start-up reconcile claims and sends it
        claimed_again = engine.claim(pid)  # the watcher's stale look
        assert claimed_again is False
        return venue, engine.state[pid].status

    venue, status = asyncio.run(scenario())
    assert status is Status.OPEN
    assert sum(venue.entries_placed.values()) == 1


def test_an_adopted_share_written_by_another_process_gets_its_legs(tmp_path: Path) -> None:
    """`bot adopt` writes an entry holding a part of a position no entry held; the daemon's
    journal watcher reads it in and places its legs at once (a record waiting for orders is
    woken, not left for the next reconcile)."""
    async def scenario() -> tuple[FakeExchange, Status]:
        # Arrange: a position opened by hand, then the adopted entry on disk
        clock, venue = FakeClock(), FakeExchange()
        venue.position[("BTCUSDT", PositionSide.BOTH)] = Decimal("0.3")
        engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=clock)
        daemon = Daemon(engine, lambda **_: None, Quiet())  # type: ignore[arg-type]  # no stream is started here
        spec = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.3"), OrderType.ADOPTED, None, Decimal(95), Decimal(110))
        pid = make_pending_id(clock.now_ms(), 3)
        p, _ = request_adoption(pid, spec, Decimal(100), clock.now_ms(), 5000)
        with PendingEntryStore(tmp_path) as cli:
            cli.save(pid, encode(p))

        # Act
        daemon._watch_journal()
        await engine.idle()
        return venue, engine.state[pid].status

    venue, status = asyncio.run(scenario())
    assert status is Status.PROTECTED
    live = {cid: (a.report.quantity, a.report.status.value) for cid, a in venue.algos.items()}
    assert sorted(live.values()) == [(Decimal("0.3"), "NEW"), (Decimal("0.3"), "NEW")]
    assert sum(venue.entries_placed.values()) == 0  # nothing but its legs is sent
