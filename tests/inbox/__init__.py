"""Shared pieces of the inbox tests: a market with the paper venue's BTCUSDT filters, and a
way to post to the inbox in memory (httpx.ASGITransport) as a client would over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot_cli.api.keys import LOG_NAME, Claim, Keys
from bot_cli.core.model import AlgoReport, EntrySpec, OrderReport
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.wire import parse_symbol_filters
from bot_cli.inbox import Inbox, create_app
from bot_cli.paper.info import symbol_info
from bot_cli.paper.market import SYMBOLS
from bot_cli.state_store import PendingEntryStore


T = TypeVar("T")
SECRET = "inbox-secret-for-tests-0123456789"
MARK = Decimal(97000)
SIGNAL: dict[str, Any] = {
    "key": "alert-1", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.010",
    "sl": "90000", "tp": "99000",
}  # fmt: skip


class FakeMarket:
    """The paper venue's filters, a mark price and open books the test sets; counts its reads."""

    def __init__(self, mark: Decimal = MARK, hedge_mode: bool = False) -> None:
        self.filters: dict[str, SymbolFilters] = {
            s: parse_symbol_filters(symbol_info(spec))  # type: ignore[arg-type]
            for s, spec in SYMBOLS.items()
        }
        self.mark, self.hedge_mode = mark, hedge_mode
        self.info_reads = 0
        self.algos: list[AlgoReport] = []  # open conditional orders, every symbol
        self.orders: list[OrderReport] = []  # open regular orders
        self.book_reads = 0

    async def exchange_info(self) -> dict[str, SymbolFilters]:
        self.info_reads += 1
        return self.filters

    async def mark_price(self, symbol: str) -> Decimal:
        return self.mark

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self.book_reads += 1
        return [o for o in self.orders if symbol in (None, o.symbol)]

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]:
        self.book_reads += 1
        return [a for a in self.algos if symbol in (None, a.symbol)]


def make_inbox(state: Path, market: FakeMarket | None = None, **kwargs: Any) -> Inbox:
    kwargs.setdefault("connected", lambda: True)
    return Inbox(state, market or FakeMarket(), SECRET.encode(), venue_name="paper", **kwargs)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Bot-Signature": f"sha256={mac}"}


def body_of(signal: dict[str, Any]) -> bytes:
    return json.dumps(signal).encode()


Headers = dict[str, str]


async def post(inbox: Inbox, content: bytes, headers: Headers | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(inbox))
    async with httpx.AsyncClient(transport=transport, base_url="http://inbox") as client:
        return await client.post("/signal", content=content, headers=headers or {})


def post_signal(
    inbox: Inbox, signal: dict[str, Any], headers: Headers | None = None
) -> httpx.Response:
    """POST a signal signed with the right secret unless ``headers`` say otherwise."""
    body = body_of(signal)
    return run(post(inbox, body, signed(body) if headers is None else headers))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def journal(state: Path) -> dict[str, dict[str, Any]]:
    with PendingEntryStore(state) as store:
        return dict(store.load_all())


def keys_written(state: Path) -> list[dict[str, Any]]:
    """The lines of the idempotency-key log."""
    path = state / LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def claim_key(store: PendingEntryStore, key: str, spec: EntrySpec, now_ms: int) -> Claim:
    """What the API and the inbox do with a key: its entry, saved REQUESTED if new."""
    keys = Keys(store.path)
    try:
        return keys.claim(store, key, spec, now_ms, 5000)
    finally:
        keys.close()


def untouched(state: Path) -> bool:
    """Nothing written: no journal record, no idempotency key."""
    return journal(state) == {} and keys_written(state) == []


def wait_for(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    import time

    end = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)
    return value
