"""Tests of the paper venue; shared helpers live here (clock, signing, fixtures, polling)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from bot_cli.paper.app import create_app
from bot_cli.paper.book import Book
from bot_cli.paper.market import PricePath
from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET, PaperExchange


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
T0 = 1_800_000_000_000  # a whole second: the book's clock in the book tests
KEY_HEADER = {"X-MBX-APIKEY": PAPER_API_KEY}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


class Clock:
    """A settable millisecond clock for the exchange (``clock()`` reads it)."""

    def __init__(self, start_ms: int = T0) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> int:
        self.ms += ms
        return self.ms


def new_book(t0: int = T0, seed: int = 7, volatility: float = 0.0005) -> Book:
    return Book(PricePath.starting(seed, volatility, t0), t0)


def signed(params: dict[str, Any], timestamp: int, secret: str = PAPER_API_SECRET) -> str:
    """The query string of a SIGNED request, signature last (as the official SDK sends it)."""
    payload = urlencode({**params, "timestamp": timestamp})
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={digest}"


def dec(text: str) -> Decimal:
    return Decimal(text)


async def frames_until_closed(
    ws: ClientConnection, timeout_s: float = 5.0
) -> tuple[list[str | bytes], websockets.ConnectionClosed]:
    """Read frames until the server closes the socket: (the frames, the close)."""
    frames: list[str | bytes] = []
    while True:
        try:
            frames.append(await asyncio.wait_for(ws.recv(), timeout_s))
        except websockets.ConnectionClosed as closed:
            return frames, closed


async def poll(
    condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "condition"
) -> Any:
    """Wait (bounded) until ``condition()`` is truthy; returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


# The request parameters several venue tests send: a limit entry and its stop-loss.
ENTRY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "96000.00",
    "newClientOrderId": "e1",
}
SL = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "triggerPrice": "90000.00",
    "quantity": "0.010",
    "reduceOnly": "true",
    "clientAlgoId": "e1-sl1",
}
# A stop-loss that closes the whole position, whatever its size, below ENTRY's price.
CLOSE_ALL_SL = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "triggerPrice": "94000.00",
    "closePosition": "true",
    "clientAlgoId": "sl",
}


@contextlib.asynccontextmanager
async def asgi_venue(
    state_dir: Path | None, clock: Callable[[], int], **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, PaperExchange]]:
    """The venue's app in this process (no socket) over an exchange on ``clock`` that does not
    walk on its own; ``options``: PaperExchange's (faults, order_limits); ``state_dir=None``: in memory."""
    exchange = PaperExchange(state_dir, clock=clock, volatility=0.0, **options)
    exchange.open()
    try:
        transport = httpx.ASGITransport(app=create_app(exchange))
        async with httpx.AsyncClient(transport=transport, base_url="http://paper", headers=KEY_HEADER) as client:
            yield client, exchange
    finally:
        exchange.close()
