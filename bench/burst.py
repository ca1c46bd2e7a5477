"""A burst of fills, and one slow answer beside other fills: fill -> both legs on the venue.

    python -m bench.burst [--sizes 10,100] [--rtt 0.05] [--hold 10] [--runs 1] [--dir DIR]

Every figure comes from the paper venue's own timestamps, read back over its REST API after
the fact (never from the bot's logs): an entry's fill is its order's ``updateTime`` (the
matching step that filled it; the entries here fill in one piece), a leg exists from its algo
order's ``createTime`` (stamped when the venue receives the POST, before any answer is held).
"Both legs" is the later of the entry's first stop-loss and first take-profit.

The venue (`bot paper serve`) and the daemon (`bot run`) are processes of their own, each run
on a fresh temporary state dir and a free port; everything started is killed at the end.

1. Burst: N limit BUY entries (one lot each, so a crossing fills each in one step) rest just
   below the mark, handed to the running daemon through the Python API; every algo POST's
   answer is held RTT seconds (``slow_response:algoOrder@POST:RTT``, an ordinary round trip to
   Binance); then one price move fills them all in the same 100 ms step. Per entry: fill ->
   both legs; p50 / p99 / max. The venue's order-rate limits are set out of reach and its
   price does not walk (``volatility = 0``), so neither enters the figure.
2. Head of line: the first protective POST's answer is held HOLD seconds
   (``slow_response:algoOrder@POST#1:HOLD``); market entry A (BTCUSDT) fills and its first leg
   waits for that answer. Beside it two other entries fill: B limit (SOLUSDT), resting
   beforehand, filled by a price move 1 s after A's fill, so its fill does not depend on the
   daemon; and B market (ETHUSDT), handed to the daemon 1.5 s after A's fill, so a daemon that
   is blocked delays its fill, not only its legs. Figures: each B's fill -> both of its legs,
   and B market's Client.enter call -> both legs.

Goals: a burst of 100 at 50 ms: max <= 1 s (a serial design, one leg after another and one
entry after another, needs about 20 s); head of line <= 100 ms (the serial design took 8.8 s).

The price move is made just before a 100 ms boundary and the venue is stepped right after it
(POST /paper/advance), so the fill's stamp (a step time) is when the venue really filled them,
give or take the few ms printed as "stepped +N ms".

Runs against whatever ``bot_cli`` is importable: to measure an older release, run this file
with that checkout first on PYTHONPATH (its subprocesses inherit it); config keys it does not
know (``[paper] order_limit_*``) are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

import bot_cli
from bot_cli.config import PaperConfig, ProtectionConfig
from bot_cli.state_store import PendingEntryStore


T = TypeVar("T")

PAPER_KEY, PAPER_SECRET = "paper-key", "paper-secret"  # the paper venue's fixed credentials
DEFAULT_PAPER_PORT = 18765  # never used here: an operator's own venue may want it
OK = 200
MAX_BURST = 100  # two legs each: the venue (like Binance) takes 200 conditional orders in all
LEGS = 2
BURST_SYMBOL = "BTCUSDT"
BURST_MARK = Decimal("110000.0")  # one lot (0.001) is then above BTCUSDT's 100 USDT min notional
BURST_QTY = "0.001"  # one step: a crossed limit fills whole in one matching step
TICK = Decimal("0.1")
STEP_MS = 100  # the venue's matching step
BURST_GOAL_MS = 1000.0
GOAL_BURST = 100  # the burst size the goal is set for
HOL_GOAL_MS = 100.0
LEG_LATE_MS = 1000.0  # a leg later than this after its fill is listed as late
HAS_ORDER_LIMITS = {"order_limit_10s", "order_limit_1m"} <= {f.name for f in fields(PaperConfig)}
HAS_STACKING = "stacking" in {f.name for f in fields(ProtectionConfig)}  # a burst stacks entries on one symbol


# --- waiting and processes -------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], what: str, timeout: float, every: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; SystemExit naming ``what`` after
    ``timeout`` (a connection error counts as "not yet")."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError, ValueError) as err:
            value, last = None, err
        if value:
            return value
        if time.monotonic() >= deadline:
            why = f" (last error: {last!r})" if last is not None else ""
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}{why}")
        time.sleep(every)


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != DEFAULT_PAPER_PORT:
            return port


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def cpu_ms(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, in ms (None off Linux)."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields_[11]) + int(fields_[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def machine_cpu_ms() -> tuple[float, float] | None:
    """(busy, all) CPU time of the whole machine so far, in ms over every core (None off Linux)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return None
    scale = 1000 / os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) * scale, sum(ticks) * scale


@dataclass
class CpuWindow:
    """CPU used by the venue, the daemon, this process and everything else over a window."""

    pids: dict[str, int]
    start: dict[str, float | None] = field(default_factory=dict)
    machine: tuple[float, float] | None = None
    wall: float = 0.0

    def __post_init__(self) -> None:
        self.start = {name: cpu_ms(pid) for name, pid in self.pids.items()}
        self.start["bench"] = time.process_time() * 1000
        self.machine = machine_cpu_ms()
        self.wall = time.monotonic()

    def summary(self) -> str:
        wall = (time.monotonic() - self.wall) * 1000
        now = {name: cpu_ms(pid) for name, pid in self.pids.items()}
        now["bench"] = time.process_time() * 1000
        used = {k: v - b for k, v in now.items() if v is not None and (b := self.start.get(k)) is not None}
        parts = [f"{k} {v:.0f}" for k, v in used.items()]
        machine, first = machine_cpu_ms(), self.machine
        if machine is not None and first is not None:
            busy, total = machine[0] - first[0], machine[1] - first[1]
            parts.append(f"everything else {max(0.0, busy - sum(used.values())):.0f}")
            parts.append(f"machine {100 * busy / total:.0f}% busy of {os.cpu_count()} cores" if total else "")
        return f"CPU ms over these {wall:.0f} ms: " + ", ".join(p for p in parts if p)


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 < p <= 100) by nearest rank: always one of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Proc:
    """A child in its own process group, output to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM its group, then SIGKILL what is left after 10 s; reaped either way."""
        if self.popen.poll() is not None:
            return  # exited and reaped: its group id may belong to someone else now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


# --- one venue and one daemon on a fresh state dir -------------------------------------------


class World:
    """A temp dir with a bot.toml, `bot paper serve` and `bot run` (both killed by ``close``)."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root / name
        self.root.mkdir(parents=True)
        self.state = self.root / "state"
        self.config = self.root / "bot.toml"
        self.port = free_port()
        limits = "order_limit_10s = 100000\norder_limit_1m = 100000\n" if HAS_ORDER_LIMITS else ""
        stacking = "[protection]\nstacking = true\n" if HAS_STACKING else ""
        self.config.write_text(
            f"[venue]\nposition_mode = 'one-way'\n[paper]\nport = {self.port}\nvolatility = 0.0\n{limits}{stacking}",
            encoding="utf-8",
        )
        self.env = {k: v for k, v in os.environ.items() if k not in ("BOT_API_KEY", "BOT_API_SECRET")}
        self.env.update(BOT_CONFIG=str(self.config), BOT_STATE_DIR=str(self.state), PYTHONUNBUFFERED="1")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.procs: list[Proc] = []
        self.venue: Proc | None = None
        self.daemon: Proc | None = None

    def _spawn(self, name: str, *args: str) -> Proc:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "bot_cli", *args], env=self.env, cwd=self.root,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start(self, faults: Sequence[str] = ()) -> None:
        venue = self.venue = self._spawn("paper", "paper", "serve")

        def answers() -> bool:
            if venue.popen.poll() is not None:
                raise SystemExit(f"`bot paper serve` exited ({venue.popen.returncode}):\n{venue.text()[-3000:]}")
            return self.http.get("/fapi/v1/time").status_code == OK

        wait_for(answers, f"the paper venue on port {self.port}", 30)
        if faults:
            self.add_faults(*faults)
        ready = self.root / "ready.json"
        args = ("run", "--no-live", "--log-format", "json", "--ready-file", str(ready))
        daemon = self.daemon = self._spawn("daemon", *args)

        def reconciled() -> bool:
            if daemon.popen.poll() is not None:
                raise SystemExit(f"`bot run` exited ({daemon.popen.returncode}):\n{daemon.text()[-3000:]}")
            return ready.exists()

        wait_for(reconciled, "`bot run` to write its ready file", 60)
        wait_for(self._counted, "the daemon's heartbeat to carry its count of foreign conditional orders", 15, 0.1)

    def _counted(self) -> bool:
        """True once the heartbeat carries the daemon's count of conditional orders that are not
        the bot's (a release whose heartbeat has no such count: at once). Until then every entry
        made through the API reads openAlgoOrders itself (40 weight): 100 entries in the daemon's
        first 5 s would spend the minute's 2,400 weight and be refused."""
        beat = json.loads((self.state / "heartbeat.json").read_text(encoding="utf-8"))
        account = beat.get("account")
        return not isinstance(account, dict) or "counted_at" not in account or bool(account["counted_at"])

    def close(self) -> None:
        for proc in reversed(self.procs):  # the daemon first, then the venue
            proc.stop()
        self.http.close()

    # -- the venue's admin API and its signed REST ---------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, path, json=body)
        if answer.status_code != OK:
            raise SystemExit(f"{method} {path} {body}: {answer.status_code} {answer.text}")
        return answer.json()

    def add_faults(self, *specs: str) -> list[str]:
        faults: list[str] = self.admin("POST", "/paper/faults", {"add": list(specs)})["faults"]
        return faults

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.admin("POST", "/paper/price", {"symbol": symbol, "price": str(price)})

    def state_view(self) -> dict[str, Any]:
        view: dict[str, Any] = self.admin("GET", "/paper/state")
        return view

    def signed_get(self, path: str, **params: Any) -> Any:
        payload = urlencode({**params, "timestamp": wall_ms(), "recvWindow": 10000})
        digest = hmac.new(PAPER_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        answer = self.http.get(f"{path}?{payload}&signature={digest}", headers={"X-MBX-APIKEY": PAPER_KEY})
        if answer.status_code != OK:
            raise SystemExit(f"GET {path} {params}: {answer.status_code} {answer.text}")
        return answer.json()

    def orders(self, symbol: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.signed_get("/fapi/v1/allOrders", symbol=symbol, orderId=0, limit=1000)
        return rows

    def algos(self, symbol: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.signed_get("/fapi/v1/allAlgoOrders", symbol=symbol, algoId=0, limit=1000)
        return rows

    # -- the state dir --------------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        with PendingEntryStore(self.state) as store:
            return {pid: str(rec.get("status")) for pid, rec in store.load_all().items()}


@contextlib.contextmanager
def world(root: Path, name: str, faults: Sequence[str] = ()) -> Iterator[World]:
    w = World(root, name)
    try:
        w.start(faults)
        yield w
    finally:
        w.close()


# --- entries through the Python API, handed to the running daemon ----------------------------


@dataclass(frozen=True)
class Ask:
    symbol: str
    qty: str
    sl: Decimal
    tp: Decimal
    price: Decimal | None = None  # None: a market entry


def enter_all(w: World, asks: Sequence[Ask], parallel: int = 8) -> list[str]:
    """Every entry through ``AsyncClient.enter`` (``parallel`` at a time); their ids in order."""
    from bot_cli.api import AsyncClient

    async def run() -> list[str]:
        client = AsyncClient(w.state, w.config)
        gate = asyncio.Semaphore(parallel)

        async def one(a: Ask) -> str:
            async with gate:
                e = await client.enter(a.symbol, "buy", a.qty, price=a.price, stop_loss=a.sl, take_profit=a.tp)
                if not e.watched:
                    raise SystemExit(f"entry {e.id} is not watched by the daemon: {e.note}")
                return e.id

        return list(await asyncio.gather(*(one(a) for a in asks)))

    return asyncio.run(run())


# --- reading the venue's timestamps ----------------------------------------------------------


@dataclass
class Timing:
    """One entry as the venue stamped it."""

    pid: str
    fill_ms: int
    legs_ms: dict[str, int]  # "sl" / "tp" -> createTime of the first of that kind
    generations: int  # algo orders of this entry on the venue (2 = one SL, one TP)

    @property
    def both_ms(self) -> int | None:
        if {"sl", "tp"} <= self.legs_ms.keys():
            return max(self.legs_ms["sl"], self.legs_ms["tp"])
        return None

    @property
    def latency_ms(self) -> float | None:
        both = self.both_ms
        return None if both is None else float(both - self.fill_ms)


def timings(w: World, symbol: str, pids: Sequence[str]) -> dict[str, Timing]:
    orders = {o["clientOrderId"]: o for o in w.orders(symbol)}
    algos = w.algos(symbol)
    out: dict[str, Timing] = {}
    for pid in pids:
        entry = orders.get(f"{pid}-e")
        if entry is None or entry["status"] != "FILLED":
            raise SystemExit(f"entry {pid}: not filled on the venue ({entry})")
        mine = [a for a in algos if a["clientAlgoId"].startswith(f"{pid}-")]
        legs: dict[str, int] = {}
        for a in mine:
            kind = a["clientAlgoId"].rsplit("-", 1)[1].rstrip("0123456789")
            if kind in ("sl", "tp"):
                legs[kind] = min(legs.get(kind, a["createTime"]), int(a["createTime"]))
        out[pid] = Timing(pid, int(entry["updateTime"]), legs, len(mine))
    return out


# --- the log files ---------------------------------------------------------------------------


def log_notes(w: World) -> list[str]:
    """What the daemon logged at WARNING or above, -1015s and 429s in either log, tracebacks."""
    notes: list[str] = []
    if w.daemon is not None:
        levels: dict[str, list[str]] = {}
        for line in w.daemon.text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                if line.strip():
                    levels.setdefault("(not JSON)", []).append(line.strip())
                continue
            level = str(rec.get("level", "")).upper()
            if level in ("WARNING", "ERROR", "CRITICAL"):
                levels.setdefault(level, []).append(str(rec.get("msg", ""))[:160])
        for level, msgs in levels.items():
            distinct = list(dict.fromkeys(msgs))
            notes.append(f"daemon {level}: {len(msgs)} line(s); e.g. " + " | ".join(distinct[:3]))
    texts = [(proc.name, proc.text()) for proc in w.procs]
    notes += [f"{name} log: {text.count(word)} x {word.strip()!r}"
              for name, text in texts for word in ("-1015", " 429 ", "Traceback") if word in text]  # fmt: skip
    return notes


# --- 1. the burst ----------------------------------------------------------------------------


@dataclass
class BurstResult:
    n: int
    latencies: list[float]
    first_leg: list[float]  # fill -> the first of its two legs
    fill_stamps: int  # distinct fill times (1: all filled in one step)
    stepped_ms: int  # the venue stepped the fill this long after the step's stamp (an upper bound)
    late: list[str]
    legs_span: tuple[int, int]  # the burst's first and last leg created, ms after the fill step
    cpu: str  # CPU used by each process from the move until every entry was PROTECTED
    notes: list[str] = field(default_factory=list)


def burst(root: Path, n: int, rtt: float) -> BurstResult:
    with world(root, f"burst-{n}") as w:
        w.set_price(BURST_SYMBOL, BURST_MARK)
        asks = []
        for i in range(n):
            price = BURST_MARK - TICK * (i + 1)
            sl = (price * Decimal("0.95")).quantize(TICK)
            tp = (price * Decimal("1.05")).quantize(TICK)
            asks.append(Ask(BURST_SYMBOL, BURST_QTY, sl, tp, price))
        pids = enter_all(w, asks)

        def resting() -> bool:
            live = {o["clientOrderId"] for o in w.state_view()["openOrders"] if o["status"] == "NEW"}
            return all(f"{pid}-e" in live for pid in pids)

        wait_for(resting, f"{n} entries resting (NEW) on the venue", 60, every=0.2)
        wait_for(lambda: all(s == "OPEN" for s in w.statuses().values()), f"{n} entries OPEN in the journal", 30)
        w.add_faults(f"slow_response:algoOrder@POST:{rtt:g}")
        cpu = CpuWindow({p.name: p.popen.pid for p in w.procs})
        stepped = move_and_step(w, BURST_SYMBOL, BURST_MARK - TICK * (n + 10))

        def protected() -> bool:  # the journal, seldom: the venue is not polled, the cores are shared
            s = w.statuses()
            return len(s) == n and all(v == "PROTECTED" for v in s.values())

        wait_for(protected, f"{n} entries PROTECTED in the journal", 90, every=0.5)
        used = cpu.summary()
        got = timings(w, BURST_SYMBOL, pids)
        notes = log_notes(w)
    missing = [t.pid for t in got.values() if t.latency_ms is None]
    if missing:
        raise SystemExit(f"burst {n}: entries without both legs on the venue: {missing[:5]}")
    lat = [t.latency_ms for t in got.values() if t.latency_ms is not None]
    first = [float(min(t.legs_ms.values()) - t.fill_ms) for t in got.values()]
    late = [f"{t.pid} {t.latency_ms:.0f} ms" for t in got.values() if (t.latency_ms or 0) > LEG_LATE_MS]
    extra = [f"{t.pid} has {t.generations} algo orders" for t in got.values() if t.generations != LEGS]
    step = min(t.fill_ms for t in got.values())
    created = [ms - step for t in got.values() for ms in t.legs_ms.values()]
    return BurstResult(n, lat, first, len({t.fill_ms for t in got.values()}), stepped, late,
                       (min(created), max(created)), used, notes + extra)


def move_and_step(w: World, symbol: str, price: Decimal) -> int:
    """Move the price so it crosses at the next 100 ms step, and have the venue take that step
    at once; how long after the step's time the venue was asked to step (ms)."""
    while (wall_ms() % STEP_MS) > STEP_MS - 30:  # room for the move before the boundary
        time.sleep(0.005)
    w.set_price(symbol, price)
    boundary = (wall_ms() // STEP_MS + 1) * STEP_MS
    time.sleep(max(0.0, (boundary - wall_ms() + 1) / 1000))
    stepped: int = w.admin("POST", "/paper/advance")["time"]
    return stepped - boundary


# --- 2. head of line --------------------------------------------------------------------------


@dataclass
class HolResult:
    limit_ms: float  # B (limit, filled by the market ~1 s after A): fill -> both legs
    market_ms: float  # B (market, sent by the daemon ~1.5 s after A's fill): fill -> both legs
    market_called_ms: float  # ... Client.enter called (this host's clock) -> both legs on the venue
    market_gap_ms: int  # A's fill -> the market B's fill
    a_ms: float | None  # A's fill -> both of A's legs (created at once; one answer is held)
    notes: list[str] = field(default_factory=list)


def head_of_line(root: Path, hold: float) -> HolResult:
    """A's first leg's answer held; then two other entries fill beside it: B1 a limit entry
    resting beforehand, filled by a price move 1 s after A's fill (its fill does not depend on
    the daemon), and B2 a market entry handed to the daemon 1.5 s after A's fill (the daemon
    must send it, so a blocked daemon delays its fill, not only its legs)."""
    spec = f"slow_response:algoOrder@POST#1:{hold:g}"
    with world(root, "head-of-line", faults=[spec]) as w:
        [b1] = enter_all(w, [Ask("SOLUSDT", "1", Decimal(170), Decimal(190), Decimal(179))])
        wait_for(lambda: any(o["clientOrderId"] == f"{b1}-e" for o in w.state_view()["openOrders"]),
                 "B1 (limit) resting on the venue", 20)  # fmt: skip
        [a] = enter_all(w, [Ask("BTCUSDT", "0.002", Decimal(92000), Decimal(102000))])
        wait_for(lambda: spec not in w.admin("GET", "/paper/faults")["faults"],
                 "A's first leg to reach the venue (the hold fired)", 20)  # fmt: skip
        a_fill = timings_fill(w, "BTCUSDT", a)
        time.sleep(max(0.0, (a_fill + 1000 - wall_ms() - STEP_MS) / 1000))
        move_and_step(w, "SOLUSDT", Decimal(178))  # B1 fills at the next step
        time.sleep(max(0.0, (a_fill + 1500 - wall_ms()) / 1000))
        called = wall_ms()  # Client.enter: checks (a few REST reads), then the entry is the daemon's
        [b2] = enter_all(w, [Ask("ETHUSDT", "0.010", Decimal(3300), Decimal(3700))])

        def both_legs() -> bool:
            ids = [x["clientAlgoId"] for x in w.state_view()["openAlgoOrders"]]
            return all(any(c.startswith(f"{pid}-{leg}") for c in ids) for pid in (b1, b2) for leg in ("sl", "tp"))

        wait_for(both_legs, "both legs of B1 and B2 on the venue", hold + 20, every=0.05)
        t1 = timings(w, "SOLUSDT", [b1])[b1]
        t2 = timings(w, "ETHUSDT", [b2])[b2]
        ta = timings(w, "BTCUSDT", [a])[a]
        notes = log_notes(w)
    assert t1.latency_ms is not None
    assert t2.latency_ms is not None
    assert t2.both_ms is not None
    return HolResult(t1.latency_ms, t2.latency_ms, float(t2.both_ms - called), t2.fill_ms - ta.fill_ms,
                     ta.latency_ms, notes)


def timings_fill(w: World, symbol: str, pid: str) -> int:
    def filled() -> int | None:
        for o in w.orders(symbol):
            if o["clientOrderId"] == f"{pid}-e" and o["status"] == "FILLED":
                return int(o["updateTime"])
        return None

    return wait_for(filled, f"entry {pid} filled", 20)


# --- the report --------------------------------------------------------------------------------


@dataclass
class Run:
    bursts: list[BurstResult]
    hol: HolResult
    load: str  # the machine's load average before and after: other work on the cores is noise here


def one_run(root: Path, sizes: Sequence[int], rtt: float, hold: float) -> Run:
    before = os.getloadavg()[0]
    bursts = [burst(root, n, rtt) for n in sizes]
    hol = head_of_line(root, hold)
    return Run(bursts, hol, f"1-min load average {before:.2f} before, {os.getloadavg()[0]:.2f} after")


def figures(run: Run) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in run.bursts:
        out[f"burst {b.n}: p50"] = nearest_rank(b.latencies, 50)
        out[f"burst {b.n}: p99"] = nearest_rank(b.latencies, 99)
        out[f"burst {b.n}: max"] = max(b.latencies)
    out["head of line: B limit"] = run.hol.limit_ms
    out["head of line: B market"] = run.hol.market_ms
    out["  B market enter->legs"] = run.hol.market_called_ms
    return out


def print_run(k: int, run: Run, rtt: float, hold: float) -> None:
    print(f"\nrun {k}: fill -> both legs on the venue (ms, the venue's own timestamps); {run.load}")
    print(f"  {'scenario':<38} {'n':>4} {'p50':>7} {'p99':>7} {'max':>7}   goal")
    for b in run.bursts:
        worst = max(b.latencies)
        goal = f"max <= {BURST_GOAL_MS:.0f} ms: {'met' if worst <= BURST_GOAL_MS else 'NOT met'}"
        p50, p99 = nearest_rank(b.latencies, 50), nearest_rank(b.latencies, 99)
        label = f"burst of {b.n}, RTT {rtt * 1000:g} ms"
        print(f"  {label:<38} {b.n:>4} {p50:>7.0f} {p99:>7.0f} {worst:>7.0f}   {goal if b.n == GOAL_BURST else '-'}")
    h = run.hol
    for kind, ms in (("limit", h.limit_ms), ("market", h.market_ms)):
        goal = f"<= {HOL_GOAL_MS:.0f} ms: {'met' if ms <= HOL_GOAL_MS else 'NOT met'}"
        label = f"head of line ({hold:g} s hold): B {kind}"
        print(f"  {label:<38} {1:>4} {'':>7} {'':>7} {ms:>7.0f}   {goal}")
    for b in run.bursts:
        first = f"p50 {nearest_rank(b.first_leg, 50):.0f} / max {max(b.first_leg):.0f} ms"
        print(f"  burst {b.n}: fill -> first leg {first}; {b.fill_stamps} distinct fill time(s); "
              f"the venue stepped the fill +{b.stepped_ms} ms after its stamp")
        lo, hi = b.legs_span
        rate = f"{LEGS * b.n / (hi - lo) * 1000:.0f} legs/s" if hi > lo else "-"
        print(f"    the venue received the burst's legs from +{lo} to +{hi} ms after the fill step ({rate} between)")
        print(f"    from the move until all PROTECTED in the journal: {b.cpu}")
        if b.late:
            print(f"    {len(b.late)} of {b.n} entries got both legs over {LEG_LATE_MS:.0f} ms after their fill, e.g.:")
        for note in b.late[:3] + b.notes[:8]:
            print(f"    {note}")
    a = "-" if h.a_ms is None else f"{h.a_ms:.0f} ms"
    print(f"  head of line: A's fill -> both of A's legs {a} (one answer held {hold:g} s)")
    print(f"  head of line: B market: Client.enter called -> both legs {h.market_called_ms:.0f} ms; "
          f"A's fill -> its fill {h.market_gap_ms} ms (called at 1,500 ms)")
    for note in h.notes[:8]:
        print(f"    {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100", help=f"burst sizes, comma-separated (at most {MAX_BURST})")
    ap.add_argument("--rtt", type=float, default=0.05, help="seconds every algo POST's answer is held (burst)")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds the first algo answer is held (head of line)")
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole set; min / median / max across runs")
    ap.add_argument("--dir", type=Path, default=None, help="where the temporary state dirs go")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if any(not 1 <= n <= MAX_BURST for n in sizes):
        raise SystemExit(f"--sizes: 1 to {MAX_BURST} each (the venue takes 200 conditional orders in all)")
    here = Path(bot_cli.__file__).resolve().parent
    limits = "order_limit_* = 100000" if HAS_ORDER_LIMITS else "no order_limit_* keys in this release (left out)"
    print(f"bot_cli from {here}; {os.cpu_count()} cores; paper: volatility 0, {limits}")
    root = Path(tempfile.mkdtemp(prefix="bench-burst-", dir=args.dir))
    runs: list[Run] = []
    try:
        for k in range(1, args.runs + 1):
            run = one_run(root / f"run-{k}", sizes, args.rtt, args.hold)
            runs.append(run)
            print_run(k, run, args.rtt, args.hold)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")
    if len(runs) > 1:
        print(f"\nacross {len(runs)} runs (ms): min / median / max")
        table = [figures(r) for r in runs]
        for name in table[0]:
            values = [t[name] for t in table]
            print(f"  {name:<24} {min(values):>8.0f} {statistics.median(values):>8.0f} {max(values):>8.0f}")


if __name__ == "__main__":
    main()
