"""Random walks over two entries stacked on one position (exact legs), with the order of concurrent sends and
answers chosen by the test (tests/runtime/scheduler.py), and a crash at a random point.

Concurrency bugs hide in the orders nobody enumerated: here the scheduler interleaves the two
entries' sends and answers at random, the market fills one entry while the other's leg fires,
the stream loses reports, a reconcile reads the exchange while sends are out (and a report
arrives in the middle of its read), and the process dies at a random step with requests that
landed and answers never seen. Every walk ends with every invariant holding, checked from the
exchange's side and the state dir; every wait has a wake-up at every settling step.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.core.ids import client_id
from bot_cli.core.model import AlgoReport, EntrySpec, Leg, OrderReport, OrderType, PendingId, Policy, Side
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange
from tests.invariants import check_invariants, check_liveness, over_covered
from tests.runtime.scheduler import Scheduler


D = Decimal
A = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"))
B = EntrySpec("BTCUSDT", Side.BUY, D("0.5"), OrderType.LIMIT, D("100"), D("97"), D("112"))
# Each price crosses the legs of one entry at most (B's SL, A's TP) or of both in the same way
# (both SLs): no entry's two legs fire on one move.
PRICES = (D("96"), D("100"), D("110.5"), D("94"), D("101"))
SEEDS = range(240)
Report = OrderReport | AlgoReport


class Crash(Exception):
    """The process dies here."""


@dataclass
class World:
    rng: random.Random
    path: Path
    clock: FakeClock = field(default_factory=FakeClock)
    venue: FakeExchange = field(init=False)
    ids: list[PendingId] = field(default_factory=list)
    liveness: list[str] = field(default_factory=list)
    lost: list[Report] = field(default_factory=list)  # reports the stream never delivered

    def __post_init__(self) -> None:
        self.venue = FakeExchange(self.clock)

    def engine(self, scheduler: Scheduler) -> ExecutionEngine:
        async def sleep(seconds: float) -> None:
            self.clock.advance(int(seconds * 1000))

        engine = ExecutionEngine(
            PendingEntryStore(self.path), self.venue, clock=self.clock, policy=Policy(stacking=True),
            dispatcher=scheduler,
            sleep=sleep, entropy=lambda: self.rng.randrange(36**5),
        )  # fmt: skip
        scheduler.engine = engine
        return engine


def _market(world: World) -> list[Report]:
    """One move of the market: a fill of either entry, or a price that crosses some legs."""
    rng, venue = world.rng, world.venue
    if rng.random() < 0.5 and world.ids:
        pid = rng.choice(world.ids)
        o = venue.orders.get(client_id(pid, Leg.ENTRY))
        if o is None or o.status.value not in ("NEW", "PARTIALLY_FILLED"):
            return []
        step = o.quantity / 2 if rng.random() < 0.5 else o.quantity
        return [venue.fill(o.client_id, min(o.filled_qty + step, o.quantity))]
    price = rng.choice(PRICES)
    if any(_crossed_sibling(venue, pid, price) for pid in world.ids):
        return []  # the sibling of a fired leg before its cancel lands: the missing OCO, spared
    return list(venue.move("BTCUSDT", price))


def _crossed_sibling(venue: FakeExchange, pid: PendingId, price: Decimal) -> bool:
    """``price`` would fire a live leg of an entry one of whose legs has fired already."""
    fired = any(cid.startswith(pid) and a.report.status.fired for cid, a in venue.algos.items())
    live = [*venue.live_protections(pid, Leg.SL), *venue.live_protections(pid, Leg.TP)]
    return fired and any(_fires(r, price) for r in live)


def _fires(r: AlgoReport, price: Decimal) -> bool:
    """A long entry's SL fires at or below its trigger, its TP at or above."""
    stop = r.client_id.split("-")[1].startswith("sl")
    return price <= r.trigger_price if stop else price >= r.trigger_price


def _stream(engine: ExecutionEngine, world: World, reports: list[Report]) -> None:
    for report in reports:
        if world.rng.random() < 0.1:
            world.lost.append(report)  # the stream dropped it: only a reconcile learns it
        else:
            engine.deliver_report(report)


async def _reconcile(engine: ExecutionEngine, world: World) -> None:
    """A reconcile; sometimes the market moves (and the stream says so) while it reads."""
    if world.rng.random() < 0.5:
        read = world.venue.open_orders

        async def interleaved(symbol: str | None = None) -> list[OrderReport]:
            world.venue.open_orders = read  # type: ignore[method-assign]
            _stream(engine, world, _market(world))
            return await read(symbol)

        world.venue.open_orders = interleaved  # type: ignore[method-assign]
    await engine.recover(wait=False)


async def _timers(engine: ExecutionEngine, world: World) -> None:
    world.clock.advance(world.rng.choice((50, 500, 3_000, 12_000)))
    engine.fire_due_checks()
    engine.flush()


async def _walk_until(world: World, engine: ExecutionEngine, scheduler: Scheduler, steps: int) -> None:
    moves: list[Callable[[], object]] = [
        lambda: _stream(engine, world, _market(world)),
        lambda: scheduler.step(world.rng),
        lambda: scheduler.step(world.rng),
        lambda: _timers(engine, world),
        lambda: _reconcile(engine, world),
    ]
    for _ in range(steps):
        outcome = world.rng.choice(moves)()
        if asyncio.iscoroutine(outcome):
            await outcome
        engine.flush()
        world.liveness += check_liveness(engine) if scheduler.idle else []
        world.liveness += over_covered(world.venue)  # exact legs: never above a share, at any step


async def _settle(world: World, engine: ExecutionEngine, scheduler: Scheduler) -> None:
    """Everything in flight answered, every wait run to its end, and the reports the stream
    lost learned by a reconcile."""
    for reconcile in (False, True, False):
        if reconcile:
            await engine.recover(wait=False)
        for _ in range(300):
            await scheduler.drain(world.rng)
            world.liveness += check_liveness(engine)
            at = engine.next_check_at()
            if at is None:
                break
            world.clock.ms = max(world.clock.ms, at)
            engine.fire_due_checks()
            engine.flush()
        else:
            raise AssertionError(f"timers never settled: {engine.state}")


async def walk(seed: int, path: Path) -> World:
    world = World(random.Random(seed), path)
    scheduler = Scheduler()
    engine = world.engine(scheduler)
    for spec in (A, B):
        p = asyncio.create_task(engine.execute_entry(spec))
        await asyncio.sleep(0)
        world.ids.append(next(iter(set(engine.state) - set(world.ids))))
        await scheduler.drain(world.rng)
        await p
    crash_at = world.rng.randrange(60) if seed % 2 else None
    await _walk_until(world, engine, scheduler, crash_at if crash_at is not None else 60)
    if crash_at is not None:  # the process dies: queued sends never go, answered ones are lost
        engine.halt(Crash(f"killed at step {crash_at}"))
        engine.store.close()
        scheduler = Scheduler()
        engine = world.engine(scheduler)
        await engine.recover(wait=False)
        await _walk_until(world, engine, scheduler, 30)
    await _settle(world, engine, scheduler)
    engine.store.close()
    return world


@pytest.mark.parametrize("seed", SEEDS)
def test_every_interleaving_of_two_entries_on_one_position_converges(seed: int, tmp_path: Path) -> None:
    """Two entries on one position, sends and answers in a random order, reports lost, a crash
    at a random step: every invariant holds at the end, every wait has a wake-up on the way."""
    world = asyncio.run(walk(seed, tmp_path / "state"))

    with PendingEntryStore(world.path) as store:
        problems = check_invariants(world.venue, store, set(world.ids), len(A.legs), stacked=True)
    assert [*problems, *world.liveness] == [], f"seed {seed}"
