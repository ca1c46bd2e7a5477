"""What an entry reads before admission, without a venue: the exchangeInfo cache in the state
dir, the daemon's account facts from its heartbeat, which orders are foreign, and the one line
a read refused for the request weight prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.config import Config, VenueConfig
from bot_cli.connect import WeightSpent, _prepare, rate_limited_line
from bot_cli.core.admission import foreign
from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.rest import BinanceRest
from bot_cli.exchange.wire import parse_symbol_filters
from bot_cli.ops import market
from bot_cli.paper.info import symbol_info
from bot_cli.paper.market import SYMBOLS
from bot_cli.runtime import heartbeat
from bot_cli.state_store import DaemonLock
from bot_cli.venue import RateLimited, WeightThrottled


VENUE = "http://127.0.0.1:9"
BTC: SymbolFilters = parse_symbol_filters(symbol_info(SYMBOLS["BTCUSDT"]))  # type: ignore[arg-type]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def info(read_at: int | None = None, **rows: SymbolFilters) -> market.Info:
    """exchangeInfo as read by this process (``fresh``), BTCUSDT by default."""
    symbols = {s: market._encode_filters(f) for s, f in (rows or {"BTCUSDT": BTC}).items()}
    at = now_ms() if read_at is None else read_at
    return market.Info(VENUE, at, symbols, 2400, {10_000: 300, 60_000: 1200}, fresh=True)


# -- the exchangeInfo cache ---------------------------------------------------------------------


def test_the_cache_is_written_0600_and_read_back_with_every_filter(tmp_path: Path) -> None:
    """MAX_NUM_ORDERS included: the paper venue states 200 per symbol, as Binance does."""
    market.keep_info(tmp_path, info())

    path = tmp_path / market.INFO_NAME
    back = market.load_info(tmp_path, VENUE)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert back is not None
    assert back.filters("BTCUSDT") == BTC
    assert BTC.max_num_orders == 200
    assert (back.weight_limit, dict(back.order_limits)) == (2400, {10_000: 300, 60_000: 1200})
    assert not back.fresh  # read from the file: a refusal by a filter may read it again
    assert json.loads(path.read_text())["read_at"] == back.read_at_ms


def test_the_cache_never_creates_the_state_dir_and_keeps_only_what_was_read(tmp_path: Path) -> None:
    market.keep_info(tmp_path / "nowhere", info())
    market.keep_info(tmp_path, None)
    from_file = market.Info(VENUE, now_ms(), {}, None, {})  # not fresh: nothing new to keep
    market.keep_info(tmp_path, from_file)

    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / market.INFO_NAME).exists()


@pytest.mark.parametrize(
    ("age_s", "stale"),
    [(0, False), (market.INFO_TTL_S - 60, False), (market.INFO_TTL_S + 1, True), (-3600, True)],
    ids=["just read", "within the TTL", "past the TTL", "from the future (clock jump)"],
)
def test_the_cache_is_stale_past_its_ttl(age_s: float, stale: bool) -> None:
    assert info(read_at=now_ms() - int(age_s * 1000)).stale(now_ms()) is stale


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", json.dumps({"v": 99}).encode(),
     json.dumps({"v": 1, "venue": VENUE, "read_at": "x", "weight_limit": 1, "order_limits": {},
                 "symbols": {}}).encode()],
    ids=["empty", "torn", "not an object", "another version", "a wrong type"],
)  # fmt: skip
def test_an_unreadable_cache_is_no_cache(tmp_path: Path, content: bytes) -> None:
    (tmp_path / market.INFO_NAME).write_bytes(content)
    assert market.load_info(tmp_path, VENUE) is None


def test_another_venues_cache_is_not_used(tmp_path: Path) -> None:
    market.keep_info(tmp_path, info())
    assert market.load_info(tmp_path, "https://testnet.binancefuture.com") is None


def test_a_damaged_symbol_row_is_a_symbol_to_read_again(tmp_path: Path) -> None:
    kept = info()
    row = dict(kept.symbols["BTCUSDT"], tick_size=0.1)  # a float: not how the cache writes it
    damaged = market.Info(VENUE, kept.read_at_ms, {"BTCUSDT": row}, 2400, {}, fresh=True)
    assert damaged.filters("BTCUSDT") is None


def test_cached_rate_limits_go_to_a_client_that_has_none() -> None:
    rest = BinanceRest(VENUE, "k", "s")
    info().apply_limits(rest)
    assert rest.weight.limit == 2400
    assert rest.orders.limits == {10_000: 300, 60_000: 1200}


# -- the daemon's heartbeat ---------------------------------------------------------------------


def beat(state: Path, pid: int, account: dict[str, Any]) -> None:
    (state / heartbeat.NAME).write_text(json.dumps({"pid": pid, "written_at": now_ms(), "account": account}))


def test_the_heartbeat_of_the_lock_holder_gives_the_account(tmp_path: Path) -> None:
    beat(tmp_path, os.getpid(), {"hedge_mode": True, "foreign_conditional": 7, "counted_at": now_ms()})
    with DaemonLock(tmp_path):
        said = market.daemon_account(tmp_path)
    assert said == market.DaemonAccount(hedge_mode=True, foreign_conditional=7)


def test_a_count_older_than_ten_minutes_is_not_used(tmp_path: Path) -> None:
    old = now_ms() - int(market.FOREIGN_FRESH_S * 1000) - 1
    beat(tmp_path, os.getpid(), {"hedge_mode": False, "foreign_conditional": 7, "counted_at": old})
    with DaemonLock(tmp_path):
        said = market.daemon_account(tmp_path)
    assert said == market.DaemonAccount(hedge_mode=False, foreign_conditional=None)


@pytest.mark.parametrize("holder", [False, True], ids=["no lock holder", "another pid wrote it"])
def test_a_heartbeat_not_written_by_the_lock_holder_says_nothing(tmp_path: Path, holder: bool) -> None:
    beat(tmp_path, os.getpid() + 1, {"hedge_mode": True, "foreign_conditional": 7, "counted_at": now_ms()})
    if holder:
        with DaemonLock(tmp_path):
            said = market.daemon_account(tmp_path)
    else:
        said = market.daemon_account(tmp_path)
    assert said == market.DaemonAccount()


# -- foreign orders -----------------------------------------------------------------------------


def algo(cid: str) -> AlgoReport:
    return AlgoReport("BTCUSDT", ClientId(cid), 1, AlgoStatus.NEW, Decimal(90000), Decimal(1))


def test_an_order_is_foreign_unless_an_entry_of_the_journal_holds_it() -> None:
    """Another tool's id, and the bot's id of an entry no longer in the journal (legs kept after
    a drop, another state dir on the same account): both take a slot the journal does not count."""
    orders = [algo("manual-1"), algo("bc0aaaaaaaaaaaaa-sl1"), algo("bc0bbbbbbbbbbbbb-tp1")]
    assert foreign(orders, {"bc0aaaaaaaaaaaaa"}) == 2


# -- the request weight ---------------------------------------------------------------------------


def spent_client(used: int) -> BinanceRest:
    """A client whose minute, as the exchange counts it, has ``used`` of 2400 weight."""
    rest = BinanceRest(VENUE, "k", "s", weight_limit=2400)
    rest.weight.count(1, str(used), now_ms())
    return rest


def test_a_read_refused_by_the_local_budget_says_so_in_one_line() -> None:
    rest = spent_client(2151)
    refused = WeightThrottled("mark price of BTCUSDT: not sent, 2151 of 2400 weight used this minute", -1003, 23.2)

    line = rate_limited_line(rest, refused)

    assert line == ("not sent: this process's request weight budget is spent (2151 of 2400 this minute);"
                    " try again in 24 s")  # fmt: skip


def test_a_429_of_the_exchange_is_not_called_the_local_budget() -> None:
    rest = spent_client(10)
    refused = RateLimited("exchange info: HTTP 429 code -1003: Too many requests", -1003, 5.0)
    assert rate_limited_line(rest, refused) == (
        "not sent: the venue refuses requests for now (exchange info: HTTP 429 code -1003: Too many"
        " requests); try again in 5 s")  # fmt: skip


def test_connecting_with_the_budget_spent_never_says_cannot_reach() -> None:
    """The clock and the rate limits are read; the position mode (30 weight) would pass 90% of
    the minute's 2400: refused locally, and said as such (`bot run` still waits it out)."""
    def answer(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"serverTime": now_ms()}
        if request.url.path.endswith("exchangeInfo"):
            body = {"rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                    "intervalNum": 1, "limit": 2400}]}  # fmt: skip
        return httpx.Response(200, json=body, headers={"X-MBX-USED-WEIGHT-1M": "2150"})

    cfg = Config(venue=VenueConfig(rest_url=VENUE, position_mode="auto"))
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    rest = BinanceRest(VENUE, "k", "s", client=client)

    with pytest.raises(WeightSpent) as spent:
        asyncio.run(_prepare(rest, cfg, "paper"))

    assert str(spent.value).startswith("not sent: this process's request weight budget is spent (2150 of 2400")
    assert "cannot reach" not in str(spent.value)
    assert spent.value.retry_after > 0
