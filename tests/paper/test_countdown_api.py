"""POST /fapi/v1/countdownCancelAll over HTTP (in memory, httpx.ASGITransport, injected clock):
the answer, its weight, refused parameters, and the cancel a client sees on stream and query."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.paper.hub import Subscriber
from bot_cli.paper.service import PaperExchange
from tests.paper import ENTRY, SL, T0, Clock, asgi_venue, signed


BTC = "BTCUSDT"
Steps = Callable[[httpx.AsyncClient, PaperExchange, Clock], Awaitable[Any]]


def call(tmp_path: Path, steps: Steps, faults: Sequence[str] = ()) -> Any:
    """Run ``steps(client, exchange, clock)`` against a fresh venue whose clock only moves when told."""
    clock = Clock()

    async def main() -> Any:
        async with asgi_venue(tmp_path, clock, faults=faults) as (client, exchange):
            return await steps(client, exchange, clock)

    return asyncio.run(main())


async def countdown(client: httpx.AsyncClient, clock: Clock, **params: str) -> httpx.Response:
    return await client.post(f"/fapi/v1/countdownCancelAll?{signed(params, clock())}")


async def listen(client: httpx.AsyncClient, ex: PaperExchange) -> Subscriber:
    """A user-stream socket's queue on the account's listenKey."""
    key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
    sub = Subscriber(key, wrap=False)
    ex.hub.subscribers.add(sub)
    return sub


def received(sub: Subscriber) -> list[dict[str, Any]]:
    frames = []
    while not sub.queue.empty():
        frame = sub.queue.get_nowait()
        assert frame is not None
        frames.append(json.loads(frame))
    return frames


def test_the_answer_echoes_the_countdown_as_a_string_and_weighs_10(tmp_path: Path) -> None:
    """{"symbol", "countdownTime": "100000"}; each call adds 10 to X-MBX-USED-WEIGHT-1M."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        armed = await countdown(client, clock, symbol=BTC, countdownTime="100000")
        deadlines = dict(ex.book.countdowns)
        off = await countdown(client, clock, symbol=BTC, countdownTime="0")
        return [armed, deadlines, off, dict(ex.book.countdowns)]

    # Act
    armed, deadlines, off, after_off = call(tmp_path, steps)

    # Assert
    assert (armed.status_code, armed.json()) == (200, {"symbol": BTC, "countdownTime": "100000"})
    assert (off.status_code, off.json()) == (200, {"symbol": BTC, "countdownTime": "0"})
    assert [r.headers["X-MBX-USED-WEIGHT-1M"] for r in (armed, off)] == ["10", "20"]
    assert deadlines == {BTC: T0 + 100_000}
    assert after_off == {}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"countdownTime": "1000"}, -1102, id="no symbol"),
        pytest.param({"symbol": "NOPEUSDT", "countdownTime": "1000"}, -1121, id="unknown symbol"),
        pytest.param({"symbol": BTC}, -1102, id="no countdownTime"),
        pytest.param({"symbol": BTC, "countdownTime": ""}, -1102, id="empty countdownTime"),
        pytest.param({"symbol": BTC, "countdownTime": "-1000"}, -1100, id="negative"),
        pytest.param({"symbol": BTC, "countdownTime": "1.5"}, -1100, id="not an integer"),
        pytest.param({"symbol": BTC, "countdownTime": "soon"}, -1100, id="not a number"),
    ],
)
def test_bad_parameters_are_refused_and_arm_nothing(tmp_path: Path, params: dict[str, str], code: int) -> None:
    """Binance's codes for a missing, unknown or malformed parameter; no countdown is set."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> tuple[httpx.Response, Any]:
        return await countdown(client, clock, **params), dict(ex.book.countdowns)

    # Act
    answer, deadlines = call(tmp_path, steps)

    # Assert
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert deadlines == {}


def test_the_cancel_is_pushed_and_queried_as_a_client_cancel_would_be(tmp_path: Path) -> None:
    """At the deadline: ORDER_TRADE_UPDATE x=CANCELED on the stream, GET order CANCELED; the SL
    stays NEW (algo orders are not the countdown's)."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        sub = await listen(client, ex)
        await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        await client.post(f"/fapi/v1/algoOrder?{signed(SL, clock())}")
        await countdown(client, clock, symbol=BTC, countdownTime="5000")
        received(sub)
        clock.advance(4999)
        early = await client.get(f"/fapi/v1/order?{signed({'symbol': BTC, 'origClientOrderId': 'e1'}, clock())}")
        clock.advance(1)
        late = await client.get(f"/fapi/v1/order?{signed({'symbol': BTC, 'origClientOrderId': 'e1'}, clock())}")
        sl = await client.get(f"/fapi/v1/algoOrder?{signed({'clientAlgoId': 'e1-sl1'}, clock())}")
        return [early.json(), late.json(), sl.json(), received(sub)]

    # Act
    early, late, sl, events = call(tmp_path, steps)

    # Assert
    assert early["status"] == "NEW"
    assert (late["status"], late["updateTime"]) == ("CANCELED", T0 + 5000)
    assert sl["algoStatus"] == "NEW"
    assert [(e["e"], e["o"]["x"], e["o"]["c"], e["T"]) for e in events] == [
        ("ORDER_TRADE_UPDATE", "CANCELED", "e1", T0 + 5000)
    ]


def test_with_the_fault_on_the_stop_is_cancelled_too(tmp_path: Path) -> None:
    """countdown_cancels_algo from the config list: ALGO_UPDATE X=CANCELED, GET algoOrder CANCELED."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        sub = await listen(client, ex)
        await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        await client.post(f"/fapi/v1/algoOrder?{signed(SL, clock())}")
        await countdown(client, clock, symbol=BTC, countdownTime="5000")
        received(sub)
        clock.advance(5000)
        sl = await client.get(f"/fapi/v1/algoOrder?{signed({'clientAlgoId': 'e1-sl1'}, clock())}")
        return [sl.json(), received(sub)]

    # Act
    sl, events = call(tmp_path, steps, faults=["countdown_cancels_algo"])

    # Assert
    assert (sl["algoStatus"], sl["updateTime"]) == ("CANCELED", T0 + 5000)
    assert [(e["e"], e["o"].get("x"), e["o"]["X"]) for e in events] == [
        ("ORDER_TRADE_UPDATE", "CANCELED", "CANCELED"),
        ("ALGO_UPDATE", None, "CANCELED"),
    ]
