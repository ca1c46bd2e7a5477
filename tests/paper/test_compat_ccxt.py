"""ccxt's binanceusdm against the paper venue, unchanged but for its URLs: REST (sync) for
orders, algo orders, positions, balance, leverage, klines, tickers, funding; ccxt.pro for
the user stream (watch_orders) and market streams. ccxt's raw answers are also checked against
the official SDK's models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest


ccxt = pytest.importorskip("ccxt")
ccxt_pro = pytest.importorskip("ccxt.pro")
rest_models = pytest.importorskip("binance_sdk_derivatives_trading_usds_futures.rest_api.models")

from bot_cli.paper import funding  # noqa: E402
from bot_cli.paper.server import PaperHandle, start_in_process  # noqa: E402
from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET, wall_ms  # noqa: E402
from tests.paper.compat import COMPAT, venue_thread  # noqa: E402


BTC = "BTC/USDT:USDT"


def point_at(exchange: Any, handle: PaperHandle) -> Any:
    """The documented override: every fapi URL (and the ws base) on the venue."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and name.startswith("fapi"):
            exchange.urls["api"][name] = handle.rest_url + url[url.index("/", len("https://")):]
    if "ws" in exchange.urls["api"]:  # ccxt.pro; it routes to /market, /public, /private itself
        exchange.urls["api"]["ws"]["linear"] = f"ws://127.0.0.1:{handle.port}/ws"
    return exchange


def settings(**options: Any) -> dict[str, Any]:
    """The paper key; no currency list (ccxt would ask the spot API, which the venue is not)."""
    options = {"fetchCurrencies": False, **options}
    return {
        "apiKey": PAPER_API_KEY,
        "secret": PAPER_API_SECRET,
        "enableLastJsonResponse": True,  # for the checks against the SDK's models
        "options": options,
    }


class WallClock:
    """Wall time plus an offset the test moves: ccxt learns it from GET /fapi/v1/time."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return wall_ms() + self.offset


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[PaperHandle]:
    with venue_thread(tmp_path, volatility=0.0) as handle:
        yield handle


@pytest.fixture
def usdm(venue: PaperHandle) -> Any:
    return point_at(ccxt.binanceusdm(settings()), venue)


def check_last(e: Any, call: str, model: Any, **expect: Any) -> None:
    found = COMPAT.check(call, model, e.last_json_response, **expect)
    assert not found, "\n".join(map(str, found))


# --- market data ------------------------------------------------------------------------------


def test_market_data_calls(usdm: Any) -> None:
    """fetch_ticker(s), fetch_order_book, fetch_bids_asks, fetch_ohlcv (a warm-up's worth),
    mark/index/premium OHLCV, fetch_funding_rate(_history)."""
    # Act
    usdm.load_markets()
    ticker = usdm.fetch_ticker(BTC)
    check_last(usdm, "ccxt fetch_ticker", rest_models.Ticker24hrPriceChangeStatisticsResponse1)
    tickers = usdm.fetch_tickers()
    book = usdm.fetch_order_book(BTC, 20)
    quotes = usdm.fetch_bids_asks([BTC])
    candles = usdm.fetch_ohlcv(BTC, "1m", limit=1000)
    marks = usdm.fetch_mark_ohlcv(BTC, "1h", limit=24)
    index = usdm.fetch_index_ohlcv(BTC, "1h", limit=24)
    premium = usdm.fetch_premium_index_ohlcv(BTC, "1h", limit=24)
    rate = usdm.fetch_funding_rate(BTC)
    rates = usdm.fetch_funding_rate_history(BTC, limit=10)
    check_last(usdm, "ccxt fetch_funding_rate_history",
               rest_models.GetFundingRateHistoryResponseInner, absent=frozenset({"rateType"}))

    # Assert
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert len(tickers) == 6
    assert book["bids"][0][0] < book["asks"][0][0]
    assert len(book["bids"]) == 20
    assert quotes[BTC]["bid"] < quotes[BTC]["ask"]
    assert len(candles) == 1000
    assert all(c[3] <= c[1] <= c[2] for c in candles)
    assert [c[0] for c in marks] == [c[0] for c in index] == [c[0] for c in premium]
    assert rate["fundingRate"] == 0.0001
    assert rate["markPrice"] == ticker["last"]
    assert [r["timestamp"] % funding.PERIOD_MS for r in rates] == [0] * 10


# --- account and orders -----------------------------------------------------------------------


def test_leverage_margin_mode_and_positions(usdm: Any) -> None:
    """set_leverage, set_margin_mode, fetch_leverage(_tiers), fetch_margin_mode, fetch_positions."""
    # Act
    usdm.set_leverage(10, BTC)
    usdm.set_margin_mode("isolated", BTC)
    usdm.create_order(BTC, "market", "buy", 0.01)
    leverage = usdm.fetch_leverage(BTC)
    mode = usdm.fetch_margin_mode(BTC)
    tiers = usdm.fetch_leverage_tiers([BTC])
    brackets = rest_models.NotionalAndLeverageBracketsResponse1Inner
    check_last(usdm, "ccxt fetch_leverage_tiers", brackets)
    positions = usdm.fetch_positions([BTC])
    check_last(usdm, "ccxt fetch_positions", rest_models.PositionInformationV3ResponseInner)
    balance = usdm.fetch_balance()

    # Assert
    assert (leverage["longLeverage"], mode["marginMode"]) == (10, "isolated")
    assert tiers[BTC][0]["maxLeverage"] == 125
    (position,) = positions
    assert (position["contracts"], position["side"]) == (0.01, "long")  # v3 carries no leverage
    assert position["marginMode"] == "isolated"
    assert balance["USDT"]["used"] > 0


def test_orders_algo_orders_and_trades(usdm: Any) -> None:
    """A market entry's average price (from GET order: the 2026 RESULT answer has no avgPrice,
    as the SDK's model), a resting limit, a stop-loss; open orders, cancel, trades."""
    # Act
    entry = usdm.create_order(BTC, "market", "buy", 0.01)
    limit = usdm.create_order(BTC, "limit", "buy", 0.01, 90000)
    stop = usdm.create_order(BTC, "market", "sell", 0.01, None,
                             {"stopLossPrice": 90000, "reduceOnly": True})  # fmt: skip
    open_orders = usdm.fetch_open_orders(BTC)
    usdm.cancel_order(limit["id"], BTC)
    stops = usdm.fetch_open_orders(BTC, params={"trigger": True})
    usdm.cancel_order(stop["id"], BTC, params={"trigger": True})
    trades = usdm.fetch_my_trades(BTC)
    filled = usdm.fetch_order(entry["id"], BTC)
    orders = usdm.fetch_orders(BTC)
    check_last(usdm, "ccxt fetch_orders", rest_models.AllOrdersResponseInner,
               absent=frozenset({"activatePrice", "priceRate"}))  # fmt: skip

    # Assert
    assert entry["status"] == "closed"
    assert entry["average"] is None  # what ccxt makes of Binance's 2026 RESULT answer
    assert filled["average"] == trades[0]["price"]
    assert [o["id"] for o in open_orders] == [limit["id"]]
    assert [o["id"] for o in stops] == [stop["id"]]
    assert stops[0]["triggerPrice"] == 90000
    statuses = {o["id"]: o["status"] for o in orders}
    assert statuses == {entry["id"]: "closed", limit["id"]: "canceled"}


def test_funding_shows_in_ccxt_funding_history(tmp_path: Path) -> None:
    """A position held across a funding time: fetch_funding_history lists the payment."""
    # Arrange
    clock = WallClock()
    with venue_thread(tmp_path, volatility=0.0, clock=clock) as handle:
        usdm = point_at(ccxt.binanceusdm(settings(adjustForTimeDifference=True)), handle)
        usdm.load_markets()
        usdm.create_order(BTC, "market", "sell", 0.1)
        clock.offset = funding.next_time(clock()) + 1000 - wall_ms()  # past a funding time
        usdm.load_time_difference()

        # Act
        history = usdm.fetch_funding_history(BTC)
        balance = usdm.fetch_balance()

    # Assert
    (paid,) = history
    assert paid["amount"] > 0  # a short receives the positive rate
    assert Decimal(str(balance["USDT"]["total"])) > Decimal(9990)


# --- ccxt.pro ---------------------------------------------------------------------------------


def test_ccxt_pro_watches_orders_and_market_streams(tmp_path: Path) -> None:
    """watch_orders over /private/ws?listenKey=; watch_ohlcv, watch_bids_asks, watch_mark_price
    over the routed /market/ws and /public/ws."""

    # Arrange
    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0005)
        usdm = point_at(ccxt_pro.binanceusdm(settings()), handle)
        try:
            await usdm.load_markets()
            watching = asyncio.create_task(usdm.watch_orders(BTC))
            await asyncio.sleep(0)  # let it subscribe before the order exists
            placed = await usdm.create_order(BTC, "market", "buy", 0.01)
            seen = await asyncio.wait_for(watching, 10)
            candles = await asyncio.wait_for(usdm.watch_ohlcv(BTC, "1m"), 10)
            quotes = await asyncio.wait_for(usdm.watch_bids_asks([BTC]), 10)
            mark = await asyncio.wait_for(usdm.watch_mark_price(BTC), 10)
            return placed, seen, candles, quotes, mark
        finally:
            await usdm.close()
            await handle.stop()

    # Act
    placed, seen, candles, quotes, mark = asyncio.run(main())

    # Assert
    assert placed["id"] in {o["id"] for o in seen}
    assert candles
    assert candles[-1][3] <= candles[-1][4] <= candles[-1][2]
    assert quotes[BTC]["bid"] < quotes[BTC]["ask"]
    assert mark["symbol"] == BTC
    assert mark["markPrice"] > 0
