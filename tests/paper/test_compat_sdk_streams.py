"""The official SDK's WebSocket streams client against the paper venue, unchanged: it opens
/market/stream, /public/stream and /private/stream, and parses every user-stream event kind
and the market streams into its models (never handing on a raw dict)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pydantic import BaseModel


pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.configuration import ConfigurationWebSocketStreams
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models

from bot_cli.paper import funding
from bot_cli.paper.server import PaperHandle, start_in_process
from bot_cli.paper.service import LISTEN_KEY_TTL_MS
from tests.paper import KEY_HEADER, SL, T0, Clock, frames_until_closed, poll, signed
from tests.paper.compat import COMPAT


BTC = "BTCUSDT"
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "ORDER_TRADE_UPDATE": models.OrderTradeUpdate,
    "ACCOUNT_UPDATE": models.AccountUpdate,
    "ALGO_UPDATE": models.AlgoUpdate,
    "ACCOUNT_CONFIG_UPDATE": models.AccountConfigUpdate,
    "listenKeyExpired": models.ListenKeyExpired,
}
# "e" is how the SDK picks the model, not one of its fields; the rest are sent only sometimes:
# M, AP, cr (trailing stops), rm (a refused trigger), ia, ai (multi-assets), S (undocumented).
EVENT_EXTRA = frozenset({"e"})
EVENT_ABSENT = frozenset({"M", "AP", "cr", "rm", "ia", "ai", "S"})
Steps = Callable[[PaperHandle, httpx.AsyncClient, Clock], Awaitable[Any]]


def run(tmp_path: Path, steps: Steps, clock: Clock) -> Any:
    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0, clock=clock)
        try:
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
                return await steps(handle, client, clock)
        finally:
            await handle.stop()

    return asyncio.run(main())


def sdk_streams(handle: PaperHandle) -> Any:
    config = ConfigurationWebSocketStreams(stream_url=f"ws://127.0.0.1:{handle.port}")
    return DerivativesTradingUsdsFutures(config_ws_streams=config).websocket_streams


async def post(client: httpx.AsyncClient, clock: Clock, path: str, **params: Any) -> Any:
    return (await client.post(f"{path}?{signed(params, clock())}")).json()


def test_the_user_data_client_parses_every_event_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Leverage, an entry, its fill, a stop-loss, funding, key expiry: each a parsed model."""
    # Arrange
    caplog.set_level(logging.WARNING)
    clock = Clock(funding.next_time(T0) - 60_000)
    parsed: list[Any] = []
    raw: list[dict[str, Any]] = []

    async def steps(handle: PaperHandle, client: httpx.AsyncClient, clock: Clock) -> Any:
        key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        connection = await sdk_streams(handle).create_connection()
        stream = await connection.user_data(key)
        stream.on("message", parsed.append)
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await poll(lambda: handle.exchange.hub.count() == 2, what="both user sockets")
            await post(client, clock, "/fapi/v1/leverage", symbol=BTC, leverage=10)
            await post(client, clock, "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET", quantity="0.010")
            await post(client, clock, "/fapi/v1/algoOrder", **SL)
            clock.advance(120_000)  # a funding time passes
            await poll(lambda: len(parsed) >= 6, what="six events parsed by the SDK")
            clock.advance(LISTEN_KEY_TTL_MS)  # no keep-alive: the key expires
            await poll(lambda: len(parsed) >= 7, what="listenKeyExpired parsed by the SDK")
            frames, _ = await frames_until_closed(ws)
            raw.extend(json.loads(frame) for frame in frames)
        await connection.close_connection(close_session=True)

    # Act
    run(tmp_path, steps, clock)

    # Assert
    assert [type(p.actual_instance).__name__ for p in parsed] == [
        "AccountConfigUpdate", "OrderTradeUpdate", "OrderTradeUpdate", "AccountUpdate",
        "AlgoUpdate", "AccountUpdate", "ListenKeyExpired",
    ]  # fmt: skip
    assert parsed[5].actual_instance.a.m == "FUNDING_FEE"
    for event in raw:
        found = COMPAT.check(f"user stream {event['e']}", EVENT_MODELS[event["e"]], event,
                             absent=EVENT_ABSENT, extra=EVENT_EXTRA)  # fmt: skip
        assert not found, "\n".join(map(str, found))
    assert [r.getMessage() for r in caplog.records if "parse" in r.getMessage().lower()] == []


def test_the_market_stream_client_gets_parsed_market_events(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """mark_price_stream, kline and book ticker streams through the SDK, parsed strictly."""
    # Arrange
    caplog.set_level(logging.WARNING)
    got: dict[str, list[Any]] = {"mark": [], "kline": [], "book": [], "agg": []}

    async def steps(handle: PaperHandle, client: httpx.AsyncClient, clock: Clock) -> Any:
        connection = await sdk_streams(handle).create_connection()
        subscriptions: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("mark", lambda: connection.mark_price_stream(symbol="btcusdt")),
            ("kline", lambda: connection.kline_candlestick_streams(symbol="btcusdt", interval="1m")),
            ("book", lambda: connection.individual_symbol_book_ticker_streams(symbol="btcusdt")),
            ("agg", lambda: connection.aggregate_trade_streams(symbol="btcusdt")),
        ]
        for name, subscribe in subscriptions:
            (await subscribe()).on("message", got[name].append)
        clock.advance(3000)  # every stream has something new: a mark due, a new quote
        handle.exchange.set_price(BTC, Decimal(95000))
        await poll(lambda: all(got.values()), what="an event on every stream")
        await connection.close_connection(close_session=True)

    # Act
    run(tmp_path, steps, Clock())

    # Assert
    assert isinstance(got["mark"][0], models.MarkPriceStreamResponse)
    assert isinstance(got["kline"][0], models.KlineCandlestickStreamsResponse)
    assert isinstance(got["book"][0], models.IndividualSymbolBookTickerStreamsResponse)
    assert isinstance(got["agg"][0], models.AggregateTradeStreamsResponse)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
