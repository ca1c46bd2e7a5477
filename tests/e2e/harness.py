"""Process helpers for the end-to-end tests, and DESIGN.md's four invariants seen from outside.

A ``Cluster`` is one test's world, run as an operator would run it: a tmp dir with a bot.toml and
a state dir, the paper venue as its own process (``bot paper serve``, so it outlives every daemon
it serves) and ``bot run`` started, SIGKILLed and restarted as often as the test likes; ``bot
enter`` and ``bot recover`` run as subprocesses with the same environment.

Rules kept here so that no test has to remember them: every wait polls a named condition with a
bound (``wait_for``); every process runs in its own process group and the whole group is killed
when the test ends, pass or fail; on a failure the daemon logs, the venue log, the journal and the
venue's view are printed (pytest shows a fixture's teardown output only for a failed test).

``check_invariants`` reads the exchange only through the paper venue's own view (``GET
/paper/state`` for what is live now, its signed ``allOrders`` / ``allAlgoOrders`` for every order
ever accepted) and the state dir through ``PendingEntryStore``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET
from bot_cli.state_store import PendingEntryStore

T = TypeVar("T")

_NEXT_TO_PYTHON = Path(sys.executable).with_name("bot")  # .venv/bin/bot beside .venv/bin/python
BOT = str(_NEXT_TO_PYTHON) if _NEXT_TO_PYTHON.exists() else (shutil.which("bot") or "bot")
WAIT_S = 20.0  # the bound of every wait unless a test says otherwise
READY = "reconciled (stream connected)"  # `bot run` has reconciled and follows the user stream
ENTER_TIMEOUT_S = 30.0
FULL_LOOK_EVERY_S = 2.0  # the full look costs the venue 10 request weight a symbol

CONFIG = """\
[venue]
recv_window_ms = 2000
{venue_extra}
[paper]
port = {port}
volatility = 0.0
faults = {faults}

[protection]
not_found_margin_ms = 1000
recheck_ms = 300
"""

# Journal states that mean "still in the middle of something" (invariant 4).
UNSETTLED = frozenset({"REQUESTED", "SUBMITTING", "PROTECTING", "CLOSING"})
FIRED = frozenset({"TRIGGERING", "TRIGGERED", "FINISHED"})
OPEN_ORDER = frozenset({"NEW", "PARTIALLY_FILLED"})
_CLIENT_ID = re.compile(r"^(bc[0-9a-z]{6,20})-(e|sl|tp|x)(\d*)$")


# --- waiting ----------------------------------------------------------------------------------


def wait_for(
    condition: Callable[[], T], what: str, timeout: float = WAIT_S, every: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout``.

    A connection error or a half-written JSON document counts as "not yet" (the venue may be
    busy); an AssertionError raised by the condition fails at once.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError, ValueError) as err:
            value, last = None, err  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            why = f" (last error: {last!r})" if last is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{why}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes --------------------------------------------------------------------------------


class Proc:
    """A child process in its own process group, its stdout and stderr in a log file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path
    ) -> None:
        self.name, self.log_path = name, log
        with open(log, "ab") as out:  # the child has its own descriptor of it
            self.popen = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group (no handler runs, nothing is flushed), then reap it."""
        if self.popen.poll() is not None:
            return  # exited and reaped already: its group id may belong to someone else now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


# --- the venue's view -------------------------------------------------------------------------


class VenueBusy(Exception):
    """The venue refused a read (429 weight limit, 5xx): try again later."""


def signed_query(params: dict[str, Any]) -> str:
    payload = urlencode({**params, "timestamp": time.time_ns() // 1_000_000, "recvWindow": 10000})
    digest = hmac.new(PAPER_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={digest}"


def signed_get(http: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    answer = http.get(f"{path}?{signed_query(params)}", headers={"X-MBX-APIKEY": PAPER_API_KEY})
    if answer.status_code == 429 or answer.status_code >= 500:
        raise VenueBusy(f"GET {path} answered {answer.status_code}: {answer.text}")
    if answer.status_code != 200:
        raise AssertionError(f"GET {path} {params} answered {answer.status_code}: {answer.text}")
    return answer.json()


def parse_id(cid: str) -> tuple[str, str, int] | None:
    """``(pending id, leg, generation)`` of one of the bot's client ids; None if not the bot's."""
    m = _CLIENT_ID.fullmatch(cid or "")
    return None if m is None else (m.group(1), m.group(2), int(m.group(3) or 0))


@dataclass
class View:
    """One look at the world: the venue (live now, and with ``complete`` its whole history)
    and the state dir."""

    state: dict[str, Any]
    orders: dict[int, dict[str, Any]]  # regular orders the venue accepted, by orderId
    algos: dict[int, dict[str, Any]]  # algo orders, by algoId
    journal: dict[str, dict[str, Any]]  # live journal records by pending id
    archive: dict[str, dict[str, Any]]  # archive lines by pending id (the last one wins)
    archive_count: Counter[str] = field(default_factory=Counter)
    complete: bool = True  # False: only the live books and the 20 most recent finished orders

    @property
    def open_algos(self) -> list[dict[str, Any]]:
        return self.state["openAlgoOrders"]  # type: ignore[no-any-return]

    def position(self, symbol: str, position_side: str = "BOTH") -> Decimal:
        for p in self.state["positions"]:
            if p["symbol"] == symbol and p["positionSide"] == position_side:
                return Decimal(p["positionAmt"])
        return Decimal(0)

    def record(self, pid: str) -> dict[str, Any] | None:
        """The entry's record: the live one in the journal, else the archived one."""
        if pid in self.journal:
            return self.journal[pid]
        archived = self.archive.get(pid)
        return None if archived is None else archived["rec"]  # type: ignore[no-any-return]

    def entry_orders(self, pid: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["clientOrderId"] == f"{pid}-e"]

    def live(self, pid: str, leg: str) -> list[dict[str, Any]]:
        """Live (NEW) protective algo orders of one entry and leg ("sl" or "tp")."""
        out = []
        for a in self.open_algos:
            parsed = parse_id(a["clientAlgoId"])
            if parsed and parsed[:2] == (pid, leg) and a["algoStatus"] == "NEW":
                out.append(a)
        return out

    def fired(self, pid: str) -> bool:
        """A protection of this entry triggered, or the bot closed it at market."""
        for a in self.algos.values():
            parsed = parse_id(a["clientAlgoId"])
            if parsed and parsed[0] == pid and a["algoStatus"] in FIRED:
                return True
        return any(
            (p := parse_id(o["clientOrderId"])) is not None and p[0] == pid and p[1] == "x"
            for o in self.orders.values()
        )

    def picture(self) -> tuple[Any, ...]:
        """What must not change between two looks for the world to count as settled."""
        state = self.state
        orders = sorted(
            (o["clientOrderId"], o["status"], o["executedQty"]) for o in state["openOrders"]
        )
        algos = sorted((a["clientAlgoId"], a["algoStatus"], a["quantity"]) for a in self.open_algos)
        positions = sorted((p["symbol"], p["positionAmt"]) for p in state["positions"])
        journal = sorted((k, r["status"], r["filled_qty"]) for k, r in self.journal.items())
        return (tuple(orders), tuple(algos), tuple(positions), tuple(journal), len(self.archive))


def read_state_dir(state_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    store = PendingEntryStore(state_dir)
    try:
        return store.load_all(), store.archived()
    finally:
        store.close()


def look(
    state_url: str, state_dir: Path, symbols: Iterable[str] | None = None, *, history: bool = True
) -> View:
    """The venue's history (``history``: signed allOrders / allAlgoOrders per symbol, weight 10
    a symbol), then its live state (/paper/state, no weight), then the state dir: each later read
    is the fresher. ``symbols`` defaults to those of the state dir's records and the live books."""
    with httpx.Client(base_url=state_url, timeout=10) as http:
        orders: dict[int, dict[str, Any]] = {}
        algos: dict[int, dict[str, Any]] = {}
        if history:
            if symbols is None:
                journal, archived = read_state_dir(state_dir)
                live = http.get("/paper/state").raise_for_status().json()
                symbols = {r["symbol"] for r in journal.values()} | {
                    a["rec"]["symbol"] for a in archived
                }
                symbols |= {o["symbol"] for o in [*live["openOrders"], *live["openAlgoOrders"]]}
            for symbol in sorted(set(symbols)):
                for o in signed_get(http, "/fapi/v1/allOrders", {"symbol": symbol, "limit": 1000}):
                    orders[o["orderId"]] = o
                for a in signed_get(
                    http, "/fapi/v1/allAlgoOrders", {"symbol": symbol, "limit": 1000}
                ):
                    algos[a["algoId"]] = a
        state = http.get("/paper/state").raise_for_status().json()
    for o in [*state["recentOrders"], *state["openOrders"]]:  # late_visibility hides from allOrders
        orders[o["orderId"]] = o
    for a in [*state["recentAlgoOrders"], *state["openAlgoOrders"]]:
        algos[a["algoId"]] = a
    journal, archived = read_state_dir(state_dir)
    archive = {a["id"]: a for a in archived}
    count = Counter(a["id"] for a in archived)
    return View(state, orders, algos, journal, archive, count, complete=history)


# --- the four invariants ----------------------------------------------------------------------


def problems_in(
    view: View, created: Iterable[str] = (), *, attention_ok: bool = False
) -> list[str]:
    """Every broken invariant, in words (numbered as in DESIGN.md); empty when all four hold."""
    out: list[str] = []
    pids = set(created) | set(view.journal) | set(view.archive)
    for cid in [
        *(o["clientOrderId"] for o in view.orders.values()),
        *(a["clientAlgoId"] for a in view.algos.values()),
    ]:
        parsed = parse_id(cid)
        if parsed is not None:
            pids.add(parsed[0])

    # 2: no client id accepted twice (an entry sent twice, a protection placed twice)
    for cid, n in Counter(o["clientOrderId"] for o in view.orders.values()).items():
        if n > 1 and parse_id(cid) is not None:
            out.append(f"2: order {cid} accepted {n} times by the venue")
    for cid, n in Counter(a["clientAlgoId"] for a in view.algos.values()).items():
        if n > 1 and parse_id(cid) is not None:
            out.append(f"2: algo order {cid} accepted {n} times by the venue")

    for pid in sorted(pids):
        rec = view.record(pid)
        entries = view.entry_orders(pid)
        if rec is None:
            if pid in set(created) or entries or any(view.live(pid, leg) for leg in ("sl", "tp")):
                out.append(f"3: {pid} is neither in the journal nor in the archive")
            continue
        for n_leg in ("sl", "tp"):
            live = view.live(pid, n_leg)
            if len(live) > 1:
                ids = [a["clientAlgoId"] for a in live]
                out.append(f"2: {len(live)} live {n_leg.upper()} orders for {pid}: {ids}")
        if not entries:
            if not view.complete:
                continue  # an older finished entry order: only the history shows it
            if rec["status"] not in (
                "REQUESTED",
                "SUBMITTING",
                "NOT_PLACED",
                "CANCELED",
                "DROPPED",
            ):
                out.append(f"3: {pid} is {rec['status']} but the venue has no entry order {pid}-e")
            continue
        entry = entries[-1]
        if rec["status"] == "NOT_PLACED" and pid not in view.journal:
            out.append(
                f"3: {pid} archived NOT_PLACED but the venue accepted {pid}-e ({entry['status']})"
            )
        if entry["status"] in OPEN_ORDER and pid not in view.journal:
            out.append(f"3: entry {pid}-e is {entry['status']} on the venue but not in the journal")
        filled = sum((Decimal(o["executedQty"]) for o in entries), Decimal(0))
        if rec["status"] == "CANCELED" and pid not in view.journal and filled > 0:
            out.append(f"3: {pid} archived CANCELED (no fill) but the venue filled {filled}")
        held = view.position(entry["symbol"], entry["positionSide"])
        if view.fired(pid):
            continue  # a stop or take-profit did its job (or the bot closed at market)
        legs = [("sl", "STOP_MARKET", rec["stop_loss"])]
        if rec.get("take_profit") is not None:
            legs.append(("tp", "TAKE_PROFIT_MARKET", rec["take_profit"]))
        exit_side = "SELL" if entry["side"] == "BUY" else "BUY"
        if filled > 0 and held != 0:
            for leg, kind, trigger in legs:
                live = view.live(pid, leg)
                if len(live) != 1:
                    out.append(
                        f"1: {pid} filled {filled} (position {held}) "
                        f"has {len(live)} live {leg.upper()}"
                    )
                    continue
                a = live[0]
                shape = (
                    a["orderType"],
                    Decimal(a["quantity"]),
                    Decimal(a["triggerPrice"]),
                    a["side"],
                )
                if shape != (kind, filled, Decimal(trigger), exit_side):
                    out.append(
                        f"1: {pid} filled {filled}: live {a['clientAlgoId']} is {shape}, "
                        f"expected {(kind, filled, Decimal(trigger), exit_side)}"
                    )
        elif filled == 0:
            for leg in ("sl", "tp"):
                for a in view.live(pid, leg):
                    out.append(f"1: {a['clientAlgoId']} is live although {pid}-e never filled")

    # 3: every entry the test created is in the journal or the archive
    for pid in created:
        if pid not in view.journal and pid not in view.archive:
            out.append(f"3: created entry {pid} is neither in the journal nor in the archive")
    for pid, n in view.archive_count.items():
        if n > 1:
            out.append(f"3: {pid} archived {n} times")

    # 4: the journal converged
    for pid, rec in sorted(view.journal.items()):
        if rec["status"] in UNSETTLED:
            out.append(f"4: {pid} is still {rec['status']} ({rec.get('reason') or 'no reason'})")
        elif rec["status"] == "NEEDS_ATTENTION" and not attention_ok:
            out.append(f"4: {pid} NEEDS_ATTENTION: {rec.get('reason')}")
    return out


def check_invariants(
    state_url: str,
    state_dir: Path,
    created: Iterable[str] = (),
    *,
    attention_ok: bool = False,
    symbols: Iterable[str] | None = None,
) -> list[str]:
    """One look; every broken invariant in words."""
    return problems_in(look(state_url, state_dir, symbols), created, attention_ok=attention_ok)


def assert_invariants(
    state_url: str,
    state_dir: Path,
    created: Iterable[str] = (),
    *,
    attention_ok: bool = False,
    symbols: Iterable[str] | None = None,
    timeout: float = WAIT_S,
    settle_s: float = 1.0,
) -> View:
    """Wait (bounded) until the world settles with the four invariants holding, then check them
    once more over the venue's whole history; fail with the problems of the last look.

    Settled = looks at least ``settle_s`` apart see the same live books, positions and journal
    and no problem. The polling looks cost the venue no request weight (the daemon shares it);
    the full look (history) is taken at most every ``FULL_LOOK_EVERY_S``. Returns the full view.
    """
    created = list(created)
    deadline = time.monotonic() + timeout
    good: tuple[float, tuple[Any, ...]] | None = None  # (since, picture) of the settled world
    full_at = 0.0
    problems: list[str] = []
    while True:
        now = time.monotonic()
        try:
            view = look(state_url, state_dir, symbols, history=False)
            problems = problems_in(view, created, attention_ok=attention_ok)
            if problems or good is None or good[1] != view.picture():
                good = None if problems else (now, view.picture())
            elif now - good[0] >= settle_s and now >= full_at:
                full_at = now + FULL_LOOK_EVERY_S
                full = look(state_url, state_dir, symbols, history=True)
                problems = problems_in(full, created, attention_ok=attention_ok)
                if not problems and full.picture() == good[1]:
                    return full
                good = None
        except (httpx.HTTPError, OSError, ValueError, VenueBusy) as err:
            problems = [f"(the venue did not answer: {err!r})"]
        if now >= deadline:
            if not problems:
                problems = ["4: the world did not settle: no two looks agreed"]
            listing = "\n  ".join(problems)
            raise AssertionError(
                f"invariants do not hold after {timeout:g}s ({len(created)} entries created):"
                f"\n  {listing}"
            )
        time.sleep(0.2)


# --- one test's world -------------------------------------------------------------------------


class Cluster:
    """The tmp dir, the venue process, the daemon processes and the entries a test created."""

    def __init__(
        self, root: Path, *, paper_faults: Iterable[str] = (), position_mode: str = "auto"
    ) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.config = root / "bot.toml"
        self.port = free_port()
        venue_extra = "" if position_mode == "auto" else f'position_mode = "{position_mode}"'
        self.config.write_text(CONFIG.format(
            port=self.port, faults=json.dumps(list(paper_faults)), venue_extra=venue_extra
        ), encoding="utf-8")  # fmt: skip
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("BOT_API_KEY", "BOT_API_SECRET")
        }
        self.env.update(
            BOT_CONFIG=str(self.config), BOT_STATE_DIR=str(self.state_dir), PYTHONUNBUFFERED="1"
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.venue: Proc | None = None
        self.daemon: Proc | None = None
        self.runs: list[Proc] = []
        self.others: list[Proc] = []  # other `bot` commands started with spawn_cli
        self.kills = 0
        self.created: dict[str, dict[str, Any]] = {}  # pending id -> `bot enter --json`'s answer
        self._async_enters: list[tuple[subprocess.Popen[str], Path]] = []
        self._enters_started = 0

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> Proc:
        return Proc(name, [BOT, *args], self.env, self.root, self.root / f"{name}.log")

    def spawn_cli(self, name: str, *args: str) -> Proc:
        """Any `bot` command as a background process (killed with the cluster, logged in the
        failure report), e.g. a `bot recover --yes` or `bot enter` to SIGKILL mid-way."""
        proc = self._spawn(name, list(args))
        self.others.append(proc)
        return proc

    def start_venue(self) -> None:
        """`bot paper serve`, ready when GET /fapi/v1/time answers."""
        venue = self.venue = self._spawn("paper", ["paper", "serve"])

        def answers() -> bool:
            if not venue.alive:
                raise AssertionError(
                    f"`bot paper serve` exited ({venue.popen.returncode}):\n{venue.tail()}"
                )
            return self.http.get("/fapi/v1/time").status_code == 200

        wait_for(answers, f"the paper venue to answer GET /fapi/v1/time on port {self.port}")

    def start_daemon(self, timeout: float = WAIT_S) -> Proc:
        """`bot run --no-live --log-format json`, ready when it logs READY."""
        if self.daemon is not None and self.daemon.alive:
            raise AssertionError("start_daemon: a daemon is already running")
        proc = self._spawn(
            f"run-{len(self.runs) + 1}", ["run", "--no-live", "--log-format", "json"]
        )
        self.daemon = proc
        self.runs.append(proc)

        def ready() -> bool:
            if READY in proc.log():
                return True
            if not proc.alive:
                raise AssertionError(
                    f"`bot run` ({proc.name}) exited with {proc.popen.returncode} before logging "
                    f"{READY!r}:\n{proc.tail()}"
                )
            return False

        wait_for(ready, f"`bot run` ({proc.name}) to log {READY!r}", timeout)
        return proc

    def kill_daemon(self) -> None:
        """SIGKILL the running daemon."""
        if self.daemon is None or not self.daemon.alive:
            raise AssertionError("kill_daemon: no daemon is running")
        self.daemon.kill9()
        self.kills += 1

    def daemon_alive(self) -> bool:
        return self.daemon is not None and self.daemon.alive

    def close(self) -> None:
        """Kill everything this cluster started (process groups), whatever state it is in."""
        for popen, _ in self._async_enters:
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(10)
        for proc in [*self.others, *self.runs, *([self.venue] if self.venue else [])]:
            proc.kill9()  # also reaps one that exited on its own
        self.http.close()

    # -- commands ---------------------------------------------------------------------------

    def _enter_argv(
        self, symbol: str, side: str, qty: str, price: str | None, sl: str, tp: str | None
    ) -> list[str]:
        argv = [BOT, "enter", symbol, side, qty, "--sl", sl, "--json"]
        argv += ["--price", price] if price is not None else []
        argv += ["--tp", tp] if tp is not None else []
        return argv

    def _answer(self, rc: int, stdout: str, stderr: str, argv: list[str]) -> dict[str, Any]:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(
                f"`{' '.join(argv[1:])}` printed no JSON (exit {rc})"
                f"\nstdout: {stdout}\nstderr: {stderr}"
            )
        answer: dict[str, Any] = json.loads(lines[-1])
        answer["exit_code"], answer["stderr"] = rc, stderr
        self.created[answer["id"]] = answer
        return answer

    def enter(
        self,
        symbol: str,
        side: str,
        qty: str,
        *,
        sl: str,
        price: str | None = None,
        tp: str | None = None,
    ) -> dict[str, Any]:
        """`bot enter ... --json`; the answer (id, state, ...) plus exit_code and stderr."""
        argv = self._enter_argv(symbol, side, qty, price, sl, tp)
        done = subprocess.run(
            argv, env=self.env, cwd=self.root, capture_output=True, text=True,
            timeout=ENTER_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        return self._answer(done.returncode, done.stdout, done.stderr, argv)

    def enter_async(
        self,
        symbol: str,
        side: str,
        qty: str,
        *,
        sl: str,
        price: str | None = None,
        tp: str | None = None,
    ) -> None:
        """Start `bot enter` and return at once; ``collect_enters`` reads its answer later."""
        argv = self._enter_argv(symbol, side, qty, price, sl, tp)
        self._enters_started += 1
        out = self.root / f"enter-{self._enters_started}.out"
        with open(out, "w") as fh:
            popen = subprocess.Popen(
                argv, env=self.env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )  # fmt: skip
        self._async_enters.append((popen, out))

    def collect_enters(self, timeout: float = ENTER_TIMEOUT_S) -> list[dict[str, Any]]:
        """Wait (bounded) for every `bot enter` started by ``enter_async``; their answers."""
        answers = []
        pending, self._async_enters = self._async_enters, []
        for popen, out in pending:
            try:
                rc = popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._async_enters.append((popen, out))
                raise AssertionError(
                    f"`bot enter` (pid {popen.pid}) did not finish in {timeout:g}s"
                ) from None
            text = out.read_text(encoding="utf-8", errors="replace")
            answers.append(self._answer(rc, text, "", [BOT, "enter", f"(see {out.name})"]))
        return answers

    def reap_enters(self) -> list[dict[str, Any]]:
        """The answers of the ``enter_async`` commands that have finished (does not wait)."""
        done = [(popen, out) for popen, out in self._async_enters if popen.poll() is not None]
        running = [(popen, out) for popen, out in self._async_enters if popen.poll() is None]
        self._async_enters = done
        try:
            return self.collect_enters()
        finally:
            self._async_enters = running + self._async_enters

    def enters_running(self) -> int:
        return sum(popen.poll() is None for popen, _ in self._async_enters)

    def recover(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BOT, "recover", *args], env=self.env, cwd=self.root, capture_output=True, text=True,
            timeout=ENTER_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip

    # -- the venue's admin API --------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get("/paper/state").raise_for_status().json()
        return state

    def set_price(self, symbol: str, price: str | Decimal) -> None:
        answer = self.http.post("/paper/price", json={"symbol": symbol, "price": str(price)})
        if answer.status_code != 200:
            raise AssertionError(
                f"POST /paper/price {symbol} {price}: {answer.status_code} {answer.text}"
            )

    def add_faults(self, *specs: str) -> list[str]:
        answer = self.http.post("/paper/faults", json={"add": list(specs)})
        if answer.status_code != 200:
            raise AssertionError(f"POST /paper/faults {specs}: {answer.status_code} {answer.text}")
        return answer.json()["faults"]  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        self.http.post("/paper/faults", json={"clear": True}).raise_for_status()

    def faults(self) -> list[str]:
        specs: list[str] = self.http.get("/paper/faults").raise_for_status().json()["faults"]
        return specs

    def wait_fault_fired(self, spec: str, timeout: float = WAIT_S) -> None:
        """A ``#N`` / ``:once`` switch leaves the list when it fires."""
        wait_for(lambda: spec not in self.faults(), f"paper fault {spec!r} to fire", timeout)

    def used_weight(self) -> int:
        """The request weight the venue counted this minute (shared by every process)."""
        return int(self.http.get("/fapi/v1/time").headers["X-MBX-USED-WEIGHT-1M"])

    # -- what the venue says about one entry ------------------------------------------------

    def entry_order(self, pid: str, state: dict[str, Any] | None = None) -> dict[str, Any] | None:
        state = state or self.state()
        for o in [*state["openOrders"], *state["recentOrders"]]:
            if o["clientOrderId"] == f"{pid}-e":
                return o  # type: ignore[no-any-return]
        return None

    def filled(self, pid: str, state: dict[str, Any] | None = None) -> Decimal:
        order = self.entry_order(pid, state)
        return Decimal(order["executedQty"]) if order else Decimal(0)

    def live_algos(self, pid: str, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        state = state or self.state()
        return [
            a for a in state["openAlgoOrders"]
            if a["clientAlgoId"].startswith(f"{pid}-") and a["algoStatus"] == "NEW"
        ]  # fmt: skip

    def wait_protected(
        self, pid: str, qty: str | Decimal, legs: int = 2, timeout: float = WAIT_S
    ) -> None:
        """Wait until the entry's live protective orders on the venue are ``legs`` orders, each
        for ``qty``."""
        want = Decimal(qty)

        def done() -> bool:
            live = self.live_algos(pid)
            return len(live) == legs and all(Decimal(a["quantity"]) == want for a in live)

        wait_for(done, f"{legs} live protective orders of {pid} for {want}", timeout)

    def pulse_fill(
        self, symbol: str, cross: str, back: str, pid: str, timeout: float = WAIT_S
    ) -> Decimal:
        """A short crossing: hold the price at ``cross`` until the entry's next fill, then move it
        to ``back`` at once, so one 100 ms step (one chunk of the order) fills; the new filled
        quantity."""
        before = self.filled(pid)
        self.set_price(symbol, cross)
        try:
            return wait_for(
                lambda: (q := self.filled(pid)) > before and q,
                f"a fill of {pid} at {cross}",
                timeout,
                every=0.005,
            )
        finally:
            self.set_price(symbol, back)

    # -- looking at the state dir -----------------------------------------------------------

    def status_of(self, pid: str) -> str | None:
        journal, archived = read_state_dir(self.state_dir)
        if pid in journal:
            return str(journal[pid]["status"])
        last = [a for a in archived if a["id"] == pid]
        return str(last[-1]["rec"]["status"]) if last else None

    def assert_invariants(self, *, attention_ok: bool = False, timeout: float = WAIT_S,
                          symbols: Iterable[str] | None = None) -> View:  # fmt: skip
        return assert_invariants(
            self.url, self.state_dir, self.created, attention_ok=attention_ok, timeout=timeout,
            symbols=symbols,
        )  # fmt: skip

    # -- on failure -------------------------------------------------------------------------

    def report(self) -> str:
        """Everything useful after a failure; never raises."""
        parts = [f"=== e2e cluster in {self.root} (port {self.port}, kills {self.kills}) ==="]
        for proc in [*self.others[-3:], *self.runs[-4:]]:
            parts.append(
                f"--- {proc.name}.log (pid {proc.pid}, last 80 lines) ---\n{proc.tail(80)}"
            )
        if self.venue is not None:
            lines = self.venue.log().splitlines()
            noise = [line for line in lines if '" 200 OK' in line]  # the access log of reads
            kept = [line for line in lines if '" 200 OK' not in line]
            parts.append(f"--- paper.log (all but {len(noise)} OK access lines, last 40) ---")
            parts.append("\n".join(kept[-40:]))
        try:
            journal, archived = read_state_dir(self.state_dir)
            rows = [
                f"{k} {r['status']} filled {r['filled_qty']} {r.get('reason', '')}"
                for k, r in journal.items()
            ]
            parts.append("--- journal ---\n" + "\n".join(rows))
            rows = [f"{a['id']} {a['rec']['status']} {a['reason']}" for a in archived[-30:]]
            parts.append("--- archive (last 30) ---\n" + "\n".join(rows))
            for k, r in list(journal.items())[:10]:
                notes = "\n    ".join(f"{at} {text}" for at, text in r.get("history", []))
                parts.append(f"--- history of {k} ---\n    {notes}")
        except Exception as err:  # noqa: BLE001 - a report must not fail
            parts.append(f"(state dir unreadable: {err!r})")
        try:
            state = self.state()
            slim = {k: state[k] for k in ("prices", "faults", "streams")}
            slim["openOrders"] = [
                (o["clientOrderId"], o["status"], o["executedQty"]) for o in state["openOrders"]
            ]
            slim["openAlgoOrders"] = [
                (a["clientAlgoId"], a["algoStatus"], a["quantity"]) for a in state["openAlgoOrders"]
            ]
            slim["positions"] = [(p["symbol"], p["positionAmt"]) for p in state["positions"]]
            parts.append("--- venue ---\n" + json.dumps(slim, indent=1))
        except Exception as err:  # noqa: BLE001
            parts.append(f"(venue unreachable: {err!r})")
        return "\n".join(parts)


@contextlib.contextmanager
def cluster_at(root: Path, **kwargs: Any) -> Iterator[Cluster]:
    """A cluster with its venue started; everything killed on the way out, the report printed
    (pytest shows it only when the test failed)."""
    c = Cluster(root, **kwargs)
    try:
        c.start_venue()
        yield c
    finally:
        with contextlib.suppress(Exception):
            print(c.report())
        c.close()
