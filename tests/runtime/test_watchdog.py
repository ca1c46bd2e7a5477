"""systemd's watchdog means something: READY=1 only after the start-up reconcile, WATCHDOG=1 only
while the daemon protects (its timers turn, the exchange is heard), and nothing outside systemd.

The daemon runs in this process over the paper venue, with a fake notify socket standing in for
systemd: every datagram the daemon sends is what the test reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot_cli.config import Config, VenueConfig
from bot_cli.connect import connect
from bot_cli.exchange.user_stream import UserStream
from bot_cli.paper.server import start_in_process
from bot_cli.runtime import watchdog
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import QuietView


PING_S = 0.2
WAIT_S = 15.0


class FakeSystemd:
    """A notify socket: each datagram read, with whether the daemon had reconciled by then."""

    def __init__(self, daemon: Daemon) -> None:
        self.dir = tempfile.mkdtemp(prefix="sd-")  # short: a socket path is at most 107 bytes
        self.path = str(Path(self.dir) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.daemon = daemon
        self.got: list[tuple[list[str], bool]] = []

    async def next(self) -> list[str]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 4096), WAIT_S)
        lines = data.decode().split("\n")
        self.got.append((lines, bool(self.daemon.heartbeat.last_reconcile)))
        return lines

    async def until(self, word: str) -> list[str]:
        """Read until a datagram has a line starting with ``word``; that datagram."""
        while True:
            lines = await self.next()
            if any(line.startswith(word) for line in lines):
                return lines

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            Path(self.path).unlink()
            Path(self.dir).rmdir()


@contextlib.asynccontextmanager
async def daemon_under_systemd(tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[Daemon, FakeSystemd, Any]]:
    venue = await start_in_process(tmp_path / "venue", port=0, volatility=0.0)
    venue.exchange.set_price("BTCUSDT", Decimal(97000))
    vcfg = VenueConfig(rest_url=venue.rest_url, ws_url=venue.ws_url, position_mode="one-way")
    cfg, state = Config(venue=vcfg), tmp_path / "state"
    try:
        async with connect(cfg, state, start_paper=False) as conn:
            engine = ExecutionEngine(PendingEntryStore(state), conn.rest)
            daemon = Daemon(engine, partial(UserStream, conn.rest, conn.ws_url), QuietView(), venue="paper")
            systemd = FakeSystemd(daemon)
            stop = asyncio.Event()
            notifier = watchdog.Notifier(systemd.path)
            running = asyncio.create_task(daemon.run(stop))
            pinging = asyncio.create_task(watchdog.run(daemon, notifier, PING_S, **limits))
            try:
                yield daemon, systemd, venue
            finally:
                pinging.cancel()
                stop.set()
                await running
                notifier.close()
                systemd.close()
    finally:
        await venue.stop()


def test_ready_comes_only_after_the_start_up_reconcile_then_the_watchdog_is_fed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with daemon_under_systemd(tmp_path) as (_, systemd, _venue):
            first = await systemd.next()
            pings = [await systemd.until("WATCHDOG=1") for _ in range(3)]

            assert first[0] == "READY=1"
            assert systemd.got[0][1], "READY=1 was said before the start-up reconcile"
            assert first[1].startswith("STATUS=")
            assert "stream up" in first[1]
            assert all(p[1].startswith("STATUS=") for p in pings)

    asyncio.run(scenario())


def test_the_watchdog_starves_while_the_timers_are_wedged_and_is_fed_again_once_they_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with daemon_under_systemd(tmp_path, timers_stale_s=1.0) as (daemon, systemd, _venue):
            await systemd.until("WATCHDOG=1")

            def wedged() -> None:
                raise RuntimeError("wedged")

            monkeypatch.setattr(daemon.engine, "fire_due_checks", wedged)  # every turn fails
            unhealthy = await systemd.until("STATUS=UNHEALTHY")
            after = [await systemd.next() for _ in range(4)]

            assert "timers have not turned" in unhealthy[0]
            assert all("WATCHDOG=1" not in lines for lines in after), after
            assert all(lines[0].startswith("STATUS=UNHEALTHY") for lines in after)

            monkeypatch.undo()  # the timers turn again
            assert "WATCHDOG=1" in await systemd.until("WATCHDOG=1")

    asyncio.run(scenario())


def test_a_daemon_that_can_hear_the_exchange_neither_by_stream_nor_by_rest_starves_the_watchdog(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with daemon_under_systemd(tmp_path, blind_after_s=1.0) as (_, systemd, venue):
            await systemd.until("WATCHDOG=1")

            await venue.stop()  # the stream drops, and every reconcile fails
            unhealthy = await systemd.until("STATUS=UNHEALTHY")
            after = [await systemd.next() for _ in range(3)]

            assert "user stream is down and no REST reconcile succeeded" in unhealthy[0]
            assert all("WATCHDOG=1" not in lines for lines in after), after

    asyncio.run(scenario())


def test_outside_systemd_nothing_is_sent_and_without_watchdog_usec_there_is_no_ping() -> None:
    assert watchdog.from_env({}) == (None, None)
    notifier, interval = watchdog.from_env({"NOTIFY_SOCKET": "/run/x"})
    assert notifier is not None
    assert interval is None
    notifier.close()
    notifier, interval = watchdog.from_env({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "20000000"})
    assert notifier is not None
    assert notifier.address == "\0abstract"
    assert interval == 10.0  # half the watchdog interval
    notifier.close()
    other_pid = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}
    notifier, interval = watchdog.from_env(other_pid)  # the watchdog is another process's
    assert interval is None
    assert notifier is not None
    notifier.close()
