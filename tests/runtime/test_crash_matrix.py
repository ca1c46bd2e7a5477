"""Crash at every command boundary, restart from the state dir alone, and converge.

For each scenario the uncrashed run is counted first (n commands). Then for every
k in 0..n a fresh world runs until command k has executed, everything in memory is
dropped, the market goes on (while the bot is down, or after it is back), a new
engine loads the journal, reconciles against the exchange and settles its timers.
The four invariants of DESIGN.md must hold at the end, for every k.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.core.commands import Command, PersistPending
from bot_cli.core.ids import client_id
from bot_cli.core.model import ClientId, EntrySpec, Leg, OrderReport, OrderType, Policy, Side
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange
from tests.invariants import check_invariants


D = Decimal
SPEC = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"))
Action = Callable[[FakeExchange, ClientId], OrderReport | None]


def fill(qty: str) -> Action:
    """The market fills the entry up to qty, if the entry order exists."""
    return lambda venue, cid: venue.fill(cid, D(qty)) if cid in venue.orders else None


def cancel() -> Action:
    return lambda venue, cid: venue.cancel(cid) if cid in venue.orders else None


@dataclass(frozen=True)
class Scenario:
    name: str
    actions: tuple[Action, ...]
    faults: dict[str, tuple[str | int, ...]] = field(default_factory=dict)


SCENARIOS = [
    Scenario("entry, fill, protect", (fill("1.0"),)),
    Scenario("entry, partial fills, protect, resize", (fill("0.4"), fill("0.7"), fill("1.0"))),
    Scenario("entry, cancel", (cancel(),)),
    Scenario("entry, partial fill, cancel", (fill("0.3"), cancel())),
    Scenario("entry send lost after it landed", (fill("1.0"),), {"place_entry": ("lost",)}),
    Scenario("entry send timed out before it landed", (), {"place_entry": ("timeout",)}),
    Scenario("stop-loss send lost after it landed", (fill("1.0"),), {"place_protection": ("lost",)}),
    Scenario("stop-loss send timed out", (fill("1.0"),), {"place_protection": ("timeout",)}),
    Scenario("stop-loss would trigger at once (-2021)", (fill("1.0"),), {"place_protection": ("would_trigger",)}),
]


class Crash(Exception):
    """The process dies here."""


@dataclass
class World:
    venue: FakeExchange
    clock: FakeClock
    path: Path
    created: set[str] = field(default_factory=set)
    commands: int = 0


def _engine(world: World, crash_after: int | None) -> ExecutionEngine:
    def hook(cmd: Command) -> None:
        world.commands += 1
        if isinstance(cmd, PersistPending):
            world.created.add(cmd.pending.pending_id)
        if crash_after is not None and world.commands >= crash_after:
            raise Crash
    store = PendingEntryStore(world.path)
    return ExecutionEngine(store, world.venue, clock=world.clock, policy=Policy(), on_command=hook)


async def _settle(engine: ExecutionEngine, clock: FakeClock) -> None:
    """Let every scheduled check fire, moving the clock forward as needed."""
    for _ in range(100):
        at = engine.next_check_at()
        if at is None:
            return
        clock.ms = max(clock.ms, at)
        await engine.run_due_checks()
    raise AssertionError("timers never settled")


async def _deliver(engine: ExecutionEngine, world: World, action: Action) -> None:
    pid = next(iter(world.created))
    report = action(world.venue, client_id(pid, Leg.ENTRY))  # type: ignore[arg-type]
    world.clock.advance(100)
    if report is not None:
        await engine.on_order_report(report)
    await _settle(engine, world.clock)


async def run(scenario: Scenario, path: Path, crash_after: int | None, market_while_down: bool) -> World:
    world = World(FakeExchange(), FakeClock(), path)
    for method, kinds in scenario.faults.items():
        world.venue.fault(method, *kinds)
    done = 0
    engine = _engine(world, crash_after)
    try:
        if crash_after == 0:
            raise Crash
        await engine.execute_entry(SPEC)
        await _settle(engine, world.clock)
        for action in scenario.actions:
            await _deliver(engine, world, action)
            done += 1
    except Crash:
        pass
    else:
        return world
    del engine  # everything in memory is gone
    remaining = scenario.actions[done:] if world.created else ()
    if market_while_down:
        for action in remaining:
            action(world.venue, client_id(next(iter(world.created)), Leg.ENTRY))  # type: ignore[arg-type]
        remaining = ()
    world.clock.advance(1_000)
    restarted = _engine(world, None)
    await restarted.recover()
    await _settle(restarted, world.clock)
    for action in remaining:
        await _deliver(restarted, world, action)
    return world


def _points(scenario: Scenario, tmp: Path) -> int:
    world = asyncio.run(run(scenario, tmp / "uncrashed", None, True))
    return world.commands


CHECKED: list[int] = []


@pytest.mark.parametrize("market_while_down", [True, False], ids=["market-moves-while-down", "restart-then-market"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_crash_point_converges(scenario: Scenario, market_while_down: bool, tmp_path: Path) -> None:
    """For every k, a crash after command k and a restart end with all four invariants holding."""
    n = _points(scenario, tmp_path)
    assert n > 0
    legs = len(SPEC.legs)
    failures = []
    for k in range(n + 1):
        world = asyncio.run(run(scenario, tmp_path / f"k{k}", k, market_while_down))
        store = PendingEntryStore(world.path)
        problems = check_invariants(world.venue, store, world.created, legs)
        failures.extend(f"k={k}: {p}" for p in problems)
    print(f"{scenario.name} ({'down' if market_while_down else 'live'}): {n + 1} crash points checked")
    assert failures == []
    CHECKED.append(n + 1)  # counted once every point held


def test_crash_points_were_counted() -> None:
    """The matrix ran: report how many crash points it checked in all."""
    if not CHECKED:
        pytest.skip("run with the matrix to count")
    print(f"crash matrix: {sum(CHECKED)} crash points checked over {len(CHECKED)} scenario runs")
    assert sum(CHECKED) >= 2 * len(SCENARIOS)
