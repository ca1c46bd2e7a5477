"""The user data stream over a real uvicorn on an ephemeral port, read with `websockets`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from bot_cli.exchange.wire import AlgoUpdate, OrderUpdate, parse_stream_message
from bot_cli.paper.server import PaperHandle, start_in_process
from bot_cli.paper.service import LISTEN_KEY_TTL_MS, wall_ms
from tests.paper import KEY_HEADER, SL, Clock, fixture, poll, signed


MARKET = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "MARKET",
    "quantity": "0.010",
    "newClientOrderId": "e1",
}
Steps = Callable[[PaperHandle, httpx.AsyncClient, str], Awaitable[Any]]


def run(tmp_path: Path, steps: Steps, clock: Clock | None = None) -> Any:
    """Start the venue in-process, create the listenKey, run the steps, stop the venue."""

    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0, clock=clock or wall_ms)
        try:
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
                key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
                return await steps(handle, client, key)
        finally:
            await handle.stop()

    return asyncio.run(main())


async def receive(ws: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(n)]


async def connected(handle: PaperHandle, n: int = 1) -> None:
    await poll(lambda: handle.exchange.hub.count() == n, what=f"{n} stream subscriber(s)")


def test_the_stream_pushes_order_then_algo_updates_in_binance_shapes(tmp_path: Path) -> None:
    """An entry (ORDER_TRADE_UPDATE NEW, TRADE; ACCOUNT_UPDATE) then the SL (ALGO_UPDATE NEW)."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await connected(handle)
            now = handle.exchange.now()
            await client.post(f"/fapi/v1/order?{signed(MARKET, now)}")
            await client.post(f"/fapi/v1/algoOrder?{signed(SL, now)}")
            return await receive(ws, 4)

    # Act
    events = run(tmp_path, steps)

    # Assert
    assert [e["e"] for e in events] == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "ALGO_UPDATE"]
    new, fill, account, algo = events
    assert set(fill["o"]) == set(fixture("order_trade_update_filled")["o"])
    assert set(new["o"]) == set(fixture("order_trade_update_new")["o"]) - {"AP", "cr"}  # trailing-only
    assert set(algo["o"]) == set(fixture("algo_update_canceled")["o"]) - {"rm"}  # rm only with a failure
    assert set(account["a"]) == {"m", "B", "P"}
    assert account["a"]["m"] == "ORDER"
    assert set(account["a"]["P"][0]) == set(fixture("account_update")["a"]["P"][0])
    parsed = [parse_stream_message(json.dumps(e)) for e in events]  # the project's own parser reads them
    assert isinstance(parsed[1], OrderUpdate)
    assert parsed[1].report.filled_qty == parsed[1].report.quantity
    assert isinstance(parsed[3], AlgoUpdate)
    assert parsed[3].report.client_id == "e1-sl1"


@pytest.mark.parametrize("form", ["query", "stream", "subscribe"])
def test_the_other_connection_forms(tmp_path: Path, form: str) -> None:
    """/private/ws?listenKey=, /private/stream?listenKey= (wrapped), SUBSCRIBE on /stream."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient, key: str) -> Any:
        url = {
            "query": f"{handle.ws_url}/ws?listenKey={key}",
            "stream": f"{handle.ws_url}/stream?listenKey={key}",
            "subscribe": f"{handle.ws_url}/stream",
        }[form]
        async with websockets.connect(url) as ws:
            answer = None
            if form == "subscribe":
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [key], "id": 1}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await connected(handle)
            await client.post(f"/fapi/v1/order?{signed(MARKET, handle.exchange.now())}")
            return key, answer, await receive(ws, 1)

    # Act
    key, answer, (message,) = run(tmp_path, steps)

    # Assert
    if form == "query":
        assert message["e"] == "ORDER_TRADE_UPDATE"
    else:
        assert message["stream"] == key
        assert message["data"]["e"] == "ORDER_TRADE_UPDATE"
    assert answer in (None, {"result": None, "id": 1})


def test_the_events_filter_keeps_only_the_named_events(tmp_path: Path) -> None:
    """?events=ALGO_UPDATE: the order and account events of the entry are not sent."""

    # Arrange
    async def steps(
        handle: PaperHandle, client: httpx.AsyncClient, key: str
    ) -> list[dict[str, Any]]:
        async with websockets.connect(
            f"{handle.ws_url}/ws?listenKey={key}&events=ALGO_UPDATE"
        ) as ws:
            await connected(handle)
            now = handle.exchange.now()
            await client.post(f"/fapi/v1/order?{signed(MARKET, now)}")
            await client.post(f"/fapi/v1/algoOrder?{signed(SL, now)}")
            return await receive(ws, 1)

    # Act
    (message,) = run(tmp_path, steps)

    # Assert
    assert message["e"] == "ALGO_UPDATE"


def test_an_unknown_listen_key_is_refused_at_the_handshake(tmp_path: Path) -> None:
    """Connecting with a key that does not exist fails; the real key still works."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient, key: str) -> Exception | None:
        try:
            async with websockets.connect(f"{handle.ws_url}/ws/not-{key}"):
                return None
        except Exception as err:  # noqa: BLE001 - the type is what the test checks
            return err

    # Act
    err = run(tmp_path, steps)

    # Assert
    assert isinstance(err, websockets.InvalidStatus)


def test_an_expired_listen_key_sends_listen_key_expired_and_closes(tmp_path: Path) -> None:
    """60 min without keep-alive: the socket gets listenKeyExpired (E an int), then is closed."""
    # Arrange
    clock = Clock()

    async def steps(handle: PaperHandle, client: httpx.AsyncClient, key: str) -> Any:
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await connected(handle)
            clock.advance(LISTEN_KEY_TTL_MS)  # the 100 ms ticker notices
            (event,) = await receive(ws, 1)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            keepalive = await client.put("/fapi/v1/listenKey")
            return key, event, keepalive.json()

    # Act
    key, event, keepalive = run(tmp_path, steps, clock)

    # Assert
    assert event == {"e": "listenKeyExpired", "E": clock(), "listenKey": key}
    assert keepalive["code"] == -1125
