"""The dead-man switch's shell: what it sends and when, with a fake venue and a fake clock.

A refused read of a symbol's orders (a 429) waits for the exchange's Retry-After instead of being
asked again at every tick; a symbol armed by a past run and no longer needed is turned off."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_cli.core.deadman import Switch
from bot_cli.core.model import OrderReport, Status
from bot_cli.runtime import deadman
from bot_cli.runtime.deadman import DeadmanSwitch
from bot_cli.venue import RateLimited
from tests.core.helpers import pending
from tests.fakes import FakeClock


@dataclass
class Venue:
    clock: FakeClock
    refuse_reads: int = 0  # the next this many reads of open orders are refused (429, Retry-After 3 s)
    reads: list[int] = field(default_factory=list)
    countdowns: list[tuple[str, int]] = field(default_factory=list)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self.reads.append(self.clock.now_ms())
        if self.refuse_reads:
            self.refuse_reads -= 1
            raise RateLimited("too many requests", retry_after=3.0)
        return []

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> int:
        self.countdowns.append((symbol, countdown_ms))
        return countdown_ms


@dataclass
class Engine:
    venue: Venue
    clock: FakeClock
    store: Any
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Store:
    path: Path


def switch_over(tmp_path: Path, venue: Venue, **state: Any) -> DeadmanSwitch:
    engine = Engine(venue, venue.clock, Store(tmp_path), dict(state))
    return DeadmanSwitch(engine, Switch(countdown_ms=120_000))  # type: ignore[arg-type]


def test_a_refused_read_is_asked_again_after_the_retry_after_not_at_every_tick(tmp_path: Path) -> None:
    venue = Venue(FakeClock(), refuse_reads=1)
    dm = switch_over(tmp_path, venue, e1=pending(Status.OPEN))

    async def ticks(n: int) -> None:
        for _ in range(n):
            await dm.step()
            venue.clock.advance(int(deadman.TICK_S * 1000))

    asyncio.run(ticks(8))  # 2 s: within the Retry-After

    assert len(venue.reads) == 1
    assert venue.countdowns == []
    assert "reading its open orders" in dm.errors["BTCUSDT"]

    asyncio.run(ticks(8))  # past it

    assert len(venue.reads) == 2
    assert venue.countdowns == [("BTCUSDT", 120_000)]
    assert dm.errors == {}
    assert json.loads((tmp_path / deadman.NAME).read_text()) == {"armed": ["BTCUSDT"]}


def test_what_a_past_run_armed_and_nothing_needs_now_is_turned_off(tmp_path: Path) -> None:
    (tmp_path / deadman.NAME).write_text(json.dumps({"armed": ["ETHUSDT"]}))
    venue = Venue(FakeClock())
    dm = switch_over(tmp_path, venue, e1=pending(Status.PROTECTED))

    asyncio.run(dm.step())

    assert venue.countdowns == [("ETHUSDT", 0)]
    assert dm.armed == {}
    assert json.loads((tmp_path / deadman.NAME).read_text()) == {"armed": []}
