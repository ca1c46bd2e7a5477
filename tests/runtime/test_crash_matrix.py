"""Crash at every command boundary, restart from the state dir alone, and converge.

For each scenario the uncrashed run is counted first (n commands). Then for every
k in 0..n a fresh world runs until command k has executed, everything in memory is
dropped, the market goes on (while the bot is down, or after it is back), a new
engine loads the journal, reconciles against the exchange and settles its timers.
The invariants of DESIGN.md (tests/invariants.py) must hold at the end, for every k,
and the liveness invariant (every wait has a wake-up) at every settling step. With entries
stacked on one position, no entry's live legs of a kind exceed its share after any command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.core.commands import Command, PersistPending, PlaceProtection
from bot_cli.core.events import OperatorAmend
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    AlgoReport,
    EntrySpec,
    Leg,
    OrderReport,
    OrderType,
    PendingId,
    Policy,
    Side,
    TpLevel,
    Trail,
)
from bot_cli.runtime.dispatch import Dispatcher, Job
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange
from tests.invariants import check_invariants, check_liveness, over_covered


D = Decimal
SPEC = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"))
SECOND = EntrySpec("BTCUSDT", Side.BUY, D("0.5"), OrderType.LIMIT, D("100"), D("97"), D("110"))
# Take profit in two steps of 0.5 (105, then 110); and a 2 % trailing stop beside the stop-loss.
LEVELS = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("105"),
                   tp_levels=(TpLevel(D("105"), D("0.5")), TpLevel(D("110"), D("0.5"))))  # fmt: skip
TRAILED = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"),
                    trail=Trail(D("2")))  # fmt: skip
# Stacked on SPEC's position with both legs inside SPEC's: a whipsaw fires both of its legs.
INSIDE = EntrySpec("BTCUSDT", Side.BUY, D("0.5"), OrderType.LIMIT, D("100"), D("97"), D("105"))
POSITION = "position"  # the position changed outside the bot's orders: the daemon re-reads it


@dataclass(frozen=True)
class Move:
    """An operator's `bot amend` (not the market's): taken by the engine that runs, or, while
    the bot is down, by the next one (a request waits in the state dir)."""

    pending_id: str
    stop_loss: Decimal | None
    take_profit: Decimal | None


Report = OrderReport | AlgoReport | str | Move
Action = Callable[[FakeExchange, list[str]], list[Report]]


def _entry(ids: list[str], n: int) -> str:
    return client_id(ids[n], Leg.ENTRY) if len(ids) > n else ""  # type: ignore[arg-type]


def fill(qty: str, n: int = 0) -> Action:
    """The market fills entry n up to qty, if its order is on the book."""
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        o = venue.orders.get(_entry(ids, n))  # type: ignore[call-overload]
        working = o is not None and o.status.value in ("NEW", "PARTIALLY_FILLED")
        return [venue.fill(o.client_id, D(qty))] if working else []
    return act


def cancel() -> Action:
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        o = venue.orders.get(_entry(ids, 0))  # type: ignore[call-overload]
        return [venue.cancel(o.client_id)] if o is not None and o.status.value == "NEW" else []
    return act


def price(to: str) -> Action:
    """The mark moves to ``to``: every protective order it crosses fires."""
    return lambda venue, ids: list(venue.move("BTCUSDT", D(to)))


def expire(leg: Leg) -> Action:
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        live = venue.live_protections(ids[0], leg) if ids else []
        return [venue.expire(x.client_id) for x in live]
    return act


def trigger_unseen(leg: Leg, n: int = 0) -> Action:
    """Entry n's leg triggers and its child executes; the algo order says TRIGGERED (FINISHED a
    few seconds later) and the stream's report of it is lost; the position changed: the daemon
    reconciles right then, while the leg still reads TRIGGERED."""
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        live = venue.live_protections(ids[n], leg) if len(ids) > n else []
        for x in live:
            venue.trigger(x.client_id)
        return [POSITION] if live else []
    return act


def whipsaw(down: str, up: str) -> Action:
    """The price falls to ``down`` and at once rises to ``up``: whatever both moves cross fires
    before the bot has heard of the first (a slow cancel, a 429 on it, or a bot that is down)."""
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        return [*venue.move("BTCUSDT", D(down)), *venue.move("BTCUSDT", D(up))]
    return act


def amend(sl: str | None = None, tp: str | None = None, n: int = 0) -> Action:
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        return [Move(ids[n], None if sl is None else D(sl), None if tp is None else D(tp))] if len(ids) > n else []
    act.operator = True  # type: ignore[attr-defined]
    return act


def reconcile() -> Action:
    return lambda venue, ids: [POSITION]


def by_hand(qty: str) -> Action:
    def act(venue: FakeExchange, ids: list[str]) -> list[Report]:
        venue.reduce("BTCUSDT", D(qty))
        return [POSITION]
    return act


@dataclass(frozen=True)
class Scenario:
    name: str
    actions: tuple[Action, ...]
    faults: dict[str, tuple[str | int, ...]] = field(default_factory=dict)
    specs: tuple[EntrySpec, ...] = (SPEC,)
    lag_ms: int = 0
    # Below the not-found margin: past timestamp + recvWindow + margin a read that cannot see an
    # order is taken as proof it never landed; the margin is set above the venue's read lag.
    order_lag_ms: int = 0
    parked: bool = False  # ends NEEDS_ATTENTION by design: its entry order must not keep working
    position_lag_ms: int = 0  # position reads show the position as it was this long ago
    send_wait_ms: int = 0  # the first protective send waits this long behind other work
    stacking: bool = False  # entries share a position knowingly: exact legs
    over_executes: bool = False  # an entry's legs execute more than it filled (the missing OCO)


BURST = ("429", "unavailable", "unreachable", "429", "unavailable", "unreachable", "429")
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
    Scenario("SL fires, TP cancelled", (fill("1.0"), price("95"))),
    Scenario("TP fires, SL cancelled", (fill("1.0"), price("110"))),
    Scenario("position closed by hand, both cancelled", (fill("1.0"), by_hand("1.0"))),
    Scenario("protective leg expired by the exchange, replaced", (fill("1.0"), expire(Leg.SL))),
    Scenario("burst of 429/503/unreachable on protection", (fill("1.0"),), {"place_protection": BURST}),
    Scenario("burst on the close path after -2021", (fill("1.0"),),
             {"place_protection": ("would_trigger",), "close_position": BURST}),
    Scenario("both legs of one generation refused", (fill("1.0"),), {"place_protection": (-2010, -2010)}),
    Scenario("-2021 after a partial fill", (fill("0.4"), fill("1.0")), {"place_protection": ("would_trigger",)}),
    Scenario("late visibility of the entry and its live legs at restart", (fill("1.0"),),
             lag_ms=20_000, order_lag_ms=4_000),
    Scenario("legs unseen beyond the read-lag window", (fill("1.0"),), lag_ms=45_000),
    Scenario("one entry's SL fires, the other entry on the symbol untouched",
             (fill("1.0"), fill("0.5", 1), price("96")), specs=(SPEC, SECOND), stacking=True),
    Scenario("NEEDS_ATTENTION with its entry order working: the order is cancelled",
             (fill("0.4"), fill("1.0")), {"place_protection": (-4005,) * 10}, parked=True),
    Scenario("one entry's SL TRIGGERED (not FINISHED) while a reconcile reads, another entry on the position",
             (fill("1.0"), fill("0.5", 1), trigger_unseen(Leg.SL)), specs=(SPEC, SECOND), stacking=True),
    Scenario("stacked: partial fills resize one entry beside another, its legs exact at every step",
             (fill("0.5", 1), fill("0.4"), fill("0.7"), fill("1.0"), price("96")), specs=(SPEC, SECOND),
             stacking=True),
    Scenario("stacked: a leg expired by the exchange is replaced alone, for its share only",
             (fill("0.4"), fill("0.5", 1), fill("1.0"), expire(Leg.SL)), specs=(SPEC, SECOND), stacking=True),
    Scenario("stacked: both legs of one entry execute (whipsaw): the other entry's share pays, exactly",
             (fill("1.0"), fill("0.5", 1), whipsaw("96.5", "105")), specs=(SPEC, INSIDE), stacking=True,
             over_executes=True),
    Scenario("stacked: a whipsaw while the sibling's cancel meets 429s",
             (fill("1.0"), fill("0.5", 1), whipsaw("96.5", "105")), {"cancel_protection": ("429", "429")},
             specs=(SPEC, INSIDE), stacking=True, over_executes=True),
    Scenario("a position read that lags a fill moves no share",
             (fill("0.4"), reconcile(), fill("1.0"), reconcile()), position_lag_ms=500),
    Scenario("a market close that expires unexecuted is sent again for the rest", (fill("1.0"),),
             {"place_protection": ("would_trigger",), "close_position": ("expired",)}),
    Scenario("a market close that executes part of it: the rest is closed by the next one", (fill("1.0"),),
             {"place_protection": ("would_trigger",), "close_position": ("partial", "partial")}),
    Scenario("a stop moved: the new one placed, the old one cancelled once it is live", (fill("1.0"), amend(sl="97"))),
    Scenario("both levels moved while 429s meet the new legs", (fill("1.0"), amend(sl="96", tp="108")),
             {"place_protection": ("429", "429", "unavailable")}),
    Scenario("moved to breakeven after a rise, then the price falls through it: the new stop fires",
             (fill("1.0"), price("105"), amend(sl="100.1"), price("100"))),
    Scenario("stacked: a moved stop is cancelled first and placed anew, never two for one share",
             (fill("1.0"), fill("0.5", 1), amend(sl="96")), specs=(SPEC, SECOND), stacking=True),
    Scenario("take profit in steps: level 1 fires, the stops shrink to what is left, level 2 fires",
             (fill("1.0"), price("105"), price("110")), specs=(LEVELS,)),
    Scenario("a take-profit level fires, then the price falls through the resized stop",
             (fill("0.7"), fill("1.0"), price("105"), price("95")), specs=(LEVELS,)),
    Scenario("a trailing stop follows the price up and fires on the pull-back",
             (fill("1.0"), price("104"), price("101")), specs=(TRAILED,)),
    Scenario("a trailing stop resized by partial fills, then the floor stop fires",
             (fill("0.4"), fill("1.0"), price("94")), specs=(TRAILED,)),
    Scenario("a protective send that waited past its decision is stamped anew before it goes",
             (fill("1.0"),), send_wait_ms=2_500),
]


class Crash(Exception):
    """The process dies here."""


@dataclass
class World:
    venue: FakeExchange
    clock: FakeClock
    path: Path
    created: list[str] = field(default_factory=list)
    commands: int = 0
    kinds: list[str] = field(default_factory=list)  # what each executed command was, in order
    crashed_at: int | None = None  # commands executed when the process died (None: it did not)
    liveness: list[str] = field(default_factory=list)
    send_wait_ms: int = 0
    stacking: bool = False
    over: list[str] = field(default_factory=list)  # legs above their entry's share, after a command


class Waiting:
    """A dispatcher whose first protective send waits ``ms`` behind other work (the budget, a
    slow answer for the same order) before it is handed on: time passes meanwhile."""

    def __init__(self, inner: Dispatcher, clock: FakeClock, ms: int) -> None:
        self.inner, self.clock, self.ms = inner, clock, ms

    def submit(self, job: Job) -> None:
        if self.ms and isinstance(job.cmd, PlaceProtection):
            self.clock.advance(self.ms)
            self.ms = 0
        self.inner.submit(job)


def _engine(world: World, crash_after: int | None, scenario: Scenario) -> ExecutionEngine:
    def hook(cmd: Command) -> None:
        if world.stacking and not scenario.over_executes:  # the victim's legs are over until it hears
            world.over.extend(f"after command {world.commands + 1}: {x}" for x in over_covered(world.venue))
        world.commands += 1
        world.kinds.append(type(cmd).__name__ + ("(new)" if isinstance(cmd, PersistPending) and cmd.new else ""))
        if isinstance(cmd, PersistPending) and cmd.new:
            world.created.append(cmd.pending.pending_id)
        if crash_after is not None and world.commands >= crash_after:
            raise Crash
    store = PendingEntryStore(world.path)

    async def sleep(seconds: float) -> None:  # time passes on the world's clock, not the machine's
        world.clock.advance(int(seconds * 1000))

    policy = Policy(stacking=world.stacking)
    engine = ExecutionEngine(store, world.venue, clock=world.clock, policy=policy, on_command=hook, sleep=sleep)
    engine.dispatcher = Waiting(engine.dispatcher, world.clock, world.send_wait_ms)
    return engine


async def _settle(engine: ExecutionEngine, world: World) -> None:
    """Let every scheduled check fire, moving the clock forward as needed."""
    for _ in range(200):
        await engine.idle()  # what one entry's step decided for another (a share taken) too
        world.liveness.extend(check_liveness(engine))
        at = engine.next_check_at()
        if at is None:
            return
        world.clock.ms = max(world.clock.ms, at)
        await engine.run_due_checks()
    raise AssertionError(f"timers never settled: {engine.state}")


async def _deliver(engine: ExecutionEngine, world: World, action: Action) -> None:
    reports = action(world.venue, world.created)
    world.clock.advance(100)
    for report in reports:
        if isinstance(report, OrderReport):
            await engine.on_order_report(report)
        elif isinstance(report, AlgoReport):
            await engine.on_algo_report(report)
        elif isinstance(report, Move):
            await engine.handle(OperatorAmend(PendingId(report.pending_id), report.stop_loss, report.take_profit))
        else:
            await engine.recover(positions=True)
    await _settle(engine, world)


async def run(scenario: Scenario, path: Path, crash_after: int | None, market_while_down: bool) -> World:
    clock = FakeClock()
    world = World(FakeExchange(clock), clock, path, send_wait_ms=scenario.send_wait_ms, stacking=scenario.stacking)
    world.venue.lag_ms, world.venue.order_lag_ms = scenario.lag_ms, scenario.order_lag_ms
    world.venue.position_lag_ms = scenario.position_lag_ms
    for method, kinds in scenario.faults.items():
        world.venue.fault(method, *kinds)
    done = 0
    engine = _engine(world, crash_after, scenario)
    try:
        if crash_after == 0:
            raise Crash
        for spec in scenario.specs:
            await engine.execute_entry(spec)
            await _settle(engine, world)
        for action in scenario.actions:
            await _deliver(engine, world, action)
            done += 1
    except Crash:
        world.crashed_at = world.commands
    else:
        return world
    del engine  # everything in memory is gone
    remaining = scenario.actions[done:]
    if market_while_down:  # the market goes on; an operator's move waits for the next start
        for action in remaining:
            if not getattr(action, "operator", False):
                action(world.venue, world.created)
        remaining = tuple(a for a in remaining if getattr(a, "operator", False))
    world.clock.advance(1_000)
    restarted = _engine(world, None, scenario)
    await restarted.recover()
    await _settle(restarted, world)
    for action in remaining:
        await _deliver(restarted, world, action)
    return world


CHECKED: list[int] = []  # crash points per scenario run, counted once every point held (conftest reports it)


def _points(scenario: Scenario, tmp: Path) -> int:
    world = asyncio.run(run(scenario, tmp / "uncrashed", None, True))
    return world.commands


@pytest.mark.parametrize("market_while_down", [True, False], ids=["market-moves-while-down", "restart-then-market"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_crash_point_converges(scenario: Scenario, market_while_down: bool, tmp_path: Path) -> None:
    """For every k, a crash after command k and a restart end with every invariant holding."""
    n = _points(scenario, tmp_path)
    assert n > 0
    failures: list[str] = []
    crashed: list[int | None] = []
    for k in range(n + 1):
        world = asyncio.run(run(scenario, tmp_path / f"k{k}", k, market_while_down))
        crashed.append(world.crashed_at)
        store = PendingEntryStore(world.path)
        problems = check_invariants(
            world.venue, store, set(world.created), len(scenario.specs[0].legs), parked=scenario.parked,
            stacked=scenario.stacking, over_executes=scenario.over_executes,
        )  # fmt: skip
        failures.extend(f"k={k}: {p}" for p in [*problems, *world.liveness, *world.over])
    assert crashed == list(range(n + 1)), "each run dies at its own boundary: after 0, 1, ... n commands"
    assert failures == []
    CHECKED.append(len(crashed))


# The uncrashed "entry, fill, protect": every command the executor runs is a boundary to die at.
ENTRY_FILL_PROTECT = [
    "PersistPending(new)",  # write-ahead: the entry is on disk before it is sent
    "PlaceEntry",
    "PersistPending",  # accepted
    "PersistPending",  # filled: protecting
    "PlaceProtection",  # stop-loss and take-profit go out at once, neither waits for the other
    "ScheduleCheck",  # the SL's answer stepped: the TP's is still out, so a wake-up
    "PlaceProtection",
    "PersistPending",  # the SL acknowledged (one flush for what the answers decided)
    "PersistPending",  # both legs acknowledged: protected
]


def test_the_matrix_covers_every_boundary(tmp_path: Path) -> None:
    """The crash points are the uncrashed run's commands plus the crash before the first: for
    "entry, fill, protect", 9 commands and 10 runs, each dying at its own boundary."""
    scenario = SCENARIOS[0]

    world = asyncio.run(run(scenario, tmp_path / "count", None, True))
    crashed = [asyncio.run(run(scenario, tmp_path / f"k{k}", k, True)).crashed_at for k in range(world.commands + 1)]

    assert world.kinds == ENTRY_FILL_PROTECT
    assert crashed == list(range(len(ENTRY_FILL_PROTECT) + 1))
