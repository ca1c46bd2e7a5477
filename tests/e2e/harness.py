"""Process helpers for the end-to-end tests, and DESIGN.md's invariants seen from outside.

A ``Cluster`` is one test's world, run as an operator would run it: a tmp dir with a bot.toml and
a state dir, the paper venue as its own process (``bot paper serve``, so it outlives every daemon
it serves) and ``bot run`` started, SIGKILLed and restarted as often as the test likes; ``bot
enter`` and ``bot recover`` run as subprocesses with the same environment.

Rules kept here so that no test has to remember them: every wait polls a named condition with a
bound (``wait_for``); every process runs in its own process group and the whole group is killed
when the test ends, pass or fail; on a failure the daemon logs, the venue log, the journal and the
venue's view are printed (pytest shows a fixture's teardown output only for a failed test).

``check_invariants`` / ``assert_invariants`` read the exchange only through the paper venue's own
view (``GET /paper/state`` for what is live now; its signed ``userTrades``, ``allOrders``,
``allAlgoOrders`` and ``positionRisk`` for everything that ever happened) and the state dir
through ``PendingEntryStore``. Their venue-side part, ``share_problems``, works out each entry's
share of the position from the venue's history alone, by client id (``<id>-e`` the entry,
``<id>-slN`` / ``<id>-tpN`` its legs and their child orders, ``<id>-xN`` its closes): the state
dir only says which entries exist, which are archived and what the operator asked for. Every e2e
test ends with it.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
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
# ... also when its first connection attempt failed (a 429 on listenKey): then it says "reconnected"
READY_LINE = re.compile(r"reconciled \(stream (?:re)?connected\)")
ENTER_TIMEOUT_S = 30.0
FULL_LOOK_EVERY_S = 2.0  # the full look costs the venue 15 request weight a symbol, plus 5
PAGE = 1000  # rows per page of a history endpoint (the most Binance gives)

CONFIG = """\
[venue]
recv_window_ms = 2000
{venue_extra}
[paper]
port = {port}
volatility = {volatility}
faults = {faults}
{paper_extra}
[protection]
not_found_margin_ms = 1000
recheck_ms = 300
stacking = {stacking}
"""

# Journal states that mean "still in the middle of something" (invariant 4).
# EXITING: a leg fired or the share is flat, the rest is being cancelled: it must end archived.
UNSETTLED = frozenset({"REQUESTED", "SUBMITTING", "PROTECTING", "CLOSING", "EXITING"})
FIRED = frozenset({"TRIGGERING", "TRIGGERED", "FINISHED"})
OPEN_ORDER = frozenset({"NEW", "PARTIALLY_FILLED"})
_CLIENT_ID = re.compile(r"^(bc[0-9a-z]{6,20})-(e|sl|tp|tr|x)(\d*)(-\d{1,2})?$")


# --- waiting ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], T], what: str, timeout: float = WAIT_S, every: float = 0.05) -> T:
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
            value, last = None, err
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

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
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


def signed_send(http: httpx.Client, method: str, path: str, params: dict[str, Any]) -> Any:
    """A signed POST/DELETE as another client of the account would send it (an operator's hand
    on the exchange's own UI); the JSON answer, or AssertionError."""
    answer = http.request(method, f"{path}?{signed_query(params)}", headers={"X-MBX-APIKEY": PAPER_API_KEY})
    if answer.status_code != 200:
        raise AssertionError(f"{method} {path} {params}: {answer.status_code} {answer.text}")
    return answer.json()


def signed_pages(http: httpx.Client, path: str, params: dict[str, Any], cursor: str, key: str) -> list[dict[str, Any]]:
    """Every row of a history endpoint, oldest first: pages of 1000 from ``cursor`` = 0 (with a
    cursor the venue answers from that id upwards, whatever its age)."""
    rows: list[dict[str, Any]] = []
    start = 0
    while True:
        page = signed_get(http, path, {**params, cursor: start, "limit": PAGE})
        rows += page
        if len(page) < PAGE:
            return rows
        start = int(page[-1][key]) + 1


def parse_id(cid: str) -> tuple[str, str, int] | None:
    """``(pending id, leg, generation)`` of one of the bot's client ids; None if not the bot's. A
    take-profit level's leg is named with its level (``tp-2``)."""
    m = _CLIENT_ID.fullmatch(cid or "")
    return None if m is None else (m.group(1), m.group(2) + (m.group(4) or ""), int(m.group(3) or 0))


@dataclass
class View:
    """One look at the world: the venue (live now, and with ``complete`` its whole history:
    every order, algo order and trade of the symbols looked at, and the positions as
    positionRisk reports them) and the state dir."""

    state: dict[str, Any]
    orders: dict[int, dict[str, Any]]  # regular orders the venue accepted, by orderId
    algos: dict[int, dict[str, Any]]  # algo orders, by algoId
    journal: dict[str, dict[str, Any]]  # live journal records by pending id
    archive: dict[str, dict[str, Any]]  # archive lines by pending id (the last one wins)
    archive_count: Counter[str] = field(default_factory=Counter)
    complete: bool = True  # False: only the live books and the 20 most recent finished orders
    trades: list[dict[str, Any]] = field(default_factory=list)  # userTrades (complete only)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # positionRisk

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
        return None if archived is None else archived["rec"]

    def archived(self, pid: str) -> bool:
        return pid in self.archive and pid not in self.journal

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

    def live_ids(self, pid: str) -> list[str]:
        """Client ids of every live order of one entry: its open entry order, its live legs,
        an open close order."""
        ids = [
            o["clientOrderId"] for o in self.state["openOrders"]
            if (p := parse_id(o["clientOrderId"])) is not None and p[0] == pid
        ]  # fmt: skip
        ids += [
            a["clientAlgoId"] for a in self.open_algos
            if (p := parse_id(a["clientAlgoId"])) is not None and p[0] == pid
        ]  # fmt: skip
        return sorted(ids)

    def algos_of(self, pid: str) -> list[dict[str, Any]]:
        """Every algo order of one entry the venue accepted, oldest first."""
        return sorted(
            (a for a in self.algos.values() if (p := parse_id(a["clientAlgoId"])) and p[0] == pid),
            key=lambda a: a["algoId"],
        )

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
        orders = sorted((o["clientOrderId"], o["status"], o["executedQty"]) for o in state["openOrders"])
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


def look(state_url: str, state_dir: Path, symbols: Iterable[str] | None = None, *, history: bool = True) -> View:
    """The venue's history (``history``: signed userTrades, allOrders, allAlgoOrders per symbol,
    weight 15 a symbol, then positionRisk, weight 5), then its live state (/paper/state, no
    weight), then the state dir: each later read is the fresher, and every trade read has its
    order in the orders read after it. ``symbols`` defaults to those of the state dir's records
    and the live books."""
    with httpx.Client(base_url=state_url, timeout=10) as http:
        orders: dict[int, dict[str, Any]] = {}
        algos: dict[int, dict[str, Any]] = {}
        trades: list[dict[str, Any]] = []
        positions: dict[tuple[str, str], Decimal] = {}
        if history:
            if symbols is None:
                journal, archived = read_state_dir(state_dir)
                live = http.get("/paper/state").raise_for_status().json()
                symbols = {r["symbol"] for r in journal.values()} | {a["rec"]["symbol"] for a in archived}
                symbols |= {o["symbol"] for o in [*live["openOrders"], *live["openAlgoOrders"]]}
            symbols = sorted(set(symbols))
            for symbol in symbols:
                trades += signed_pages(http, "/fapi/v1/userTrades", {"symbol": symbol}, "fromId", "id")
            for symbol in symbols:
                for o in signed_pages(http, "/fapi/v1/allOrders", {"symbol": symbol}, "orderId", "orderId"):
                    orders[o["orderId"]] = o
                for a in signed_pages(http, "/fapi/v1/allAlgoOrders", {"symbol": symbol}, "algoId", "algoId"):
                    algos[a["algoId"]] = a
            for p in signed_get(http, "/fapi/v3/positionRisk", {}):
                positions[(p["symbol"], p["positionSide"])] = Decimal(p["positionAmt"])
        state = http.get("/paper/state").raise_for_status().json()
    for o in [*state["recentOrders"], *state["openOrders"]]:  # late_visibility hides from allOrders
        orders[o["orderId"]] = o
    for a in [*state["recentAlgoOrders"], *state["openAlgoOrders"]]:
        algos[a["algoId"]] = a
    journal, archived = read_state_dir(state_dir)
    archive = {a["id"]: a for a in archived}
    count = Counter(a["id"] for a in archived)
    return View(
        state, orders, algos, journal, archive, count, complete=history, trades=trades,
        positions=positions,
    )  # fmt: skip


# --- each entry's share, as the venue's history tells it --------------------------------------


@dataclass
class Share:
    """One entry as the venue's own records tell it, by client id alone: what its entry order
    filled (its userTrades), what its own legs (``<id>-slN``/``-tpN``, the child order of a
    fired algo order carries its client id) and closes (``<id>-xN``) executed, and which of its
    orders are live now. ``share`` is what the entry itself still holds of the position."""

    pid: str
    symbol: str = ""
    side: str = ""  # of the entry order, BUY or SELL ("" if the venue never saw it)
    position_side: str = "BOTH"
    filled: Decimal = Decimal(0)
    exits: dict[str, Decimal] = field(default_factory=dict)  # leg/close client id -> executed
    entry_open: bool = False
    live: list[str] = field(default_factory=list)  # client ids of its live orders
    live_legs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "sl"/"tp" -> algos

    @property
    def exited(self) -> Decimal:
        return sum(self.exits.values(), Decimal(0))

    @property
    def share(self) -> Decimal:
        return self.filled - self.exited

    @property
    def signed(self) -> Decimal:
        """The share as a contribution to a one-way position (negative for a sell)."""
        return self.share if self.side == "BUY" else -self.share

    @property
    def flat(self) -> bool:
        """It filled, and its own legs and closes took all of it away again."""
        return self.filled > 0 and self.share <= 0

    def open_qty(self, leg: str) -> Decimal:
        """What its live legs of a kind add up to (take-profit levels "tp-N" count as "tp")."""
        return sum((Decimal(a["quantity"]) for a in self.of_kind(leg)), Decimal(0))

    def of_kind(self, leg: str) -> list[dict[str, Any]]:
        return [a for name, algos in self.live_legs.items() if name.partition("-")[0] == leg for a in algos]


@dataclass
class Ledger:
    """Every bot entry's share on the symbols looked at, and what the venue's history could not
    attribute (a trade whose order is not in allOrders yet: read lag, look again)."""

    shares: dict[str, Share]
    unattributed: list[str]
    foreign: set[tuple[str, str]]  # (symbol, position side) where something else traded too


def ledger(view: View) -> Ledger:
    """Each entry's share from the venue's history (``view`` must be ``complete``)."""
    shares: dict[str, Share] = {}

    def of(pid: str) -> Share:
        return shares.setdefault(pid, Share(pid))

    for o in view.orders.values():
        parsed = parse_id(o["clientOrderId"])
        if parsed is not None and parsed[1] == "e":
            s = of(parsed[0])
            s.symbol, s.side, s.position_side = o["symbol"], o["side"], o["positionSide"]
            s.entry_open = s.entry_open or o["status"] in OPEN_ORDER
    for a in view.algos.values():
        parsed = parse_id(a["clientAlgoId"])
        if parsed is not None and not of(parsed[0]).symbol:
            s = shares[parsed[0]]
            s.symbol, s.position_side = a["symbol"], a["positionSide"]
            s.side = "BUY" if a["side"] == "SELL" else "SELL"  # the legs close the entry's side
    for o in view.state["openOrders"]:
        parsed = parse_id(o["clientOrderId"])
        if parsed is not None:
            of(parsed[0]).live.append(o["clientOrderId"])
    for a in view.open_algos:
        parsed = parse_id(a["clientAlgoId"])
        if parsed is not None and a["algoStatus"] == "NEW":
            s = of(parsed[0])
            s.live.append(a["clientAlgoId"])
            s.live_legs.setdefault(parsed[1], []).append(a)
    book = Ledger(shares, [], set())
    for t in view.trades:
        _attribute(book, view, t, of)
    return book


def _attribute(book: Ledger, view: View, trade: dict[str, Any], of: Callable[[str], Share]) -> None:
    """Count one trade to its entry: a fill of its entry order, or an execution of its own leg or
    close; a trade of an order the bot did not send marks its symbol foreign."""
    order = view.orders.get(trade["orderId"])
    if order is None:
        book.unattributed.append(f"trade {trade['id']} of order {trade['orderId']} ({trade['symbol']})")
        return
    parsed = parse_id(order["clientOrderId"])
    if parsed is None:
        book.foreign.add((trade["symbol"], trade["positionSide"]))
        return
    s, qty = of(parsed[0]), Decimal(trade["qty"])
    if parsed[1] == "e":
        s.filled += qty
    else:
        cid = order["clientOrderId"]
        s.exits[cid] = s.exits.get(cid, Decimal(0)) + qty


def share_problems(view: View, *, attention_ok: bool = False) -> list[str]:
    """The venue-side checker: every broken rule about the entries' shares, in words.

    Computed from the venue's history alone (userTrades, allOrders, allAlgoOrders by client id,
    positionRisk, the live books); the state dir only says which entries exist, which are
    archived, and what the operator asked for (its stop-loss and take-profit prices).

    - 1: per symbol and position side, the open SL quantity, and the open TP quantity, each
      equal the sum of the open entries' shares (TP: of those that asked for one); each entry
      with a share has exactly one live SL (and TP) for exactly its share, at its price;
    - share: the position equals the sum of the entries' shares where only bot entries trade;
    - 5: no order (entry, SL, TP, close) of a flat entry is live;
    - 3: an archived entry has no live order and no share left;
    - 4: a journal entry that is flat with nothing live has left the journal;
    - 7: no entry's own legs and closes executed more than that entry filled.
    (2, no order sent twice, is checked by ``problems_in`` over the same history.)

    Where something other than the bot's orders traded a symbol (a position closed by hand), the
    venue cannot say whose share that took: there only 7 and "no live order of an archived or
    flat entry" are checked; the test says what else it expects.
    """
    if not view.complete:
        return []
    book = ledger(view)
    out = [f"(history incomplete: {u} not in allOrders yet)" for u in book.unattributed]
    for _pid, s in sorted(book.shares.items()):
        out += _entry_problems(view, s, foreign=(s.symbol, s.position_side) in book.foreign)
        if s.share > 0 and (s.symbol, s.position_side) not in book.foreign:
            out += _cover_problems(view, s, attention_ok=attention_ok)
    groups: dict[tuple[str, str], list[Share]] = {}
    for s in book.shares.values():
        if s.symbol and (s.symbol, s.position_side) not in book.foreign:
            groups.setdefault((s.symbol, s.position_side), []).append(s)
    for key, members in sorted(groups.items()):
        out += _symbol_problems(view, key, members, attention_ok=attention_ok)
    return out


def _entry_problems(view: View, s: Share, *, foreign: bool) -> list[str]:
    """7, 5, 3 and 4 for one entry."""
    out: list[str] = []
    rec = view.record(s.pid)
    status = rec["status"] if rec else "unknown"
    if s.exited > s.filled:
        detail = ", ".join(f"{cid} {q}" for cid, q in sorted(s.exits.items()))
        out.append(f"7: {s.pid}'s own legs and closes executed {s.exited} ({detail}) "
                   f"but it filled only {s.filled}")  # fmt: skip
    # A leg that fired on a part filled leaves the rest of the entry order working, as the operator
    # placed it: a later fill is protected like the first. Its legs and closes are orphans, though.
    resting = s.entry_open and status in ("OPEN", "PARTIALLY_FILLED") and s.pid in view.journal
    orphans = [x for x in s.live if not (resting and x == f"{s.pid}-e")]
    if s.flat and orphans:
        out.append(f"5: {s.pid} is flat (filled {s.filled}, its legs and closes executed "
                   f"{s.exited}) but {orphans} still live")  # fmt: skip
    elif s.filled == 0 and not s.entry_open and any(s.live_legs.values()):
        out.append(f"5: {s.pid} never filled and its entry is done, but {s.live} still live")
    if view.archived(s.pid):
        if s.live:
            out.append(f"3: {s.pid} archived ({status}) while {s.live} still live")
        if s.share > 0 and status != "DROPPED" and not foreign:
            out.append(f"3: {s.pid} archived ({status}) with its share {s.share} still open")
    elif s.pid in view.journal and s.flat and not s.live and status != "NEEDS_ATTENTION":
        out.append(f"4: {s.pid} is flat with nothing live but still in the journal ({status})")
    return out


def _cover_problems(view: View, s: Share, *, attention_ok: bool) -> list[str]:
    """1 for one entry that holds a share: live SL (and TP) legs for exactly its share, at the
    price the operator asked for, on the closing side: one leg, or (entries stacked on one
    position, exact legs) pieces that add up to the share."""
    rec = view.record(s.pid)
    if rec is None or (attention_ok and rec["status"] == "NEEDS_ATTENTION"):
        return []
    out: list[str] = []
    exit_side = "SELL" if s.side == "BUY" else "BUY"
    legs = [("sl", "STOP_MARKET", rec["stop_loss"])]
    if rec.get("take_profit") is not None:
        legs.append(("tp", "TAKE_PROFIT_MARKET", rec["take_profit"]))
    if rec.get("trail") is not None:
        legs.append(("tr", "TRAILING_STOP_MARKET", None))
    levels = [Decimal(price) for price, _ in rec.get("tp_levels", [])]
    for leg, kind, trigger in legs:
        live = s.of_kind(leg)  # take-profit levels add up to the share between them
        total = sum((Decimal(a["quantity"]) for a in live), Decimal(0))
        if total != s.share:
            out.append(f"1: {s.pid} holds {s.share} (filled {s.filled}, exited {s.exited}) "
                       f"with {len(live)} live {leg.upper()} for {total}")  # fmt: skip
        for a in live:
            parsed = parse_id(a["clientAlgoId"])
            level = int(parsed[1].partition("-")[2] or 0) if parsed else 0
            at = levels[level - 1] if level and level <= len(levels) else trigger
            shape = (a["orderType"], Decimal(a["triggerPrice"]) if at is not None else None, a["side"])
            want = (kind, None if at is None else Decimal(at), exit_side)
            if shape != want:
                out.append(f"1: {s.pid} holds {s.share}: live {a['clientAlgoId']} is {shape}, "
                           f"expected {want}")  # fmt: skip
    return out


def _symbol_problems(view: View, key: tuple[str, str], members: list[Share], *, attention_ok: bool) -> list[str]:
    """1 and share for one symbol and position side that only bot entries trade. With
    ``attention_ok`` an entry parked NEEDS_ATTENTION (left to the operator, maybe unprotected on
    purpose) is out of the SL and TP totals; its share still counts toward the position."""
    out: list[str] = []
    symbol, ps = key
    position = view.positions.get(key, Decimal(0))
    signed = sum((s.signed for s in members), Decimal(0))
    if attention_ok:
        members = [s for s in members if (view.record(s.pid) or {}).get("status") != "NEEDS_ATTENTION"]
    held = [s for s in members if s.share > 0]
    want_sl = sum((s.share for s in held), Decimal(0))
    want_tp = sum(
        (s.share for s in held if (r := view.record(s.pid)) is None or r.get("take_profit")),
        Decimal(0),
    )
    open_sl = sum((s.open_qty("sl") for s in members), Decimal(0))
    open_tp = sum((s.open_qty("tp") for s in members), Decimal(0))
    listing = ", ".join(f"{s.pid} {s.share}" for s in held) or "none"
    if open_sl != want_sl:
        out.append(f"1: {symbol} {ps}: open SL quantity {open_sl}, but the open entries' "
                   f"shares add to {want_sl} ({listing})")  # fmt: skip
    if open_tp != want_tp:
        out.append(f"1: {symbol} {ps}: open TP quantity {open_tp}, but the shares of the open "
                   f"entries with a TP add to {want_tp} ({listing})")  # fmt: skip
    if position != signed:
        out.append(f"share: {symbol} {ps} position is {position}, but the entries' "
                   f"shares add to {signed} ({listing})")  # fmt: skip
    return out


def stop_cover_problems(view: View) -> list[str]:
    """Invariant 1 as the venue alone tells it, position by position: the live stop-loss
    quantity of the bot's legs (on the side that closes the position) equals the position
    positionRisk reports, so no part of any position is without a stop and no stop is live for
    a flat one. Only meaningful where every trade was the bot's: a trade of another client
    (``ledger(view).foreign``) is named as a problem too. ``view`` must be ``complete``."""
    assert view.complete, "stop_cover_problems needs the venue's whole history (look(history=True))"
    out = [f"{symbol} {ps}: traded by an order that is not the bot's" for symbol, ps in sorted(ledger(view).foreign)]
    stops: dict[tuple[str, str], Decimal] = {}
    for a in view.open_algos:
        parsed = parse_id(a["clientAlgoId"])
        if parsed is None or parsed[1] != "sl" or a["algoStatus"] != "NEW":
            continue
        key = (a["symbol"], a["positionSide"])
        position = view.positions.get(key, Decimal(0))
        closing = "SELL" if position > 0 or a["positionSide"] == "LONG" else "BUY"
        if position and a["side"] != closing:
            out.append(f"1: {key[0]} {key[1]}: {a['clientAlgoId']} is a {a['side']} stop on {position}")
        stops[key] = stops.get(key, Decimal(0)) + Decimal(a["quantity"])
    for key in sorted(set(stops) | {k for k, v in view.positions.items() if v}):
        position, stop = abs(view.positions.get(key, Decimal(0))), stops.get(key, Decimal(0))
        if stop != position:
            out.append(f"1: {key[0]} {key[1]}: position {position} but live stop-loss quantity {stop}")
    return out


# --- the invariants ---------------------------------------------------------------------------


def problems_in(view: View, created: Iterable[str] = (), *, attention_ok: bool = False) -> list[str]:
    """Every broken invariant, in words (numbered as in DESIGN.md; 7: an entry's own legs and
    closes never executed more than it filled); empty when all hold.

    A look without history (``complete`` False) is checked only where the live books and the
    state dir decide alone: live duplicates, live orders of archived entries, the journal.
    """
    created = list(created)
    pids = set(created) | set(view.journal) | set(view.archive)
    for cid in [
        *(o["clientOrderId"] for o in view.orders.values()),
        *(a["clientAlgoId"] for a in view.algos.values()),
    ]:
        parsed = parse_id(cid)
        if parsed is not None:
            pids.add(parsed[0])

    # 2: no client id accepted twice (an entry sent twice, a protection placed twice)
    out = [
        f"2: {kind} {cid} accepted {n} times by the venue"
        for kind, ids in (
            ("order", [o["clientOrderId"] for o in view.orders.values()]),
            ("algo order", [a["clientAlgoId"] for a in view.algos.values()]),
        )
        for cid, n in Counter(ids).items()
        if n > 1 and parse_id(cid) is not None
    ]
    for pid in sorted(pids):
        out += _record_problems(view, pid, created)

    # 1, 3, 4, 5, 7 as the venue's history tells each entry's share
    out += share_problems(view, attention_ok=attention_ok)

    # 3: every entry the test created is in the journal or the archive, archived once
    out += [
        f"3: created entry {pid} is neither in the journal nor in the archive"
        for pid in created
        if pid not in view.journal and pid not in view.archive
    ]
    out += [f"3: {pid} archived {n} times" for pid, n in view.archive_count.items() if n > 1]

    # 4: the journal converged
    for pid, rec in sorted(view.journal.items()):
        if rec["status"] in UNSETTLED:
            out.append(f"4: {pid} is still {rec['status']} ({rec.get('reason') or 'no reason'})")
        elif rec["status"] == "NEEDS_ATTENTION" and not attention_ok:
            out.append(f"4: {pid} NEEDS_ATTENTION: {rec.get('reason')}")
    return out


NO_ENTRY_ORDER_OK = frozenset({"REQUESTED", "SUBMITTING", "NOT_PLACED", "CANCELED", "DROPPED"})


def _record_problems(view: View, pid: str, created: list[str]) -> list[str]:
    """2 and 3 for one entry: its record against the venue's orders."""
    rec = view.record(pid)
    entries = view.entry_orders(pid)
    if rec is None:
        if pid in created or entries or any(view.live(pid, leg) for leg in ("sl", "tp")):
            return [f"3: {pid} is neither in the journal nor in the archive"]
        return []
    out: list[str] = []
    held = Decimal(rec["filled_qty"]) - sum((Decimal(q) for _, q in rec.get("exits", [])), Decimal(0))
    for leg in ("sl", "tp"):
        live = view.live(pid, leg)
        total = sum((Decimal(a["quantity"]) for a in live), Decimal(0))
        if len(live) > 1 and total > held:  # pieces of a stacked entry's exact legs add up to its share
            ids = [a["clientAlgoId"] for a in live]
            out.append(f"2: {len(live)} live {leg.upper()} orders for {pid} ({total}, it holds {held}): {ids}")
    if not view.complete:
        if view.archived(pid) and (live_ids := view.live_ids(pid)):
            out.append(f"3: {pid} archived ({rec['status']}) while {live_ids} still live")
        return out
    if not entries:
        if rec["status"] not in NO_ENTRY_ORDER_OK:
            out.append(f"3: {pid} is {rec['status']} but the venue has no entry order {pid}-e")
        return out
    entry, archived = entries[-1], pid not in view.journal
    if rec["status"] == "NOT_PLACED" and archived:
        out.append(f"3: {pid} archived NOT_PLACED but the venue accepted {pid}-e ({entry['status']})")
    if entry["status"] in OPEN_ORDER and archived:
        out.append(f"3: entry {pid}-e is {entry['status']} on the venue but not in the journal")
    filled = sum((Decimal(o["executedQty"]) for o in entries), Decimal(0))
    if rec["status"] == "CANCELED" and archived and filled > 0:
        out.append(f"3: {pid} archived CANCELED (no fill) but the venue filled {filled}")
    return out


def check_invariants(
    state_url: str,
    state_dir: Path,
    created: Iterable[str] = (),
    *,
    attention_ok: bool = False,
    symbols: Iterable[str] | None = None,
) -> list[str]:
    """One full look (the venue's whole history); every broken invariant in words."""
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
    """Wait (bounded) until the world settles with the invariants holding, then check them once
    more over the venue's whole history, the venue-side share checker included; fail with the
    problems of the last look.

    Settled = looks at least ``settle_s`` apart see the same live books, positions and journal
    and no problem. The polling looks cost the venue no request weight (the daemon shares it);
    the full look (history, 15 a symbol + 5) is taken at most every ``FULL_LOOK_EVERY_S`` (more
    seldom over many symbols). Returns the full view.
    """
    created = list(created)
    deadline = time.monotonic() + timeout
    good: tuple[float, tuple[Any, ...]] | None = None  # (since, picture) of the settled world
    full_at = 0.0
    problems: list[str] = []
    in_full: list[str] = []  # what the last full look found (the cheap looks cannot see it)
    while True:
        now = time.monotonic()
        try:
            view = look(state_url, state_dir, symbols, history=False)
            problems = problems_in(view, created, attention_ok=attention_ok)
            if problems or good is None or good[1] != view.picture():
                good = None if problems else (now, view.picture())
            elif now - good[0] >= settle_s and now >= full_at:
                full = look(state_url, state_dir, symbols, history=True)
                spread = len({o["symbol"] for o in full.orders.values()})
                full_at = now + max(FULL_LOOK_EVERY_S, 0.75 * spread)
                in_full = problems_in(full, created, attention_ok=attention_ok)
                if not in_full and full.picture() == good[1]:
                    return full
                good = None
        except (httpx.HTTPError, OSError, ValueError, VenueBusy) as err:
            problems = [f"(the venue did not answer: {err!r})"]
        if now >= deadline:
            problems = problems or [f"{p} (over the whole history)" for p in in_full]
            if not problems:
                problems = ["4: the world did not settle: no two looks agreed"]
            listing = "\n  ".join(problems)
            raise AssertionError(
                f"invariants do not hold after {timeout:g}s ({len(created)} entries created):\n  {listing}"
            )
        time.sleep(0.2)


# --- one test's world -------------------------------------------------------------------------


class Cluster:
    """The tmp dir, the venue process, the daemon processes and the entries a test created."""

    def __init__(
        self,
        root: Path,
        *,
        paper_faults: Iterable[str] = (),
        position_mode: str = "auto",
        venue: Mapping[str, str] | None = None,
        paper: Mapping[str, int] | None = None,
        env: Mapping[str, str] | None = None,
        access_log: bool = False,
        stacking: bool = False,
        volatility: float = 0.0,
    ) -> None:
        """``venue`` / ``paper``: more keys of the config's [venue] / [paper] tables, where
        ``{port}`` in a venue value is the venue's port (e.g. ``{"kind": "binance", "rest_url":
        "http://127.0.0.1:{port}"}``); ``env``: more environment for every process (e.g. the
        binance venue's keys); ``access_log``: the venue logs one line per request;
        ``stacking``: entries may share a position ([protection] stacking); ``volatility``: the
        venue's price walks on its own this much a second (0: only when a test moves it)."""
        self.root = root
        self.state_dir = root / "state"
        self.config = root / "bot.toml"
        self.port = free_port()
        self.access_log = access_log
        venue_keys = {} if position_mode == "auto" else {"position_mode": position_mode}
        venue_keys |= {k: v.format(port=self.port) for k, v in (venue or {}).items()}
        self.config.write_text(CONFIG.format(
            port=self.port, faults=json.dumps(list(paper_faults)),
            venue_extra="".join(f"{k} = {json.dumps(v)}\n" for k, v in venue_keys.items()),
            paper_extra="".join(f"{k} = {v}\n" for k, v in (paper or {}).items()),
            stacking=json.dumps(stacking), volatility=volatility,
        ), encoding="utf-8")  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if k not in ("BOT_API_KEY", "BOT_API_SECRET")}
        self.env.update(BOT_CONFIG=str(self.config), BOT_STATE_DIR=str(self.state_dir), PYTHONUNBUFFERED="1")
        self.env.update(env or {})
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
        venue = self.venue = self._spawn("paper", ["paper", "serve", *(["--access-log"] if self.access_log else [])])

        def answers() -> bool:
            if not venue.alive:
                raise AssertionError(f"`bot paper serve` exited ({venue.popen.returncode}):\n{venue.tail()}")
            return self.http.get("/fapi/v1/time").status_code == 200

        wait_for(answers, f"the paper venue to answer GET /fapi/v1/time on port {self.port}")

    def start_daemon(self, timeout: float = WAIT_S) -> Proc:
        """`bot run --no-live --log-format json`, ready when it logs READY."""
        if self.daemon is not None and self.daemon.alive:
            raise AssertionError("start_daemon: a daemon is already running")
        proc = self._spawn(f"run-{len(self.runs) + 1}", ["run", "--no-live", "--log-format", "json"])
        self.daemon = proc
        self.runs.append(proc)

        def ready() -> bool:
            if READY_LINE.search(proc.log()):
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

    def _enter_argv(self, symbol: str, side: str, qty: str, price: str | None, sl: str, tp: str | None) -> list[str]:
        argv = [BOT, "enter", symbol, side, qty, "--sl", sl, "--json"]
        argv += ["--price", price] if price is not None else []
        argv += ["--tp", tp] if tp is not None else []
        return argv

    def _answer(self, rc: int, stdout: str, stderr: str, argv: list[str]) -> dict[str, Any]:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(
                f"`{' '.join(argv[1:])}` printed no JSON (exit {rc})\nstdout: {stdout}\nstderr: {stderr}"
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
    ) -> subprocess.Popen[str]:
        """Start `bot enter` and return at once (its process); ``collect_enters`` reads its
        answer later."""
        argv = self._enter_argv(symbol, side, qty, price, sl, tp)
        self._enters_started += 1
        out = self.root / f"enter-{self._enters_started}.out"
        with open(out, "w") as fh:
            popen = subprocess.Popen(
                argv, env=self.env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=fh,
                stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )  # fmt: skip
        self._async_enters.append((popen, out))
        return popen

    def collect_enters(self, timeout: float = ENTER_TIMEOUT_S) -> list[dict[str, Any]]:
        """Wait (bounded) for every `bot enter` started by ``enter_async``; their answers."""
        answers = []
        pending, self._async_enters = self._async_enters, []
        for popen, out in pending:
            try:
                rc = popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._async_enters.append((popen, out))
                raise AssertionError(f"`bot enter` (pid {popen.pid}) did not finish in {timeout:g}s") from None
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
            raise AssertionError(f"POST /paper/price {symbol} {price}: {answer.status_code} {answer.text}")

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

    def wait_protected(self, pid: str, qty: str | Decimal, legs: int = 2, timeout: float = WAIT_S) -> None:
        """Wait until the entry's live protective orders on the venue are ``legs`` orders, each
        for ``qty``."""
        want = Decimal(qty)

        def done() -> bool:
            live = self.live_algos(pid)
            return len(live) == legs and all(Decimal(a["quantity"]) == want for a in live)

        wait_for(done, f"{legs} live protective orders of {pid} for {want}", timeout)

    def pulse_fill(self, symbol: str, cross: str, back: str, pid: str, timeout: float = WAIT_S) -> Decimal:
        """A short crossing: hold the price at ``cross`` until the entry's next fill, then move it
        to ``back`` at once, so one 100 ms step (one chunk of the order) fills; the new filled
        quantity."""
        before = self.filled(pid)

        def more() -> Decimal | None:
            now = self.filled(pid)
            return now if now > before else None

        self.set_price(symbol, cross)
        try:
            filled = wait_for(more, f"a fill of {pid} at {cross}", timeout, every=0.005)
        finally:
            self.set_price(symbol, back)
        assert filled is not None
        return filled

    def algo(self, cid: str) -> dict[str, Any] | None:
        """The algo order with this client id as the venue's own view shows it now (live, or
        among the recent finished ones; late visibility does not hide it here), else as a
        signed query answers (the newest with that id)."""
        state = self.state()
        for a in [*state["openAlgoOrders"], *state["recentAlgoOrders"]]:
            if a["clientAlgoId"] == cid:
                return a  # type: ignore[no-any-return]
        answer = self.http.get(
            f"/fapi/v1/algoOrder?{signed_query({'clientAlgoId': cid})}",
            headers={"X-MBX-APIKEY": PAPER_API_KEY},
        )
        return answer.json() if answer.status_code == 200 else None

    def by_hand(self, method: str, path: str, **params: Any) -> Any:
        """A signed request from outside the bot (an operator on the exchange)."""
        return signed_send(self.http, method, path, params)

    def algo_status(self, cid: str) -> str | None:
        algo = self.algo(cid)
        return None if algo is None else str(algo["algoStatus"])

    def position(self, symbol: str, position_side: str = "BOTH") -> Decimal:
        for p in self.state()["positions"]:
            if p["symbol"] == symbol and p["positionSide"] == position_side:
                return Decimal(p["positionAmt"])
        return Decimal(0)

    def legs_of(self, pid: str) -> dict[str, dict[str, Any]]:
        """The entry's live legs by leg name ("sl", "tp"); fails if one leg has two."""
        legs: dict[str, dict[str, Any]] = {}
        for a in self.live_algos(pid):
            parsed = parse_id(a["clientAlgoId"])
            assert parsed is not None
            assert parsed[1] not in legs, f"two live {parsed[1]} of {pid}"
            legs[parsed[1]] = a
        return legs

    def daemon_lines(self, *words: str) -> list[str]:
        """Every daemon log line (all runs) that contains all of ``words``."""
        return [
            line for proc in self.runs for line in proc.log().splitlines()
            if all(w in line for w in words)
        ]  # fmt: skip

    def daemon_events(self, event: str) -> list[dict[str, Any]]:
        """Every JSON log line (all runs of `bot run --log-format json`) with this ``event``."""
        found = []
        for line in self.daemon_lines(f'"{event}"'):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and doc.get("event") == event:
                    found.append(doc)
        return found

    def venue_time(self) -> int:
        """The venue's clock now (ms): the clock of every createTime and trade time it reports."""
        return int(self.state()["time"])

    def venue_requests(self, method: str, path: str, status: int | None = None) -> list[str]:
        """The venue's access-log lines (``access_log=True``) of ``method path`` (query ignored),
        answered ``status`` if given."""
        shape = re.compile(rf'"{method} {re.escape(path)}(?:\?\S*)? HTTP/[\d.]+" (\d{{3}})')
        assert self.access_log, "venue_requests needs a cluster made with access_log=True"
        assert self.venue is not None
        return [
            line for line in self.venue.log().splitlines()
            if (m := shape.search(line)) and (status is None or int(m.group(1)) == status)
        ]  # fmt: skip

    def status(self) -> tuple[int, dict[str, Any]]:
        """`bot status --json`: its exit code and its document (problems, exit_code, ...)."""
        done = subprocess.run(
            [BOT, "status", "--json"], env=self.env, cwd=self.root, capture_output=True, text=True,
            timeout=ENTER_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(f"`bot status --json` printed no JSON (exit {done.returncode}):\n"
                                 f"stdout: {done.stdout}\nstderr: {done.stderr}")  # fmt: skip
        doc: dict[str, Any] = json.loads(lines[-1])
        doc["stderr"] = done.stderr
        return done.returncode, doc

    # -- looking at the state dir -----------------------------------------------------------

    def status_of(self, pid: str) -> str | None:
        journal, archived = read_state_dir(self.state_dir)
        if pid in journal:
            return str(journal[pid]["status"])
        last = [a for a in archived if a["id"] == pid]
        return str(last[-1]["rec"]["status"]) if last else None

    def in_journal(self, pid: str) -> bool:
        journal, _ = read_state_dir(self.state_dir)
        return pid in journal

    def archived(self, pid: str) -> bool:
        """The entry left the journal and is in the archive."""
        journal, archived = read_state_dir(self.state_dir)
        return pid not in journal and any(a["id"] == pid for a in archived)

    def wait_archived(self, pid: str, timeout: float = WAIT_S) -> None:
        wait_for(lambda: self.archived(pid), f"entry {pid} to leave the journal (archived)",
                 timeout)  # fmt: skip

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
        parts += [
            f"--- {proc.name}.log (pid {proc.pid}, last 80 lines) ---\n{proc.tail(80)}"
            for proc in [*self.others[-3:], *self.runs[-4:]]
        ]
        if self.venue is not None:
            lines = self.venue.log().splitlines()
            noise = [line for line in lines if '" 200 OK' in line]  # the access log of reads
            kept = [line for line in lines if '" 200 OK' not in line]
            parts.append(f"--- paper.log (all but {len(noise)} OK access lines, last 40) ---")
            parts.append("\n".join(kept[-40:]))
        try:
            journal, archived = read_state_dir(self.state_dir)
            rows = [f"{k} {r['status']} filled {r['filled_qty']} {r.get('reason', '')}" for k, r in journal.items()]
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
            slim["openOrders"] = [(o["clientOrderId"], o["status"], o["executedQty"]) for o in state["openOrders"]]
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
