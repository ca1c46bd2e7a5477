"""`bot enter` through the real command line, against `bot paper serve` in its own process.

Refusals: exit 1, one line on stderr naming the filter and the limit, no state dir, and
nothing new on the venue. No daemon: a market entry is protected before `bot enter` exits,
seen from the venue (open algo orders for the symbol carry the SL and TP for the filled
quantity); a limit entry without --wait exits 4, one that is not protected in time exits 3.
A daemon that is gone before it took the entry: exit 1 saying it was not sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import httpx
import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.cli.enter import EXIT_NOT_PROTECTED, EXIT_UNWATCHED
from bot_cli.core.engine import request_entry
from bot_cli.core.model import EntrySpec, OrderType, Policy, Side
from bot_cli.exchange.wire import RestSymbol, parse_symbol_filters
from bot_cli.ops.enter import not_sent
from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET
from bot_cli.paper.info import symbol_info
from bot_cli.paper.market import SYMBOLS
from bot_cli.state_store import PendingEntryStore


pytestmark = pytest.mark.e2e

T = TypeVar("T")
runner = CliRunner()
MARK = "97000"
SL, TP = "90000", "99000"
QTY = "0.010"
WAIT_S = 20.0


def wait_for(condition: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``condition`` until truthy; fail naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Venue:
    """`bot paper serve` on a free port, and a config pointing `bot` at it."""

    proc: subprocess.Popen[bytes]
    config: Path
    http: httpx.Client

    def set_price(self, symbol: str, price: str) -> None:
        self.http.post("/paper/price", json={"symbol": symbol, "price": price}).raise_for_status()

    def signed_get(self, path: str, **params: str) -> Any:
        query = urlencode({**params, "timestamp": time.time_ns() // 1_000_000, "recvWindow": 10000})
        sig = hmac.new(PAPER_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
        answer = self.http.get(f"{path}?{query}&signature={sig}", headers={"X-MBX-APIKEY": PAPER_API_KEY})
        answer.raise_for_status()
        return answer.json()

    def algos(self, pid: str) -> list[dict[str, Any]]:
        """The open algo orders for BTCUSDT that belong to the entry ``pid``."""
        rows = self.signed_get("/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
        return [a for a in rows if a["clientAlgoId"].startswith(f"{pid}-")]

    def client_ids(self) -> set[str]:
        """Every order id the venue shows: what was sent so far."""
        s = self.http.get("/paper/state").raise_for_status().json()
        orders = [*s["openOrders"], *s["recentOrders"]]
        return {o["clientOrderId"] for o in orders} | {a["clientAlgoId"] for a in s["openAlgoOrders"]}

    def order(self, cid: str) -> dict[str, Any] | None:
        s = self.http.get("/paper/state").raise_for_status().json()
        return next((o for o in [*s["openOrders"], *s["recentOrders"]] if o["clientOrderId"] == cid), None)


def start_venue(root: Path, *, stacking: bool = False) -> Venue:
    """``stacking``: entries may share a position ([protection] stacking)."""
    port = free_port()
    config = root / "bot.toml"
    # one-way mode given: no position-mode call (weight 30) per command; the venue serves its own
    # state dir (root/venue), so the commands' state dirs name it on purpose (venue.rest_url)
    config.write_text(f"[venue]\nposition_mode = 'one-way'\nrest_url = 'http://127.0.0.1:{port}'\n"
                      f"[paper]\nport = {port}\nvolatility = 0.0\n"
                      + ("[protection]\nstacking = true\n" if stacking else ""))
    env = {**os.environ, "BOT_CONFIG": str(config)}
    with (root / "venue.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_cli", "--state-dir", str(root / "venue"), "paper", "serve"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    venue = Venue(proc, config, http)

    def answers() -> bool:
        assert proc.poll() is None, (root / "venue.log").read_text()
        try:
            return http.get("/fapi/v1/time").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, f"`bot paper serve` to answer on port {port}")
    venue.set_price("BTCUSDT", MARK)
    return venue


def stop_venue(venue: Venue) -> None:
    venue.http.close()
    venue.proc.send_signal(signal.SIGTERM)
    try:
        venue.proc.wait(20)
    except subprocess.TimeoutExpired:
        venue.proc.kill()
        venue.proc.wait(10)


@pytest.fixture(scope="module")
def shared_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    """One venue for the refusals: they send nothing, so they cannot disturb each other."""
    venue = start_venue(tmp_path_factory.mktemp("venue"))
    yield venue
    stop_venue(venue)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    """A venue of its own: the entries that are followed reconcile, and that costs weight."""
    v = start_venue(tmp_path)
    yield v
    stop_venue(v)


def bot(venue: Venue, state: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--state-dir", str(state), "--config", str(venue.config), *args])
    return result.exit_code, result.stdout, result.stderr


def bot_process(venue: Venue, state: Path, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bot_cli", "--state-dir", str(state), "--config", str(venue.config)]
    return subprocess.Popen([*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer_of(stdout: str) -> dict[str, Any]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(line)  # type: ignore[no-any-return]


def journal(state: Path) -> dict[str, dict[str, Any]]:
    with PendingEntryStore(state) as store:
        return dict(store.load_all())


# -- refusals: exit 1, one line, nothing stored, nothing sent ---------------------------------


PERCENT_PRICE_PARSED = parse_symbol_filters(cast(RestSymbol, symbol_info(SYMBOLS["BTCUSDT"]))).multiplier_up > 0
needs_percent_price = pytest.mark.skipif(
    not PERCENT_PRICE_PARSED, reason="exchange/wire.py does not read PERCENT_PRICE yet"
)

REFUSALS = [
    pytest.param(["buy", "1001", "--price", "96900", "--sl", SL, "--tp", TP],
                 "quantity 1001 exceeds LOT_SIZE maxQty 1000 for BTCUSDT; use at most 1000",
                 id="LOT_SIZE maxQty"),
    pytest.param(["buy", "0.0105", "--price", "96900", "--sl", SL],
                 "quantity 0.0105 is not a multiple of LOT_SIZE stepSize 0.001 for BTCUSDT;"
                 " use 0.010 or 0.011", id="LOT_SIZE stepSize"),
    pytest.param(["buy", "121", "--sl", SL, "--tp", TP],
                 "quantity 121 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT; use at most 120",
                 id="MARKET_LOT_SIZE maxQty"),
    pytest.param(["buy", "0.0005", "--sl", SL],
                 "quantity 0.0005 is below MARKET_LOT_SIZE minQty 0.001 for BTCUSDT;"
                 " use at least 0.001", id="MARKET_LOT_SIZE minQty"),
    pytest.param(["buy", QTY, "--price", "96900.05", "--sl", SL, "--tp", TP],
                 "price 96900.05 is not a multiple of PRICE_FILTER tickSize 0.10 for BTCUSDT;"
                 " use 96900.00 or 96900.10", id="PRICE_FILTER tickSize price"),
    pytest.param(["buy", QTY, "--sl", "200", "--tp", TP],
                 "stop-loss 200 is below PRICE_FILTER minPrice 261.10 for BTCUSDT;"
                 " use at least 261.10", id="PRICE_FILTER minPrice stop-loss"),
    pytest.param(["buy", QTY, "--sl", SL, "--tp", "900000"],
                 "take-profit 900000 exceeds PRICE_FILTER maxPrice 809484 for BTCUSDT;"
                 " use at most 809484", id="PRICE_FILTER maxPrice take-profit"),
    pytest.param(["buy", "0.001", "--price", "96900", "--sl", SL],
                 "notional 96.9 (quantity 0.001 x 96900) is below MIN_NOTIONAL notional 100 for"
                 " BTCUSDT; use a quantity of at least 0.002", id="MIN_NOTIONAL limit"),
    pytest.param(["buy", "0.001", "--sl", SL],
                 "notional 97 (quantity 0.001 x mark price 97000.00) is below MIN_NOTIONAL"
                 " notional 100 for BTCUSDT; use a quantity of at least 0.002",
                 id="MIN_NOTIONAL market"),
    pytest.param(["buy", QTY, "--price", "112000", "--sl", SL, "--tp", "120000"],
                 "price 112000 exceeds PERCENT_PRICE multiplierUp 1.1500 x mark price 97000.00 for"
                 " BTCUSDT; use a limit price of at most 111550.00",
                 id="PERCENT_PRICE multiplierUp", marks=needs_percent_price),
    pytest.param(["sell", QTY, "--price", "82000", "--sl", "98000", "--tp", "80000"],
                 "price 82000 is below PERCENT_PRICE multiplierDown 0.8500 x mark price 97000.00 for"
                 " BTCUSDT; use a limit price of at least 82450.00",
                 id="PERCENT_PRICE multiplierDown", marks=needs_percent_price),
    pytest.param(["buy", QTY, "--sl", "97500", "--tp", TP],
                 "stop-loss 97500 is not below BTCUSDT's mark price 97000.00 (MARK_PRICE): for a"
                 " buy it would trigger as soon as the entry fills (-2021);"
                 " use a stop-loss below 97000.00", id="market buy stop-loss above the mark"),
    pytest.param(["sell", QTY, "--sl", "99000", "--tp", "98000"],
                 "take-profit 98000 is not below BTCUSDT's mark price 97000.00 (MARK_PRICE): for a"
                 " sell it would trigger as soon as the entry fills (-2021);"
                 " use a take-profit below 97000.00", id="market sell take-profit above the mark"),
    pytest.param(["buy", QTY, "--price", "96900", "--sl", "96950", "--tp", TP],
                 "stop-loss 96950 is not below the entry price 96900 (ENTRY_PRICE): for a buy it"
                 " would trigger as soon as the entry fills (-2021); use a stop-loss below 96900",
                 id="limit buy stop-loss above the entry"),
    pytest.param(["buy", "130", "--price", "96900", "--sl", SL, "--tp", TP],
                 "quantity 130 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT: the stop-loss is a"
                 " market order and could not be placed; use at most 120",
                 id="protective MARKET_LOT_SIZE maxQty"),
]


@pytest.mark.parametrize(("args", "line"), REFUSALS)
def test_a_refused_entry_is_one_line_and_leaves_no_trace(
    shared_venue: Venue, tmp_path: Path, args: list[str], line: str
) -> None:
    """Exit 1; stderr is exactly the one line; no state dir; the venue got nothing."""
    shared_venue.set_price("BTCUSDT", MARK)
    before = shared_venue.client_ids()
    state = tmp_path / "state"

    code, out, err = bot(shared_venue, state, "enter", "BTCUSDT", *args)

    assert (code, out) == (1, "")
    assert err == f"error: {line}\n"
    assert not state.exists()
    assert shared_venue.client_ids() == before


def test_an_unknown_symbol_is_refused(shared_venue: Venue, tmp_path: Path) -> None:
    code, _, err = bot(shared_venue, tmp_path / "state", "enter", "NOPEUSDT", "buy", QTY, "--sl", SL)
    assert code == 1
    assert err == "error: symbol NOPEUSDT is not traded on the paper venue\n"
    assert not (tmp_path / "state").exists()


def test_an_entry_that_would_net_against_another_is_refused(venue: Venue, tmp_path: Path) -> None:
    """A market BUY holds a protected share; a SELL on BTCUSDT (one-way) would net against it:
    exit 1, one line naming the entry in the way, the journal and the venue unchanged."""
    state = tmp_path / "state"
    code, out, err = bot(venue, state, "enter", "BTCUSDT", "buy", QTY, "--sl", SL, "--tp", TP, "--json")
    assert code == 0, err
    buy = answer_of(out)["id"]
    before, sent = journal(state), venue.client_ids()

    code, out, err = bot(venue, state, "enter", "BTCUSDT", "sell", QTY, "--sl", "104000", "--tp", "95000")

    assert (code, out) == (1, "")
    assert err.startswith(f"error: BTCUSDT already has a BUY entry {buy} (PROTECTED) in one-way mode:")
    assert f"`bot close {buy}`" in err
    assert len(err.splitlines()) == 1
    assert journal(state) == before
    assert venue.client_ids() == sent


# -- no daemon: this process sends and follows ------------------------------------------------


def assert_protected_on_venue(venue: Venue, pid: str, side: str, sl: str, tp: str) -> None:
    """The venue's open algo orders for the symbol: one SL and one TP for the filled quantity."""
    order = wait_for(lambda: venue.order(f"{pid}-e"), "the entry order")
    assert order is not None
    filled = Decimal(order["executedQty"])
    assert filled == Decimal(QTY)
    by_type = {a["orderType"]: a for a in venue.algos(pid)}
    assert sorted(by_type) == ["STOP_MARKET", "TAKE_PROFIT_MARKET"], venue.algos(pid)
    for kind, trigger in (("STOP_MARKET", sl), ("TAKE_PROFIT_MARKET", tp)):
        algo = by_type[kind]
        assert Decimal(algo["quantity"]) == filled
        assert Decimal(algo["triggerPrice"]) == Decimal(trigger)
        assert algo["side"] == ("SELL" if side == "buy" else "BUY")
        assert algo["algoStatus"] == "NEW"


@pytest.mark.parametrize(("side", "sl", "tp"), [("buy", SL, TP), ("sell", "104000", "95000")])
def test_a_market_entry_is_protected_before_enter_exits(
    venue: Venue, tmp_path: Path, side: str, sl: str, tp: str
) -> None:
    """No daemon: when `bot enter` returns 0, the venue already holds the SL and TP."""
    code, out, err = bot(venue, tmp_path / "state", "enter", "BTCUSDT", side, QTY, "--sl", sl,
                         "--tp", tp, "--json")  # fmt: skip

    assert code == 0, err
    answer = answer_of(out)
    assert answer["state"] == "PROTECTED"
    assert answer["sent_by"] == "this process"
    assert_protected_on_venue(venue, answer["id"], side, sl, tp)


def test_a_limit_entry_without_wait_exits_4_with_a_warning(venue: Venue, tmp_path: Path) -> None:
    """It rests unprotected: the exit code and one warning line say so."""
    code, out, err = bot(venue, tmp_path / "state", "enter", "BTCUSDT", "buy", QTY, "--price", "96000",
                         "--sl", SL, "--tp", TP, "--json")  # fmt: skip

    assert code == EXIT_UNWATCHED == 4
    answer = answer_of(out)
    assert answer["state"] == "OPEN"
    assert err.count("\n") == 1
    assert err.startswith("warning: no daemon is running: nothing will protect")
    assert venue.order(f"{answer['id']}-e")["status"] == "NEW"  # type: ignore[index]
    assert venue.algos(answer["id"]) == []


def test_a_limit_entry_not_filled_within_the_timeout_exits_3(venue: Venue, tmp_path: Path) -> None:
    """--wait follows it; it does not fill in 1 s: exit 3, one warning line."""
    code, out, err = bot(venue, tmp_path / "state", "enter", "BTCUSDT", "buy", QTY, "--price", "96000",
                         "--sl", SL, "--tp", TP, "--wait", "--timeout", "1", "--json")  # fmt: skip

    assert code == EXIT_NOT_PROTECTED == 3
    pid = answer_of(out)["id"]
    assert err == (f"warning: entry {pid} is not protected yet (OPEN) after 1s and no daemon is"
                   " running: start `bot run` now, it protects the fill\n")  # fmt: skip


def test_a_limit_entry_with_wait_is_protected_once_it_fills(venue: Venue, tmp_path: Path) -> None:
    """--wait: the limit rests, the market crosses it later, and enter protects the fill."""
    state = tmp_path / "state"
    enter = bot_process(venue, state, "enter", "BTCUSDT", "buy", QTY, "--price", "96900", "--sl", SL,
                        "--tp", TP, "--wait", "--timeout", "20", "--json")  # fmt: skip
    with enter:
        try:
            (pid,) = wait_for(lambda: list(journal(state)) if state.exists() else [], "the journal record")
            wait_for(lambda: venue.order(f"{pid}-e"), "the entry order to rest on the venue")
            assert enter.poll() is None, "enter returned before the entry filled"
            venue.set_price("BTCUSDT", "96800")
            out, err = enter.communicate(timeout=WAIT_S)
        finally:
            enter.kill()
    assert enter.returncode == 0, err
    assert answer_of(out)["state"] == "PROTECTED"
    assert_protected_on_venue(venue, pid, "buy", SL, TP)


# -- a daemon holds the state dir ------------------------------------------------------------


HOLDER = """
import sys, time
from bot_cli.state_store import DaemonLock
with DaemonLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_enter_says_so_when_the_daemon_is_gone_before_taking_it(venue: Venue, tmp_path: Path) -> None:
    """The state dir's lock holder dies while `bot enter --json` waits: exit 1, not sent."""
    state = tmp_path / "state"
    argv = [sys.executable, "-c", HOLDER, str(state)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with bot_process(venue, state, "enter", "BTCUSDT", "buy", QTY, "--sl", SL, "--tp", TP,
                         "--json") as enter:  # fmt: skip
            try:
                (pid,) = wait_for(lambda: list(journal(state)), "the REQUESTED record")
                holder.kill()
                holder.wait(10)
                out, err = enter.communicate(timeout=WAIT_S)
            finally:
                enter.kill()
                holder.kill()
    assert enter.returncode == 1
    assert answer_of(out)["state"] == "REQUESTED"
    assert err.count("\n") == 1
    assert err.startswith(f"error: the daemon (pid {holder.pid}) stopped before taking entry {pid}:"
                          " it was not sent; it stays REQUESTED in the journal")  # fmt: skip
    assert journal(state)[pid]["status"] == "REQUESTED"
    assert venue.order(f"{pid}-e") is None


def test_an_expired_request_is_named_as_such() -> None:
    """Past the request TTL the next `bot run` will not send it: the line says so."""
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal(QTY), OrderType.MARKET, None, Decimal(SL), Decimal(TP))
    p, _ = request_entry("bc0aaaaaaaaaaaaa", spec, 1_000, 5000)  # type: ignore[arg-type]
    result = not_sent(p, "bot run (pid 7)", 7, Policy(request_ttl_ms=1))
    assert result.code == 1
    assert result.note == ("the daemon (pid 7) stopped before taking entry bc0aaaaaaaaaaaaa: it was"
                           " not sent; its request has expired: the next `bot run` archives it as"
                           " NOT_PLACED")  # fmt: skip
