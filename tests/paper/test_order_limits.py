"""Binance's ORDERS limits per account (reference §7): at most ``per_10s`` new orders per 10 s
and ``per_1m`` per minute, in fixed windows on the venue's clock. An order beyond either is
refused before it executes: HTTP 429, -1015, Retry-After and the order-count headers; it is not
counted. Cancels and reads count nothing. The limits come from ``[paper]`` and exchangeInfo
reports them."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.config import load_config
from bot_cli.connect import connect
from bot_cli.core.commands import PlaceEntry
from bot_cli.core.model import ClientId, OrderType, PendingId, PositionSide, Side
from bot_cli.errors import ConfigError
from bot_cli.exchange.rest import BinanceRest
from bot_cli.paper.auth import BINANCE_ORDER_LIMITS, OrderCost, OrderLimits, TooManyOrders, WeightMeter, seconds_left
from bot_cli.paper.server import is_listening, start_in_process
from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET, PaperExchange
from bot_cli.venue import RateLimited
from tests.paper import ENTRY, KEY_HEADER, SL, T0, Clock, asgi_venue, signed


# T0 starts a minute (so a 10 s window too): offsets from it place a request in a window.
assert T0 % 60_000 == 0
MARKET = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010", "newClientOrderId": "over"}
COUNTS = ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1M")
LIMIT = PlaceEntry(
    PendingId("p1"), ClientId("p1-l"), "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.010"), Decimal("90000.0"),
    PositionSide.BOTH,
)  # fmt: skip
Steps = Callable[[httpx.AsyncClient, PaperExchange, Clock], Awaitable[Any]]


def call(state_dir: Path | None, limits: OrderLimits, steps: Steps, start_ms: int) -> Any:
    """Run ``steps(client, exchange, clock)`` against a fresh venue, its clock at ``start_ms``."""
    clock = Clock(start_ms)

    async def main() -> Any:
        async with asgi_venue(state_dir, clock, order_limits=limits) as (client, exchange):
            return await steps(client, exchange, clock)

    return asyncio.run(main())


async def place(client: httpx.AsyncClient, clock: Clock, n: int) -> httpx.Response:
    """A small resting limit buy, client id ``o<n>``."""
    order = {**ENTRY, "quantity": "0.002", "price": "90000.00", "newClientOrderId": f"o{n}"}
    return await client.post(f"/fapi/v1/order?{signed(order, clock())}")


async def market(client: httpx.AsyncClient, clock: Clock, n: int) -> httpx.Response:
    """A market order, sells and buys taking turns, so the position stays small."""
    order = {**MARKET, "side": "SELL" if n % 2 else "BUY", "quantity": "0.002", "newClientOrderId": f"m{n}"}
    return await client.post(f"/fapi/v1/order?{signed(order, clock())}")


async def open_ids(client: httpx.AsyncClient, clock: Clock) -> tuple[list[str], list[str]]:
    """The client ids in openOrders and in openAlgoOrders."""
    orders = (await client.get(f"/fapi/v1/openOrders?{signed({}, clock())}")).json()
    algos = (await client.get(f"/fapi/v1/openAlgoOrders?{signed({}, clock())}")).json()
    return [o["clientOrderId"] for o in orders], [a["clientAlgoId"] for a in algos]


def positions(ex: PaperExchange) -> dict[str, Decimal]:
    return {p.symbol: p.amount for p in ex.book.positions.values() if p.amount}


def saved(state_dir: Path) -> dict[str, bytes]:
    """Every file of the venue's state, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted((state_dir / "paper").iterdir()) if p.is_file()}


def counts(response: httpx.Response) -> list[str | None]:
    return [response.headers.get(name) for name in COUNTS]


def refusal(limit: int, interval: str) -> dict[str, Any]:
    return {"code": -1015, "msg": f"Too many new orders; current limit is {limit} orders per {interval}."}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not is_listening("127.0.0.1", port):
        assert proc.poll() is None, "bot paper serve exited at start"
        assert time.monotonic() < deadline, "bot paper serve did not start listening"
        time.sleep(0.05)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- over the limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"), [("/fapi/v1/order", MARKET), ("/fapi/v1/algoOrder", SL)], ids=["order", "algoOrder"]
)
def test_an_order_beyond_the_10s_limit_is_refused_and_not_executed(
    tmp_path: Path, path: str, params: dict[str, str]
) -> None:
    """The 4th order in 10 s with a limit of 3: 429 -1015, Retry-After, the counts; nothing ran."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        placed = [(await place(client, clock, n)).status_code for n in range(3)]
        before = saved(tmp_path), positions(ex)
        refused = await client.post(f"{path}?{signed(params, clock())}")
        after = saved(tmp_path), positions(ex)
        return [placed, refused, before, after, ex.book.events, await open_ids(client, clock)]

    # Act
    placed, refused, before, after, events, (orders, algos) = call(
        tmp_path, OrderLimits(per_10s=3, per_1m=100), steps, T0 + 2_500
    )

    # Assert
    assert placed == [200, 200, 200]
    assert (refused.status_code, refused.json()) == (429, refusal(3, "TEN_SECONDS"))
    assert refused.headers["Retry-After"] == "8"  # 7.5 s left in the window, in whole seconds
    assert counts(refused) == ["3", "3"]  # the refused order did not count
    assert after == before  # no fill, no position, nothing written
    assert events == []
    assert (orders, algos) == (["o0", "o1", "o2"], [])


def test_an_order_beyond_the_minute_limit_is_refused_until_the_minute_rolls_over(tmp_path: Path) -> None:
    """A limit of 5 a minute: the 6th, 40 s later, is -1015 per MINUTE; the next minute takes it."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        placed = [(await place(client, clock, n)).status_code for n in range(5)]
        clock.advance(40_000)
        refused = await market(client, clock, 0)
        position = positions(ex)
        clock.ms = T0 + 60_000
        later = await market(client, clock, 0)
        return [placed, refused, position, later]

    # Act
    placed, refused, position, later = call(tmp_path, OrderLimits(per_10s=100, per_1m=5), steps, T0 + 1_500)

    # Assert
    assert placed == [200] * 5
    assert (refused.status_code, refused.json()) == (429, refusal(5, "MINUTE"))
    assert refused.headers["Retry-After"] == "19"  # 18.5 s to the minute's end
    assert counts(refused) == ["0", "5"]  # a new 10 s window, the same minute
    assert position == {}
    assert (later.status_code, counts(later)) == (200, ["1", "1"])


def test_a_refused_order_goes_through_in_the_next_window(tmp_path: Path) -> None:
    """Refused at 1 s into a 10 s window; sent again Retry-After seconds later, it is placed."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[httpx.Response]:
        answers = [await place(client, clock, n) for n in range(3)]
        clock.advance(int(answers[-1].headers["Retry-After"]) * 1000)
        return [*answers, await place(client, clock, 2)]

    # Act
    first, second, refused, again = call(tmp_path, OrderLimits(per_10s=2, per_1m=100), steps, T0 + 1_000)

    # Assert
    assert [counts(first), counts(second)] == [["1", "1"], ["2", "2"]]
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "9")
    assert (again.status_code, again.json()["clientOrderId"]) == (200, "o2")
    assert counts(again) == ["1", "3"]  # the minute counted the two placed before, not the refusal


def test_cancels_and_reads_are_not_counted(tmp_path: Path) -> None:
    """Two orders placed, then cancels and reads of every kind: the third order is still the third."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        t = clock()
        placed = [await place(client, clock, 0), await client.post(f"/fapi/v1/algoOrder?{signed(SL, t)}")]
        others = [
            await client.get(f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'origClientOrderId': 'o0'}, t)}"),
            await client.get(f"/fapi/v1/openOrders?{signed({}, t)}"),
            await client.get(f"/fapi/v1/allOrders?{signed({'symbol': 'BTCUSDT'}, t)}"),
            await client.get(f"/fapi/v1/openAlgoOrders?{signed({}, t)}"),
            await client.get(f"/fapi/v3/account?{signed({}, t)}"),
            await client.get("/fapi/v1/exchangeInfo"),
            await client.delete(f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'origClientOrderId': 'o0'}, t)}"),
            await client.delete(f"/fapi/v1/algoOrder?{signed({'clientAlgoId': SL['clientAlgoId']}, t)}"),
            await client.delete(f"/fapi/v1/allOpenOrders?{signed({'symbol': 'BTCUSDT'}, t)}"),
            await client.delete(f"/fapi/v1/algoOpenOrders?{signed({'symbol': 'BTCUSDT'}, t)}"),
        ]
        return [placed, others, await place(client, clock, 1), await place(client, clock, 2)]

    # Act
    placed, others, third, fourth = call(tmp_path, OrderLimits(per_10s=3, per_1m=100), steps, T0)

    # Assert
    assert [(r.status_code, counts(r)) for r in placed] == [(200, ["1", "1"]), (200, ["2", "2"])]
    assert [r.status_code for r in others] == [200] * len(others)
    assert [counts(r) for r in others] == [[None, None]] * len(others)
    assert (third.status_code, counts(third)) == (200, ["3", "3"])
    assert (fourth.status_code, counts(fourth)) == (429, ["3", "3"])


def test_binance_limits_refuse_the_301st_order_in_10s_and_the_1201st_in_a_minute() -> None:
    """At the defaults: 300 market orders, the 301st refused; 300 more in each of the next three
    10 s windows, then the 1,201st of the minute refused until the minute rolls over."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        statuses = [(await market(client, clock, n)).status_code for n in range(300)]
        over_10s = await market(client, clock, 300)
        for window in range(1, 4):
            clock.ms = T0 + window * 10_000
            statuses += [(await market(client, clock, n)).status_code for n in range(300)]
        clock.ms = T0 + 40_000
        position = positions(ex)
        return [statuses, over_10s, await market(client, clock, 0), position, positions(ex)]

    # Act
    statuses, over_10s, over_1m, before, after = call(None, BINANCE_ORDER_LIMITS, steps, T0)

    # Assert
    assert statuses == [200] * 1200
    assert (over_10s.status_code, over_10s.json()) == (429, refusal(300, "TEN_SECONDS"))
    assert (over_10s.headers["Retry-After"], counts(over_10s)) == ("10", ["300", "300"])
    assert (over_1m.status_code, over_1m.json()) == (429, refusal(1200, "MINUTE"))
    assert (over_1m.headers["Retry-After"], counts(over_1m)) == ("20", ["0", "1200"])
    assert after == before


# --- what a client reads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"), [(OrderLimits(7, 42), (7, 42)), (BINANCE_ORDER_LIMITS, (300, 1200))], ids=["set", "default"]
)
def test_exchange_info_reports_the_limits_the_venue_enforces(limits: OrderLimits, expected: tuple[int, int]) -> None:
    """exchangeInfo.rateLimits: the request weight and both ORDERS limits as configured."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> Any:
        return (await client.get("/fapi/v1/exchangeInfo")).json()["rateLimits"]

    # Act
    rate_limits = call(None, limits, steps, T0)

    # Assert
    per_10s, per_1m = expected
    assert rate_limits == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": per_1m},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": per_10s},
    ]


def test_the_bots_adapter_reads_the_limits_and_takes_1015_as_rate_limited(tmp_path: Path) -> None:
    """BinanceRest over a served venue: load_limits sees the ORDERS limits; the order beyond
    them raises RateLimited with -1015 and the venue's Retry-After."""

    # Arrange
    async def main() -> list[Any]:
        clock = Clock(T0 + 4_000)
        handle = await start_in_process(tmp_path, volatility=0.0, clock=clock, order_limits=OrderLimits(1, 10))
        try:
            async with BinanceRest(handle.rest_url, PAPER_API_KEY, PAPER_API_SECRET) as rest:
                await rest.sync_time()
                limits = await rest.load_limits()
                await rest.place_entry(LIMIT)
                with pytest.raises(RateLimited) as refused:
                    await rest.place_entry(LIMIT)
                return [limits, refused.value]
        finally:
            await handle.stop()

    # Act
    limits, refused = asyncio.run(main())

    # Assert
    assert [(r.interval_s, r.limit) for r in limits if r.kind == "ORDERS"] == [(60, 10), (10, 1)]
    assert (refused.code, refused.retry_after) == (-1015, 6.0)


def test_connect_starts_the_paper_venue_with_the_configured_limits(tmp_path: Path) -> None:
    """A command that starts the venue in its own process passes [paper] order_limit_* on."""
    # Arrange
    path = tmp_path / "bot.toml"
    path.write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\norder_limit_10s = 4\norder_limit_1m = 9\n")
    cfg = load_config(path)

    async def main() -> list[Any]:
        async with connect(cfg, tmp_path / "state", say=lambda _line: None) as conn:
            limits = await conn.rest.load_limits()
            return [conn.paper.exchange.weights.limits, sorted(r.limit for r in limits if r.kind == "ORDERS")]

    # Act
    enforced, reported = asyncio.run(main())

    # Assert
    assert enforced == OrderLimits(4, 9)
    assert reported == [4, 9]


@pytest.mark.e2e
def test_paper_serve_enforces_the_configured_limits(tmp_path: Path) -> None:
    """`bot paper serve` reads [paper] order_limit_*: exchangeInfo says them; a second order in a minute is -1015."""
    # Arrange
    port = free_port()
    path = tmp_path / "bot.toml"
    path.write_text(f"[paper]\nport = {port}\nvolatility = 0.0\norder_limit_10s = 1\norder_limit_1m = 1\n")
    command = [sys.executable, "-m", "bot_cli", "--state-dir", str(tmp_path / "state"), "--config", str(path),
               "paper", "serve"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Act
    try:
        wait_listening(port, proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY_HEADER, timeout=5) as client:
            info = client.get("/fapi/v1/exchangeInfo").json()
            # Three: if the first two straddle a minute's end, the third still shares one with the second.
            orders = [client.post(f"/fapi/v1/order?{signed({**ENTRY, 'newClientOrderId': f'o{n}'}, now_ms())}")
                      for n in range(3)]  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)

    # Assert
    assert [r["limit"] for r in info["rateLimits"] if r["rateLimitType"] == "ORDERS"] == [1, 1]
    assert (orders[0].status_code, orders[-1].status_code) == (200, 429)
    assert orders[-1].json() == refusal(1, "MINUTE")  # both full: the minute rolls over last


# --- the meter --------------------------------------------------------------------------------


def test_a_batch_cost_counts_5_toward_10s_and_1_toward_the_minute() -> None:
    """Reference §7's batch cost: 5 (10 s) and 1 (minute); refused when the 5 do not fit."""
    # Arrange
    meter, batch = WeightMeter(OrderLimits(per_10s=12, per_1m=100)), OrderCost(per_10s=5, per_1m=1)

    # Act
    first, second = meter.add_order(T0, batch), meter.add_order(T0, batch)
    with pytest.raises(TooManyOrders) as refused:
        meter.add_order(T0 + 9_999, batch)

    # Assert
    assert [first["X-MBX-ORDER-COUNT-10S"], first["X-MBX-ORDER-COUNT-1M"]] == ["5", "1"]
    assert [second["X-MBX-ORDER-COUNT-10S"], second["X-MBX-ORDER-COUNT-1M"]] == ["10", "2"]
    assert refused.value.headers == {"X-MBX-ORDER-COUNT-10S": "10", "X-MBX-ORDER-COUNT-1M": "2", "Retry-After": "1"}
    assert meter.order_counts(T0 + 10_000) == [0, 2]


def test_when_both_windows_are_full_the_minute_is_named() -> None:
    """At the last 10 s of a full minute both are over: retrying after the 10 s would not help."""
    # Arrange
    meter = WeightMeter(OrderLimits(per_10s=1, per_1m=2))
    meter.add_order(T0)
    meter.add_order(T0 + 50_000)

    # Act
    with pytest.raises(TooManyOrders) as refused:
        meter.add_order(T0 + 55_000)

    # Assert
    assert (refused.value.status, refused.value.code) == (429, -1015)
    assert refused.value.msg == refusal(2, "MINUTE")["msg"]
    assert refused.value.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("span_ms", "now", "expected"),
    [
        (10_000, T0, 10),
        (10_000, T0 + 1, 10),
        (10_000, T0 + 9_001, 1),
        (10_000, T0 + 9_999, 1),
        (60_000, T0 + 30_500, 30),
    ],
)
def test_retry_after_is_whole_seconds_to_the_window_end_at_least_1(span_ms: int, now: int, expected: int) -> None:
    """Rounded up, so a client that waits that long is in the next window."""
    # Act / Assert
    assert seconds_left(span_ms, now) == expected


# --- configuration ----------------------------------------------------------------------------


def test_the_limits_default_to_binances_and_are_read_from_the_paper_section(tmp_path: Path) -> None:
    """Keys left out: 300 and 1,200, as the venue's own defaults; set: as written."""
    # Arrange
    unset, both = tmp_path / "unset.toml", tmp_path / "both.toml"
    unset.write_text("[paper]\nseed = 7\n")
    both.write_text("[paper]\norder_limit_10s = 5\norder_limit_1m = 20\n")

    # Act
    default, configured = load_config(unset).paper, load_config(both).paper

    # Assert
    assert OrderLimits(default.order_limit_10s, default.order_limit_1m) == BINANCE_ORDER_LIMITS == (300, 1200)
    assert (configured.order_limit_10s, configured.order_limit_1m) == (5, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order_limit_10s = 0", "paper.order_limit_10s = 0 must be a positive number of orders"),
        ("order_limit_1m = -5", "paper.order_limit_1m = -5 must be a positive number of orders"),
        ("order_limit_10s = 1.5", "paper.order_limit_10s must be int, got float 1.5"),
        ("order_limit_1m = true", "paper.order_limit_1m must be int, got bool True"),
        ("order_limit_1m = '1200'", "paper.order_limit_1m must be int, got str '1200'"),
    ],
    ids=["zero", "negative", "float", "bool", "string"],
)
def test_a_limit_that_is_not_a_positive_integer_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    """An invalid order limit is a ConfigError naming the key and the file."""
    # Arrange
    path = tmp_path / "bot.toml"
    path.write_text(f"[paper]\n{text}\n")

    # Act
    with pytest.raises(ConfigError) as err:
        load_config(path)

    # Assert
    assert str(err.value) == f"{path}: {expected}"
