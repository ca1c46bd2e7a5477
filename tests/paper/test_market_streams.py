"""Market WebSocket streams over a real uvicorn on an ephemeral port, read with `websockets`;
every event is checked against the official SDK's stream models."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from bot_cli.paper.market_stream import MAX_STREAMS, Connection, answer
from bot_cli.paper.server import PaperHandle, start_in_process
from tests.paper import KEY_HEADER, Clock, frames_until_closed, signed
from tests.paper.compat import COMPAT


models = pytest.importorskip(
    "binance_sdk_derivatives_trading_usds_futures.websocket_streams.models"
)

MODELS = {
    "markPriceUpdate": models.MarkPriceStreamResponse,
    "bookTicker": models.IndividualSymbolBookTickerStreamsResponse,
    "kline": models.KlineCandlestickStreamsResponse,
    "aggTrade": models.AggregateTradeStreamsResponse,
}
Steps = Callable[[PaperHandle, str, Clock], Awaitable[Any]]


def run(tmp_path: Path, steps: Steps) -> Any:
    clock = Clock()

    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0005, clock=clock)
        try:
            return await steps(handle, f"ws://127.0.0.1:{handle.port}", clock)
        finally:
            await handle.stop()

    return asyncio.run(main())


async def frames(ws: Any, n: int) -> list[Any]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(n)]


async def until(ws: Any, match: Callable[[Any], bool], limit: int = 50) -> Any:
    """The first frame that matches, within ``limit`` frames (each within 5 s)."""
    for _ in range(limit):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if match(frame):
            return frame
    raise AssertionError("no matching frame")


def checked(call: str, event: dict[str, Any]) -> dict[str, Any]:
    found = COMPAT.check(call, MODELS[event["e"]], event)
    assert not found, "\n".join(map(str, found))
    return event


# --- routes and framing -----------------------------------------------------------------------


def test_a_combined_stream_wraps_each_event_with_its_name(tmp_path: Path) -> None:
    """/market/stream?streams=a/b: {"stream", "data"} frames for the market streams asked."""
    names = ["btcusdt@markPrice@1s", "btcusdt@kline_1m", "btcusdt@aggTrade"]

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/market/stream?streams={'/'.join(names)}") as ws:
            return await frames(ws, 3)

    # Act
    got = run(tmp_path, steps)

    # Assert
    assert sorted(f["stream"] for f in got) == sorted(names)
    for frame in got:
        checked(frame["stream"], frame["data"])


def test_a_raw_stream_sends_bare_events(tmp_path: Path) -> None:
    """/public/ws/<name>: the book ticker itself, best bid below best ask."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/public/ws/ethusdt@bookTicker") as ws:
            return (await frames(ws, 1))[0]

    # Act
    event = checked("bookTicker", run(tmp_path, steps))

    # Assert
    assert event["s"] == "ETHUSDT"
    assert float(event["b"]) < float(event["a"])


def test_mark_price_every_three_seconds_of_venue_time(tmp_path: Path) -> None:
    """@markPrice: one event now, the next once the venue's clock passes 3 s."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/market/ws/btcusdt@markPrice") as ws:
            first = (await frames(ws, 1))[0]
            clock.advance(3000)
            second = (await frames(ws, 1))[0]
            return first, second, handle.exchange.book.mark("BTCUSDT", clock())

    # Act
    first, second, mark = run(tmp_path, steps)

    # Assert
    assert second["E"] - first["E"] == 3000
    assert float(checked("markPrice", second)["p"]) == float(mark)


def test_a_kline_closes_when_its_minute_ends(tmp_path: Path) -> None:
    """@kline_1m: x false while the bar runs; past its end the closed bar comes with x true."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/market/ws/btcusdt@kline_1m") as ws:
            running = (await frames(ws, 1))[0]
            clock.advance(60_000)
            closed = await until(ws, lambda f: f["k"]["x"])
            return running, closed

    # Act
    running, closed = run(tmp_path, steps)

    # Assert
    assert running["k"]["x"] is False
    assert checked("kline", closed)["k"]["t"] == running["k"]["t"]


def test_the_account_s_fills_show_as_agg_trades(tmp_path: Path) -> None:
    """A market buy of the paper account appears on @aggTrade at its fill price."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.123"}
        async with websockets.connect(f"{base}/market/ws/btcusdt@aggTrade") as ws:
            await frames(ws, 1)
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as c:
                await c.post(f"/fapi/v1/order?{signed(order, clock())}")
            return await until(ws, lambda f: f["q"] == "0.123")

    # Act
    trade = checked("aggTrade", run(tmp_path, steps))

    # Assert
    assert trade["m"] is False  # the buyer took: the buyer was not the maker


def test_a_stream_on_the_wrong_route_is_accepted_and_never_delivered(tmp_path: Path) -> None:
    """Binance's rule: markPrice belongs to /market; on /public it subscribes, and stays silent."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/public/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [
                "btcusdt@markPrice@1s", "btcusdt@bookTicker"], "id": 1}))  # fmt: skip
            reply = (await frames(ws, 1))[0]
            seen = []
            for _ in range(3):  # the mark moves each time: a new quote, and a mark due
                clock.advance(5000)
                seen += await frames(ws, 1)
            return reply, seen

    # Act
    reply, seen = run(tmp_path, steps)

    # Assert
    assert reply == {"result": None, "id": 1}
    assert {e["e"] for e in seen} == {"bookTicker"}


def test_a_path_that_names_no_stream_connects_with_nothing(tmp_path: Path) -> None:
    """ccxt opens /market/ws/<n>, then subscribes: the connection starts empty."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/market/ws/0") as ws:
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}))
            return (await frames(ws, 1))[0]

    # Act / Assert
    assert run(tmp_path, steps) == {"result": [], "id": 7}


def test_more_than_ten_messages_a_second_close_the_connection(tmp_path: Path) -> None:
    """Binance's limit: 10 incoming messages per second; the 11th closes the socket."""

    # Arrange
    async def steps(handle: PaperHandle, base: str, clock: Clock) -> Any:
        async with websockets.connect(f"{base}/market/ws") as ws:
            for i in range(11):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            _, closed = await frames_until_closed(ws)
            return closed.rcvd

    # Act
    close = run(tmp_path, steps)

    # Assert
    assert close is not None
    assert close.code == 1008


# --- the request API (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}', {"result": None, "id": 1}),
        ('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":"3f1c-uuid"}',
         {"result": None, "id": "3f1c-uuid"}),
        ('{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":2}',
         {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2}),
        ('{"method":"SUBSCRIBE","params":["btcusdt@kline_7m"],"id":2}',
         {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2}),
        ('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":-1}',
         {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
          "id": -1}),
        ("not json",
         {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}),
        ('{"method":"GET_PROPERTY","params":["combined"],"id":5}', {"result": False, "id": 5}),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":6}',
         {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 6}),
        ('{"method":"SET_PROPERTY","params":["colour",true],"id":6}',
         {"error": {"code": 0, "msg": "Unknown property"}, "id": 6}),
    ],
    ids=[
        "subscribe", "a string id (the SDK's)", "unknown stream", "unknown interval",
        "negative id", "not JSON", "get combined", "bad property value", "unknown property",
    ],
)  # fmt: skip
def test_requests_get_binance_s_answers(message: str, expected: dict[str, Any]) -> None:
    """Each request and its answer, as Binance's live-subscription docs list them."""
    assert answer(Connection("market", combined=False), message) == expected


def test_unknown_methods_are_named_in_the_error() -> None:
    """A method that is not one of the five: code 2, naming the five."""
    reply = answer(Connection("market", False), '{"method":"SUBSCRIBEX","params":[],"id":1}')
    assert reply["error"]["code"] == 2
    assert "`SUBSCRIBEX`" in reply["error"]["msg"]


def test_a_connection_carries_at_most_1024_streams() -> None:
    """The 1025th stream is refused; unsubscribing makes room again."""
    # Arrange
    conn = Connection("market", False)
    names = [f"btcusdt@kline_{i}" for i in ("1m", "3m", "5m", "15m")]
    conn.streams = {f"s{i}": None for i in range(MAX_STREAMS - 2)}  # type: ignore[misc]

    # Act
    refused = answer(conn, json.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
    taken = answer(conn, json.dumps({"method": "SUBSCRIBE", "params": names[:2], "id": 2}))

    # Assert
    assert refused["error"]["code"] == 2
    assert taken == {"result": None, "id": 2}
    assert len(conn.streams) == MAX_STREAMS
