"""Soak: a stream of entries while prices move at random and `bot run` is SIGKILLed at random.

One seeded driver per seed (``BOT_SOAK_SEEDS``, comma-separated; ``random`` draws one and prints
it, so a failure names the seed that reproduces it) plays an operator and a market at once: entries on four
symbols (buys on two, sells on the other two, limit prices near the market, now and then a market
entry or a one-shot paper fault), price moves and short crossings that fill limit orders in
chunks, some of them while the daemon is dead, and at least ``BOT_SOAK_KILLS`` (default 50)
SIGKILLs of `bot run` at random moments, each followed by a restart. At the end the daemon is
started once more and must converge on its own: DESIGN.md's invariants over every entry, and the
venue-side checker (each entry's share from the venue's history: open SL and TP quantities equal
the open entries' shares, no live order of a flat entry, no entry's legs and closes executing more
than it filled).

Each entry's stop-loss and take-profit sit 2-5% from the market when it is made (each its own
distance, so entries on one symbol fire one by one); the random walk stays within 1% of the start
price, so only a "trigger move" fires a leg: the market jumps just past one live leg's trigger
(alternately a stop-loss and a take-profit) and stays there until the symbol's next move, firing
that leg and any other between. Trigger moves happen with the daemon running (it must cancel the
sibling at once) and while it is dead (the restart must find the fired leg and cancel the
sibling), and they cross resting limit entries on the way, whose fills may then find their own
stop already crossed (closed at market). One-way mode: every entry on a symbol shares one
position, so a leg closing more than its own entry's share would show.

What the market never does here: fire the second leg of an entry whose first leg fired before
the bot could cancel it. Binance has no one-cancels-other for algo orders; if the market crosses
both of an entry's triggers while the daemon is dead (or between the first fire and the cancel
landing), both reduce-only legs execute and the second takes another entry's share: no bot can
prevent that, and the checker would rightly report it (7). So every move stops one tick short of
a live leg of an entry that already fired ("spared" in the summary); the sibling stays live
until the daemon cancels it, which the checker requires at the end.

The entries share each position knowingly (``[protection] stacking``), so their legs are exact:
a resize adds a leg for the increment only, and no stop is ever live for more than its entry's
share, not even for a moment. Moves do not spare resizes: the checker holds through them.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_cli.paper.market import SYMBOLS
from bot_cli.state_store import lock_holder
from tests.e2e.harness import Cluster, View, cluster_at, ledger, parse_id, stop_cover_problems, wait_for


pytestmark = [pytest.mark.soak, pytest.mark.e2e]

KILLS = int(os.environ.get("BOT_SOAK_KILLS", "50"))  # per seed


def _seeds(text: str) -> list[int]:
    return [random.SystemRandom().randrange(2**31) if s.strip() == "random" else int(s) for s in text.split(",")]


MODE = os.environ.get("BOT_SOAK_MODE", "one-way")  # or "hedge": the account in hedge mode
SEEDS = _seeds(os.environ.get("BOT_SOAK_SEEDS", os.environ.get("BOT_SOAK_SEED", "20251209")))
BUDGET_S = 600.0  # the whole soak, final convergence included
WEIGHT_LIMIT = 2400  # the venue's request weight per minute; a daemon start costs about 170
START_HEADROOM = 450
MAX_ENTRIES = 70  # each filled entry keeps up to two algo orders live; the venue allows 200
STOP_AWAY = (0.02, 0.05)  # an entry's SL and TP, each this far (drawn) from the market
PAST_TRIGGER = (0.0005, 0.003)  # a trigger move lands this far past the chosen leg's trigger
MIN_KILLS_FOR_FIRES = 20  # with this many kills, both an SL and a TP must have fired
# Moves go up or down by the symbol and leg drawn: one seed of 25 kills made 7 up and 0 down.
MIN_KILLS_FOR_BOTH_WAYS = 50
ONE_SHOT_FAULTS = (
    "lost_response:order:once",
    "unknown_503:order:once",
    "timeout_1007:order:once",
    "lost_response:algoOrder:once",
    "unknown_503:algoOrder:once",
    "timeout_1007:algoOrder:once",
    "rate_limit_429:algoOrder:once",
    "slow_response:algoOrder#1:30",  # executed, answer held: the kill lands mid-protection
    "slow_response:order#1:30",
    "drop_stream",
    "expire_listen_key",
)


@dataclass(frozen=True)
class Market:
    symbol: str
    side: str  # one side per symbol: one-way positions never net out between entries
    qty: str
    base: Decimal

    @property
    def tick(self) -> Decimal:
        return SYMBOLS[self.symbol].tick_size

    def on_tick(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(rounding=ROUND_DOWN) * self.tick

    def walk(self, rng: random.Random, now: Decimal) -> Decimal:
        """A random move, kept within 1% of the start price."""
        moved = now * Decimal(1 + rng.gauss(0, 0.002))
        lo, hi = self.base * Decimal("0.99"), self.base * Decimal("1.01")
        return self.on_tick(min(max(moved, lo), hi))

    def limit(self, rng: random.Random, now: Decimal) -> Decimal:
        """A limit price up to 0.2% on the passive side of the market."""
        away = Decimal(rng.uniform(0, 0.002))
        return self.on_tick(now * (1 - away if self.side == "buy" else 1 + away))

    def cross(self, limit: Decimal) -> Decimal:
        """A price at which a limit order at ``limit`` fills."""
        return self.on_tick(limit * (Decimal("0.999") if self.side == "buy" else Decimal("1.001")))

    def stops(self, rng: random.Random, now: Decimal, with_tp: bool) -> tuple[str, str | None]:
        """An SL and a TP each 2-5% (drawn) from the market ``now``, on the entry's sides."""
        down = self.on_tick(now * Decimal(1 - rng.uniform(*STOP_AWAY)))
        up = self.on_tick(now * Decimal(1 + rng.uniform(*STOP_AWAY)))
        sl, tp = (down, up) if self.side == "buy" else (up, down)
        return str(sl), (str(tp) if with_tp else None)

    def past(self, rng: random.Random, algo: dict[str, Any]) -> Decimal:
        """A price just past ``algo``'s trigger, on the side where it fires."""
        trigger = Decimal(algo["triggerPrice"])
        away = Decimal(rng.uniform(*PAST_TRIGGER))
        price = self.on_tick(trigger * (1 + away if rises(algo) else 1 - away))
        return price + self.tick if rises(algo) and price < trigger else price


MARKETS = (
    Market("BTCUSDT", "buy", "0.010", Decimal("97000.00")),
    Market("ETHUSDT", "sell", "0.050", Decimal("3500.00")),
    Market("SOLUSDT", "buy", "3", Decimal("180.0000")),
    Market("DOGEUSDT", "sell", "60", Decimal("0.32000")),
)
BY_SYMBOL = {m.symbol: m for m in MARKETS}
FIRED = frozenset({"TRIGGERING", "TRIGGERED", "FINISHED"})
STEP_MS = 100  # the paper venue's price step: a level lasting one step is seen by the book


def rises(algo: dict[str, Any]) -> bool:
    """The algo order fires at or above its trigger (a buy stop, a sell take-profit)."""
    return bool((algo["side"] == "BUY") == (algo["orderType"] == "STOP_MARKET"))


def fires_at(algo: dict[str, Any], price: Decimal) -> bool:
    trigger = Decimal(algo["triggerPrice"])
    return price >= trigger if rises(algo) else price <= trigger


class Driver:
    """The seeded operator and market."""

    def __init__(self, c: Cluster, rng: random.Random) -> None:
        self.c, self.rng = c, rng
        self.prices = {m.symbol: m.base for m in MARKETS}
        self.faults_set = 0
        self.fills_while_down = 0
        self.at_kill: dict[str, Decimal] = {}
        self.trigger_moves = {"up": 0, "down": 0}
        self.next_leg = "sl"
        self.entering: dict[subprocess.Popen[str], str] = {}  # `bot enter` running -> symbol
        self.fired: set[str] = set()  # entries one of whose legs fired
        self.spared = 0  # moves cut short so as not to fire the sibling of a fired leg

    def movable(self, symbol: str) -> bool:
        """No `bot enter` for ``symbol`` is still running: it checks its SL and TP against the
        market when it starts, so the market must not jump past them meanwhile."""
        self.entering = {p: s for p, s in self.entering.items() if p.poll() is None}
        return symbol not in self.entering.values()

    def move(self, m: Market, price: Decimal, *, settle: bool = True) -> None:
        """Set the market (volatility 0: it stays at that level until the next move, and a leg
        fires when the level is past its trigger at one of the venue's 100 ms steps), but never at
        a level that would fire a live leg of an entry whose other leg already fired (the sibling
        a dead daemon could not cancel yet): see the module docstring. With ``settle`` the move
        waits (bounded) for the venue to step at the new level, so what it fires has fired and
        is noted before anything else moves."""
        state = self.c.state()
        self.note_fired(state)
        live = [(a, parsed) for a in state["openAlgoOrders"]
                if a["symbol"] == m.symbol and a["algoStatus"] == "NEW"
                and (parsed := parse_id(a["clientAlgoId"])) is not None]  # fmt: skip
        for a, parsed in live:
            if parsed[0] in self.fired and fires_at(a, price):  # stop one tick short
                trigger = Decimal(a["triggerPrice"])
                price = trigger - m.tick if rises(a) else trigger + m.tick
                self.spared += 1
        self.c.set_price(m.symbol, price)
        self.prices[m.symbol] = price
        if settle:
            moved_at = int(self.c.state()["time"])
            stepped = wait_for(
                lambda: (st := self.c.state())["time"] >= moved_at + STEP_MS and st,
                f"the venue to step at {m.symbol} {price}",
                timeout=5,
                every=0.02,
            )
            self.note_fired(stepped)

    def note_fired(self, state: dict[str, Any]) -> None:
        """Entries with a leg the venue shows fired (among its most recent finished orders)."""
        self.fired |= {
            parsed[0] for a in state["recentAlgoOrders"]
            if a["algoStatus"] in FIRED and (parsed := parse_id(a["clientAlgoId"])) is not None
        }  # fmt: skip

    def enter(self, *, asynchronous: bool) -> None:
        m = self.rng.choice(MARKETS)
        now = self.prices[m.symbol]
        limit = None if self.rng.random() < 0.15 else m.limit(self.rng, now)
        sl, tp = m.stops(self.rng, now, with_tp=self.rng.random() < 0.7)
        price = None if limit is None else str(limit)
        if asynchronous:
            popen = self.c.enter_async(m.symbol, m.side, m.qty, price=price, sl=sl, tp=tp)
            self.entering[popen] = m.symbol
        else:
            answer = self.c.enter(m.symbol, m.side, m.qty, price=price, sl=sl, tp=tp)
            # 1: refused or proven not placed; with no daemon, 3: followed and not protected
            # in time, 4: a limit entry rests and nothing follows it (README, exit codes)
            assert answer["exit_code"] in (0, 1, 3, 4), answer

    def resting(self) -> list[tuple[Market, Decimal]]:
        """The entry limit orders resting on the venue now."""
        return [
            (BY_SYMBOL[o["symbol"]], Decimal(o["price"]))
            for o in self.c.state()["openOrders"]
            if o["clientOrderId"].endswith("-e") and o["type"] == "LIMIT"
        ]

    def market_step(self, cross_odds: float) -> None:
        """A random walk step, or a crossing of a resting entry: held (it fills in two or three
        100 ms steps) or a short pulse (a partial fill, or none)."""
        resting = [(m, limit) for m, limit in self.resting() if self.movable(m.symbol)]
        if resting and self.rng.random() < cross_odds:
            m, limit = self.rng.choice(resting)
            back = self.prices[m.symbol]
            pulse = self.rng.random() < 0.4
            self.move(m, m.cross(limit), settle=not pulse)
            if pulse:
                self.c.http.post("/paper/advance").raise_for_status()
                self.move(m, back)
        elif movable := [m for m in MARKETS if self.movable(m.symbol)]:
            m = self.rng.choice(movable)
            self.move(m, m.walk(self.rng, self.prices[m.symbol]))

    def through_trigger(self, when: str) -> None:
        """Move one symbol's market just past a live leg's trigger (alternately a stop-loss and a
        take-profit: the turn passes only once a leg of the wanted kind was there to choose) and
        leave it there: the leg fires on the venue's next step."""
        live = [
            a for a in self.c.state()["openAlgoOrders"]
            if a["algoStatus"] == "NEW" and (parsed := parse_id(a["clientAlgoId"])) is not None
            and parsed[0] not in self.fired and self.movable(a["symbol"])
        ]  # fmt: skip
        if not live:
            return
        leg = self.next_leg
        of_leg = [a for a in live if (parse_id(a["clientAlgoId"]) or ("", ""))[1] == leg]
        algo = self.rng.choice(of_leg or live)
        m = BY_SYMBOL[algo["symbol"]]
        self.move(m, m.past(self.rng, algo))
        self.trigger_moves[when] += 1
        if of_leg:
            self.next_leg = "tp" if leg == "sl" else "sl"

    def maybe_fault(self) -> str | None:
        """Now and then a one-shot fault, armed just before an entry."""
        if self.rng.random() >= 0.2:
            return None
        spec = self.rng.choice(ONE_SHOT_FAULTS)
        self.c.add_faults(spec)
        self.faults_set += 1
        return spec

    def up_phase(self) -> None:
        """A few actions with the daemon running, then the kill at a random moment."""
        for _ in range(self.rng.randint(1, 4)):
            roll = self.rng.random()
            if roll < 0.35 and len(self.c.created) + self.c.enters_running() < MAX_ENTRIES:
                fault = self.maybe_fault()
                held = fault is not None and fault.startswith("slow_response")
                # a held answer keeps a synchronous `bot enter` waiting 10 s for the daemon
                self.enter(asynchronous=held or self.rng.random() < 0.4)
            elif roll < 0.47:
                self.through_trigger("up")
            else:
                self.market_step(cross_odds=0.4)
        pause = self.rng.choice((0.0, 0.0, self.rng.uniform(0, 0.3), self.rng.uniform(0, 1.2)))
        time.sleep(pause)  # the kill moment itself is what is random here; nothing is awaited
        self.c.kill_daemon()
        self.at_kill = entry_fills(self.c.state())

    def count_fills_while_down(self) -> None:
        now = entry_fills(self.c.state())
        self.fills_while_down += sum(q > self.at_kill.get(cid, Decimal(0)) for cid, q in now.items())

    def down_phase(self) -> None:
        """While no daemon runs: the market moves (fills go unprotected), maybe an entry is sent
        by `bot enter` itself."""
        for _ in range(self.rng.randint(0, 2)):
            self.market_step(cross_odds=0.8)
        if self.rng.random() < 0.3:
            self.through_trigger("down")
        if self.rng.random() < 0.15 and self.c.enters_running() == 0 and len(self.c.created) < MAX_ENTRIES:
            self.enter(asynchronous=False)


def entry_fills(state: dict[str, Any]) -> dict[str, Decimal]:
    """Filled quantity of every entry order the venue shows (open and recently done)."""
    rows = [*state["openOrders"], *state["recentOrders"]]
    return {o["clientOrderId"]: Decimal(o["executedQty"]) for o in rows if o["clientOrderId"].endswith("-e")}


def start_daemon(c: Cluster) -> float:
    """Restart `bot run` as an operator would: within the venue's weight budget, and once the
    state dir's lock is free (a `bot enter` with no daemon to hand off to holds it while it
    sends). Returns the seconds spent waiting for request weight."""
    began = time.monotonic()
    wait_for(
        lambda: c.used_weight() < WEIGHT_LIMIT - START_HEADROOM,
        "the venue's request weight of this minute to leave room for a daemon start",
        timeout=65, every=1.0,
    )  # fmt: skip
    waited = time.monotonic() - began
    for attempt in range(3):
        wait_for(lambda: lock_holder(c.state_dir) is None, "the state dir's lock to be free")
        try:
            c.start_daemon()
            return waited
        except AssertionError:
            if attempt == 2 or c.daemon is None or "holds" not in c.daemon.log():
                raise  # not the race with a `bot enter` that took the lock meanwhile
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed {s}" for s in SEEDS])
def test_soak_random_kills_converge(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    """At least BOT_SOAK_KILLS SIGKILLs at random moments; the last restart converges alone."""
    rng = random.Random(seed)
    began = time.monotonic()
    with cluster_at(tmp_path, position_mode=MODE, stacking=True) as c:  # entries stacked on four positions
        if MODE == "hedge":  # before any order: the venue refuses the switch otherwise
            c.by_hand("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")
        driver = Driver(c, rng)
        throttled = 0.0  # seconds spent waiting for the venue's request weight
        for m in MARKETS:
            c.set_price(m.symbol, m.base)

        # Act: the stream of entries, moves and kills
        while c.kills < KILLS:
            elapsed = time.monotonic() - began
            assert elapsed < BUDGET_S - 60, f"soak too slow: {c.kills} of {KILLS} kills after {elapsed:.0f}s"
            c.reap_enters()
            if c.kills:
                driver.count_fills_while_down()
            throttled += start_daemon(c)
            driver.up_phase()
            driver.down_phase()

        # Assert: one more start, no more faults or moves; it converges on its own
        c.clear_faults()
        throttled += start_daemon(c)
        c.collect_enters()
        remaining = max(30.0, BUDGET_S - (time.monotonic() - began))
        view = c.assert_invariants(timeout=min(remaining, 90.0))
        # 1, position by position from positionRisk: every part of it behind a live stop
        uncovered = stop_cover_problems(view)
        assert not uncovered, "\n".join(uncovered)
        outcomes = Counter(
            f"{'archived ' if view.archived(pid) else ''}{(view.record(pid) or {}).get('status')}" for pid in c.created
        )
        fired, closes = exits(view)
        elapsed = time.monotonic() - began
        summary = (
            f"soak: seed {seed}, {c.kills} kills, {len(c.created)} entries checked "
            f"({dict(sorted(outcomes.items()))}), {driver.faults_set} one-shot faults, "
            f"{driver.fills_while_down} fills while down, trigger moves {driver.trigger_moves} "
            f"firing {dict(fired)} legs and {closes} closes, {driver.spared} moves spared a "
            f"sibling, {elapsed:.0f}s "
            f"({throttled:.0f}s waiting for request weight)"
        )
        with capsys.disabled():
            print(f"\n{summary}")
        assert c.kills >= KILLS
        assert elapsed < BUDGET_S, f"soak took {elapsed:.0f}s, budget {BUDGET_S:.0f}s"
        if c.kills >= MIN_KILLS_FOR_FIRES:  # the market did go through both kinds of leg
            assert fired["sl"], f"no SL fired: {summary}"
            assert fired["tp"], f"no TP fired: {summary}"
        if c.kills >= MIN_KILLS_FOR_BOTH_WAYS:  # and moved through triggers up and down
            assert min(driver.trigger_moves.values()) > 0, summary


def exits(view: View) -> tuple[Counter[str], int]:
    """How many legs of each kind fired (their child order executed), and how many closes the
    bot sent that executed, from the venue's history."""
    fired: Counter[str] = Counter()
    for share in ledger(view).shares.values():
        for cid in share.exits:
            fired[parse_id(cid)[1]] += 1  # type: ignore[index]
    closes = fired.pop("x", 0)
    return Counter({"sl": fired["sl"], "tp": fired["tp"]}), closes
