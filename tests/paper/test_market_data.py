"""Market data, leverage and margin type, funding: the venue's REST app in memory, on a
settable clock (no server, no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.paper import funding
from bot_cli.paper.app import create_app
from bot_cli.paper.klines import INTERVALS, bar_at
from bot_cli.paper.service import PaperExchange
from tests.paper import KEY_HEADER, T0, Clock, signed


BTC = "BTCUSDT"
HOUR_MS = 3_600_000
Steps = Callable[[Any, PaperExchange, Clock], Awaitable[Any]]


class Client:
    """Signed and unsigned calls on the in-memory app, timestamped with the venue's clock."""

    def __init__(self, http: httpx.AsyncClient, clock: Clock) -> None:
        self.http, self.clock = http, clock

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.http.get(path, params=params)).json()

    async def signed(self, method: str, path: str, **params: Any) -> httpx.Response:
        return await self.http.request(method, f"{path}?{signed(params, self.clock())}")


@contextlib.asynccontextmanager
async def paper(tmp_path: Path, clock: Clock, seed: int = 7) -> AsyncIterator[PaperExchange]:
    exchange = PaperExchange(tmp_path, clock=clock, seed=seed)
    exchange.open()
    try:
        yield exchange
    finally:
        exchange.close()


def run(tmp_path: Path, steps: Steps, clock: Clock | None = None, seed: int = 7) -> Any:
    clock = clock or Clock()

    async def main() -> Any:
        async with paper(tmp_path, clock, seed) as ex:
            transport = httpx.ASGITransport(app=create_app(ex))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://paper", headers=KEY_HEADER
            ) as http:
                return await steps(Client(http, clock), ex, clock)

    return asyncio.run(main())


# --- klines -----------------------------------------------------------------------------------


def test_klines_are_the_same_for_the_same_seed_and_differ_for_another(tmp_path: Path) -> None:
    """A strategy warming up twice on one seed sees the same history; another seed differs."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        return await c.get("/fapi/v1/klines", symbol=BTC, interval="1h", limit=500)

    # Act
    one = run(tmp_path / "a", steps)
    two = run(tmp_path / "b", steps)
    other = run(tmp_path / "c", steps, seed=8)

    # Assert
    assert len(one) == 500
    assert one == two
    assert [r[1:5] for r in other] != [r[1:5] for r in one]
    assert one[-1][0] == bar_at("1h", T0).open_time  # the last bar holds now


def test_an_hour_bar_is_its_minutes_since_the_anchor(tmp_path: Path) -> None:
    """After the anchor, bars are the exact path: the 1h bar's high/low are its 1m bars'."""
    # Arrange
    clock = Clock(T0 - T0 % HOUR_MS)

    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        clock.advance(HOUR_MS)
        hour = await c.get("/fapi/v1/klines", symbol=BTC, interval="1h", limit=2)
        minutes = await c.get("/fapi/v1/klines", symbol=BTC, interval="1m", limit=60,
                              startTime=hour[0][0])  # fmt: skip
        return hour[0], minutes

    # Act
    hour, minutes = run(tmp_path, steps, clock)

    # Assert
    assert len(minutes) == 60
    assert D(hour[2]) == max(D(m[2]) for m in minutes)
    assert D(hour[3]) == min(D(m[3]) for m in minutes)
    assert (hour[1], hour[4]) == (minutes[0][1], minutes[-1][4])


@pytest.mark.parametrize("interval", INTERVALS)
def test_every_binance_interval_serves_its_bars(tmp_path: Path, interval: str) -> None:
    """Each interval answers bars that end where the next begins, the last holding now."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        return await c.get("/fapi/v1/klines", symbol=BTC, interval=interval, limit=5)

    # Act
    rows = run(tmp_path, steps)

    # Assert
    assert len(rows) == 5
    assert all(a[6] + 1 == b[0] for a, b in itertools.pairwise(rows))
    assert rows[-1][0] <= T0 <= rows[-1][6]


def test_a_bad_interval_is_refused(tmp_path: Path) -> None:
    """-1120 Invalid interval, as Binance answers."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        return await c.get("/fapi/v1/klines", symbol=BTC, interval="7m")

    # Act / Assert
    assert run(tmp_path, steps)["code"] == -1120


# --- tickers and depth ------------------------------------------------------------------------


def test_book_ticker_depth_and_ticker_sit_around_the_mark(tmp_path: Path) -> None:
    """Best bid = mark, best ask one tick above; the 24 h ticker ends at the mark."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        book = await c.get("/fapi/v1/ticker/bookTicker", symbol=BTC)
        depth = await c.get("/fapi/v1/depth", symbol=BTC, limit=10)
        day = await c.get("/fapi/v1/ticker/24hr", symbol=BTC)
        return book, depth, day, ex.book.mark(BTC, clock())

    # Act
    book, depth, day, mark = run(tmp_path, steps)

    # Assert
    assert (D(book["bidPrice"]), D(book["askPrice"])) == (mark, mark + D("0.1"))
    assert [D(p) for p, _ in depth["bids"]] == [mark - D("0.1") * i for i in range(10)]
    assert D(depth["asks"][0][0]) == mark + D("0.1")
    assert D(day["lastPrice"]) == mark
    assert D(day["lowPrice"]) <= mark <= D(day["highPrice"])
    assert (day["openTime"], day["closeTime"]) == (T0 - 86_400_000, T0)


# --- leverage and margin type -----------------------------------------------------------------


def test_leverage_and_margin_type_are_per_symbol_state_that_survives_a_restart(tmp_path: Path) -> None:
    """Set 7x isolated on BTCUSDT; a restarted venue still reports it; ETHUSDT keeps 20x cross."""
    # Arrange
    clock = Clock()

    async def configure(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        lev = await c.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=7)
        kind = await c.signed("POST", "/fapi/v1/marginType", symbol=BTC, marginType="ISOLATED")
        again = await c.signed("POST", "/fapi/v1/marginType", symbol=BTC, marginType="ISOLATED")
        return lev.json(), kind.json(), again.json()

    async def read(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        rows = await c.signed("GET", "/fapi/v2/positionRisk")
        return {r["symbol"]: (r["leverage"], r["marginType"]) for r in rows.json()}

    # Act
    lev, kind, again = run(tmp_path, configure, clock)
    settings = run(tmp_path, read, clock)

    # Assert
    assert lev == {"leverage": 7, "maxNotionalValue": "230000000", "symbol": BTC}
    assert kind == {"code": 200, "msg": "success"}
    assert again["code"] == -4046
    assert settings[BTC] == ("7", "isolated")
    assert settings["ETHUSDT"] == ("20", "cross")


@pytest.mark.parametrize(
    ("leverage", "code"),
    [(0, -4028), (126, -4028), (125, None), (1, None)],
    ids=["zero", "above the first bracket", "the first bracket's", "one"],
)
def test_leverage_is_bounded_by_the_brackets(tmp_path: Path, leverage: int, code: int | None) -> None:
    """1 up to the first bracket's initialLeverage (125 for BTCUSDT); else -4028."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        return (await c.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=leverage)).json()

    # Act
    answer = run(tmp_path, steps)

    # Assert
    assert answer.get("code") == code


def test_margin_type_cannot_change_with_a_position_or_open_orders(tmp_path: Path) -> None:
    """-4047 with a resting order, -4048 with a position."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        order = {"symbol": BTC, "side": "BUY", "quantity": "0.010"}
        await c.signed("POST", "/fapi/v1/order", **order, type="LIMIT", timeInForce="GTC",
                       price="90000.0")  # fmt: skip
        isolated = {"symbol": BTC, "marginType": "ISOLATED"}
        with_order = await c.signed("POST", "/fapi/v1/marginType", **isolated)
        await c.signed("DELETE", "/fapi/v1/allOpenOrders", symbol=BTC)
        await c.signed("POST", "/fapi/v1/order", **order, type="MARKET")
        with_position = await c.signed("POST", "/fapi/v1/marginType", **isolated)
        return with_order.json()["code"], with_position.json()["code"]

    # Act / Assert
    assert run(tmp_path, steps) == (-4047, -4048)


@pytest.mark.parametrize(
    ("leverage", "quantity", "code"),
    [
        (20, "1.000", None),  # ~97k notional / 20 = ~4.9k of the 10k wallet
        (20, "2.100", -2019),  # ~204k / 20 = ~10.2k: more than the wallet
        (1, "0.100", None),
        (1, "0.110", -2019),  # ~10.7k at 1x
        (125, "0.600", -2027),  # ~58k: beyond the 50k a 125x position may hold
    ],
    ids=["fits", "margin short", "1x fits", "1x short", "bracket cap"],
)
def test_initial_margin_is_checked_when_the_order_arrives(
    tmp_path: Path, leverage: int, quantity: str, code: int | None
) -> None:
    """The order's initial margin must fit the available balance (-2019), its notional the
    leverage's bracket (-2027)."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        await c.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=leverage)
        return await c.signed("POST", "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET",
                              quantity=quantity)  # fmt: skip

    # Act
    answer = run(tmp_path, steps)

    # Assert
    assert answer.json().get("code") == code, answer.json()


def test_a_reduce_only_order_needs_no_margin(tmp_path: Path) -> None:
    """Closing a position is never refused for margin, even at 1x with little left."""

    # Arrange
    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        order = {"symbol": BTC, "type": "MARKET", "quantity": "0.100"}
        await c.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=1)
        opened = await c.signed("POST", "/fapi/v1/order", side="BUY", **order)
        closed = await c.signed("POST", "/fapi/v1/order", side="SELL", reduceOnly="true", **order)
        return opened.status_code, closed.status_code

    # Act / Assert
    assert run(tmp_path, steps) == (200, 200)


# --- funding ----------------------------------------------------------------------------------


def test_funding_every_eight_hours_moves_the_balance_and_is_income(tmp_path: Path) -> None:
    """A long pays 0.01 % of its notional at each funding time: wallet, income and event agree."""
    # Arrange
    clock = Clock(funding.next_time(T0) - 60_000)  # a minute before a funding time

    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        await c.signed("POST", "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET",
                       quantity="0.100")  # fmt: skip
        before = ex.book.balance
        clock.advance(2 * 60_000 + 2 * funding.PERIOD_MS)  # three funding times pass
        ex.sync()
        paid = await c.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")
        return before, ex.book.balance, paid.json()

    # Act
    before, after, income = run(tmp_path, steps, clock)

    # Assert
    assert [r["incomeType"] for r in income] == ["FUNDING_FEE"] * 3
    total = sum(D(r["income"]) for r in income)
    assert total < 0
    assert after == before + total
    assert [r["time"] for r in income] == [
        funding.next_time(T0) + i * funding.PERIOD_MS for i in range(3)
    ]


def test_a_funding_payment_is_pushed_as_account_update_funding_fee(tmp_path: Path) -> None:
    """ACCOUNT_UPDATE m=FUNDING_FEE, the balance change in bc, no position row (cross)."""
    # Arrange
    clock = Clock(funding.next_time(T0) - 60_000)
    published: list[dict[str, Any]] = []

    async def steps(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        await c.signed("POST", "/fapi/v1/order", symbol=BTC, side="SELL", type="MARKET",
                       quantity="0.100")  # fmt: skip
        ex.hub.publish = lambda key, events: published.extend(events)  # type: ignore[method-assign]
        clock.advance(120_000)
        ex.sync()
        return ex.book.balance

    # Act
    balance = run(tmp_path, steps, clock)

    # Assert
    (event,) = [e for e in published if e["e"] == "ACCOUNT_UPDATE"]
    assert event["a"]["m"] == "FUNDING_FEE"
    assert event["a"]["P"] == []
    (asset,) = event["a"]["B"]
    assert D(asset["bc"]) > 0  # a short receives a positive rate
    assert D(asset["wb"]) == balance


def test_funding_payments_survive_a_restart(tmp_path: Path) -> None:
    """The income a funding time produced is still there after the venue restarts."""
    # Arrange
    clock = Clock(funding.next_time(T0) - 60_000)

    async def pay(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        await c.signed("POST", "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET",
                       quantity="0.100")  # fmt: skip
        clock.advance(120_000)
        ex.sync()
        return (await c.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")).json()

    async def read(c: Client, ex: PaperExchange, clock: Clock) -> Any:
        return (await c.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")).json()

    # Act
    before = run(tmp_path, pay, clock)
    after = run(tmp_path, read, clock)

    # Assert
    assert len(before) == 1
    assert after == before
