"""Binance's official Python SDK against the paper venue, unchanged: every answer is validated
against the SDK's own response models (strict types, key sets both ways; see ``compat``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel


pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.configuration import ConfigurationRestAPI
from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)
from binance_sdk_derivatives_trading_usds_futures.rest_api import models
from binance_sdk_derivatives_trading_usds_futures.rest_api.rest_api import (
    DerivativesTradingUsdsFuturesRestAPI,
)

from bot_cli.paper.klines import INTERVALS
from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET
from tests.paper.compat import COMPAT, Mismatch, venue_thread


BTC = "BTCUSDT"
# The SDK's parameters are its enums (it sends their values), not strings.
BUY, MARKET = models.NewOrderSideEnum.BUY, models.NewOrderTypeEnum.MARKET
# Documented only for TRAILING_STOP_MARKET, which lives in the Algo service since 2025-12.
TRAILING_ONLY = frozenset({"activatePrice", "priceRate"})
# The docs' fundingRate example has no rateType; the SDK model declares it (newer, undocumented).
FUNDING_ABSENT = frozenset({"rateType"})


class Sdk:
    """The SDK's REST client on the venue, with each raw answer kept for the checks."""

    def __init__(self, base_url: str) -> None:
        config = ConfigurationRestAPI(
            api_key=PAPER_API_KEY, api_secret=PAPER_API_SECRET, base_path=base_url, retries=0
        )
        self.rest: DerivativesTradingUsdsFuturesRestAPI = DerivativesTradingUsdsFutures(
            config_rest_api=config
        ).rest_api
        self.raw: Any = None
        # requests' public response hook: the SDK keeps only its parsed model
        self.rest._session.hooks["response"].append(self._keep)

    def _keep(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.raw = json.loads(response.text) if response.text else None

    def call(
        self,
        name: str,
        fn: Callable[[DerivativesTradingUsdsFuturesRestAPI], Any],
        *,
        absent: frozenset[str] = frozenset(),
        extra: frozenset[str] = frozenset(),
    ) -> Any:
        """Make the call; check its raw answer against the model the SDK parsed it into."""
        data = fn(self.rest).data()
        model = _model_of(data)
        if model is not None:
            COMPAT.check(name, model, self.raw, absent=absent, extra=extra)
        return data


def _model_of(data: Any) -> Any:
    """The pydantic model class the SDK parsed into (through its oneOf wrappers)."""
    inner = getattr(data, "actual_instance", data)
    if isinstance(inner, list):
        return type(inner[0]) if inner and isinstance(inner[0], BaseModel) else None
    return type(inner) if isinstance(inner, BaseModel) else None


@pytest.fixture
def sdk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Sdk]:
    caplog.set_level(logging.WARNING)
    with venue_thread(tmp_path, volatility=0.0) as handle:
        yield Sdk(handle.rest_url)
    relaxed = [r.getMessage() for r in caplog.records if "response" in r.getMessage()]
    assert not relaxed, relaxed  # the SDK fell back to relaxed typing or to the raw payload


def assert_no_mismatch(found: list[Mismatch]) -> None:
    assert not found, "\n".join(str(m) for m in found)


def mismatches_since(before: int) -> list[Mismatch]:
    return COMPAT.mismatches[before:]


# --- market data ------------------------------------------------------------------------------


def test_market_data_answers_parse_strictly(sdk: Sdk) -> None:
    """Time, exchange info, prices, tickers, depth, funding: each answer fits its SDK model."""
    # Arrange
    before = len(COMPAT.mismatches)

    # Act
    sdk.call("time", lambda r: r.check_server_time())
    info = sdk.call("exchangeInfo", lambda r: r.exchange_information())
    sdk.call("ticker/price", lambda r: r.symbol_price_ticker(symbol=BTC))
    sdk.call("premiumIndex", lambda r: r.mark_price(symbol=BTC))
    sdk.call("premiumIndex (all)", lambda r: r.mark_price())
    ticker = sdk.call("ticker/24hr", lambda r: r.ticker24hr_price_change_statistics(symbol=BTC))
    sdk.call("ticker/24hr (all)", lambda r: r.ticker24hr_price_change_statistics())
    book = sdk.call("ticker/bookTicker", lambda r: r.symbol_order_book_ticker(symbol=BTC))
    depth = sdk.call("depth", lambda r: r.order_book(symbol=BTC, limit=5))
    sdk.call("fundingRate", lambda r: r.get_funding_rate_history(symbol=BTC), absent=FUNDING_ABSENT)
    sdk.call("fundingInfo", lambda r: r.get_funding_rate_info())

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert {s.symbol for s in info.symbols} >= {BTC, "ETHUSDT"}
    best = book.actual_instance
    assert float(best.bid_price) < float(best.ask_price)
    assert (len(depth.bids), len(depth.asks)) == (5, 5)
    stats = ticker.actual_instance
    assert float(stats.low_price) <= float(stats.last_price) <= float(stats.high_price)


@pytest.mark.parametrize("interval", INTERVALS)
def test_klines_of_every_interval(sdk: Sdk, interval: str) -> None:
    """Klines, mark/index/premium klines: Binance's 12 columns, consistent bars, in time order."""
    # Arrange
    kline, mark_kline = models.KlineCandlestickDataIntervalEnum, models.MarkPriceKlineCandlestickDataIntervalEnum
    index_kline = models.IndexPriceKlineCandlestickDataIntervalEnum
    premium_kline = models.PremiumIndexKlineDataIntervalEnum

    # Act
    rows = sdk.call("klines", lambda r: r.kline_candlestick_data(BTC, kline(interval), limit=3))
    mark = sdk.call("markPriceKlines",
                    lambda r: r.mark_price_kline_candlestick_data(BTC, mark_kline(interval), limit=3))
    index = sdk.call("indexPriceKlines",
                     lambda r: r.index_price_kline_candlestick_data(BTC, index_kline(interval), limit=3))
    premium = sdk.call("premiumIndexKlines",
                       lambda r: r.premium_index_kline_data(BTC, premium_kline(interval), limit=3))  # fmt: skip

    # Assert
    for table in (rows, mark, index, premium):
        assert len(table) == 3
        assert all(_kline_types(row) for row in table), table
        assert [r[0] for r in table] == sorted(r[0] for r in table)
    for _open_time, o, h, lo, c, *_ in rows:
        assert float(lo) <= min(float(o), float(c)) <= max(float(o), float(c)) <= float(h)
    assert [r[1:5] for r in mark] == [r[1:5] for r in index] == [r[1:5] for r in rows]


def _kline_types(row: list[Any]) -> bool:
    """[int, str x5, int, str, int, str, str, str]: Binance's kline row."""
    ints = (0, 6, 8)
    return len(row) == 12 and all(
        isinstance(v, int) if i in ints else isinstance(v, str) for i, v in enumerate(row)
    )


# --- orders -----------------------------------------------------------------------------------


def test_orders_and_algo_orders_parse_strictly(sdk: Sdk) -> None:
    """New (ACK and RESULT), query, open, all, cancel; algo new, query, open, all, cancel."""
    # Arrange
    before = len(COMPAT.mismatches)
    sdk.call("order MARKET RESULT", lambda r: r.new_order(
        symbol=BTC, side=BUY, type=MARKET, quantity=0.01,
        new_order_resp_type=models.NewOrderNewOrderRespTypeEnum.RESULT,
    ))  # fmt: skip

    # Act
    sdk.call("order LIMIT", lambda r: r.new_order(
        symbol=BTC, side=BUY, type=models.NewOrderTypeEnum.LIMIT, quantity=0.01, price=90000,
        time_in_force=models.NewOrderTimeInForceEnum.GTC, new_client_order_id="sdk-e1",
    ))  # fmt: skip
    sdk.call("GET order", lambda r: r.query_order(BTC, orig_client_order_id="sdk-e1"),
             extra=TRAILING_ONLY, absent=TRAILING_ONLY)  # fmt: skip
    sdk.call("openOrder", lambda r: r.query_current_open_order(BTC, orig_client_order_id="sdk-e1"),
             absent=TRAILING_ONLY)  # fmt: skip
    sdk.call("openOrders", lambda r: r.current_all_open_orders(symbol=BTC), absent=TRAILING_ONLY)
    sdk.call("allOrders", lambda r: r.all_orders(BTC), absent=TRAILING_ONLY)
    sdk.call("DELETE order", lambda r: r.cancel_order(BTC, orig_client_order_id="sdk-e1"),
             absent=TRAILING_ONLY)  # fmt: skip
    sdk.call("algoOrder", lambda r: r.new_algo_order(
        algo_type=models.NewAlgoOrderAlgoTypeEnum.CONDITIONAL, symbol=BTC, side=models.NewAlgoOrderSideEnum.SELL,
        type=models.NewAlgoOrderTypeEnum.STOP_MARKET, quantity=0.01, trigger_price=90000,
        reduce_only=models.NewAlgoOrderReduceOnlyEnum.TRUE, client_algo_id="sdk-sl1",
    ))  # fmt: skip
    sdk.call("GET algoOrder", lambda r: r.query_algo_order(client_algo_id="sdk-sl1"))
    sdk.call("openAlgoOrders", lambda r: r.current_all_algo_open_orders())
    sdk.call("allAlgoOrders", lambda r: r.query_all_algo_orders(BTC))
    cancelled = sdk.call("DELETE algoOrder", lambda r: r.cancel_algo_order(client_algo_id="sdk-sl1"))
    sdk.call("DELETE allOpenOrders", lambda r: r.cancel_all_open_orders(BTC))
    sdk.call("DELETE algoOpenOrders", lambda r: r.cancel_all_algo_open_orders(BTC))
    trades = sdk.call("userTrades", lambda r: r.account_trade_list(BTC))

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert cancelled.client_algo_id == "sdk-sl1"
    assert len(trades) == 1
    assert trades[0].qty == "0.010"


def test_an_order_the_balance_cannot_carry_is_refused_with_2019(sdk: Sdk) -> None:
    """5 BTC at 1x needs ~485k USDT of margin; the paper wallet holds 10k: -2019."""
    # Arrange
    sdk.call("leverage", lambda r: r.change_initial_leverage(BTC, 1))

    # Act
    with pytest.raises(BadRequestError) as refused:
        sdk.rest.new_order(symbol=BTC, side=BUY, type=MARKET, quantity=5)

    # Assert
    assert refused.value.status_code == -2019


# --- account ----------------------------------------------------------------------------------


def test_account_positions_and_settings_parse_strictly(sdk: Sdk) -> None:
    """Leverage, margin type, brackets, modes, positions, account, income, listenKey."""
    # Arrange
    before = len(COMPAT.mismatches)
    sdk.call("leverage", lambda r: r.change_initial_leverage(BTC, 10))
    sdk.call("marginType", lambda r: r.change_margin_type(BTC, models.ChangeMarginTypeMarginTypeEnum.ISOLATED))
    sdk.rest.new_order(symbol=BTC, side=BUY, type=MARKET, quantity=0.01)

    # Act
    sdk.call("leverageBracket", lambda r: r.notional_and_leverage_brackets(symbol=BTC))
    sdk.call("leverageBracket (all)", lambda r: r.notional_and_leverage_brackets())
    config = sdk.call("symbolConfig", lambda r: r.symbol_configuration(symbol=BTC))
    sdk.call("multiAssetsMargin", lambda r: r.get_current_multi_assets_mode())
    sdk.call("positionSide/dual", lambda r: r.get_current_position_mode())
    v2 = sdk.call("positionRisk v2", lambda r: r.position_information_v2(symbol=BTC))
    v3 = sdk.call("positionRisk v3", lambda r: r.position_information_v3())
    sdk.call("account v3", lambda r: r.account_information_v3())
    sdk.call("income", lambda r: r.get_income_history())
    key = sdk.call("POST listenKey", lambda r: r.start_user_data_stream())
    sdk.call("PUT listenKey", lambda r: r.keepalive_user_data_stream())

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert (config[0].leverage, config[0].margin_type) == (10, "ISOLATED")
    assert (v2[0].leverage, v2[0].margin_type, v2[0].position_amt) == ("10", "isolated", "0.010")
    assert v3[0].isolated_wallet != "0"
    assert len(key.listen_key) == 64


# --- the checker itself -----------------------------------------------------------------------


def test_the_checker_names_the_call_and_the_field_that_differs() -> None:
    """The docs' exchangeInfo symbol (multiplierDecimal an int, "OrderType") fails the SDK model
    by name; the venue's own symbol passes."""
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import (
        ExchangeInformationResponseSymbolsInner,
    )

    from bot_cli.paper.info import symbol_info
    from bot_cli.paper.market import SYMBOLS
    from tests.paper import fixture
    from tests.paper.compat import Compat

    # Arrange
    checker = Compat()

    # Act
    docs = checker.check("docs", ExchangeInformationResponseSymbolsInner,
                         fixture("exchange_info_symbol"))  # fmt: skip
    ours = checker.check("venue", ExchangeInformationResponseSymbolsInner,
                         symbol_info(SYMBOLS[BTC]))  # fmt: skip

    # Assert
    assert {(m.field, m.problem.split(" (")[0]) for m in docs} >= {
        ("filters.6.multiplierDecimal", "Input should be a valid string"),
        ("OrderType", "not in the SDK model"),
        ("orderTypes", "declared by the SDK model, absent"),
    }
    assert all(m.call.startswith("docs") for m in docs)
    assert ours == []
