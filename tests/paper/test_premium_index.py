"""GET /fapi/v1/premiumIndex on the paper venue, and BinanceRest's mark_price and cancel_order
against the venue's app in memory (httpx.ASGITransport: no server, no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.core.commands import PlaceEntry
from bot_cli.core.model import ClientId, OrderStatus, OrderType, PendingId, PositionSide, Side
from bot_cli.exchange.rest import BinanceRest
from bot_cli.paper.app import create_app
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET, PaperExchange
from bot_cli.paper.shapes_market import premium_index
from bot_cli.venue import NotFound, Rejected
from tests.paper import T0, Clock


EIGHT_HOURS_MS = 8 * 3600 * 1000
PREMIUM_KEYS = {
    "symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate",
    "interestRate", "nextFundingTime", "time",
}
RESTING = PlaceEntry(
    PendingId("p1"), ClientId("p1-e"), "BTCUSDT", Side.BUY, OrderType.LIMIT,
    D("0.010"), D("90000.0"), PositionSide.BOTH,
)  # far below the market: it rests until cancelled

Steps = Callable[[httpx.AsyncClient, BinanceRest, PaperExchange, Clock], Awaitable[Any]]


@contextlib.asynccontextmanager
async def paper(
    tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, PaperExchange]]:
    exchange = PaperExchange(tmp_path, clock=clock, volatility=0.0)
    exchange.open()
    try:
        transport = httpx.ASGITransport(app=create_app(exchange))
        async with httpx.AsyncClient(transport=transport, base_url="http://paper") as client:
            yield client, exchange
    finally:
        exchange.close()


def call(tmp_path: Path, steps: Steps, clock: Clock | None = None) -> Any:
    """Run ``steps(client, rest, exchange, clock)``; rest is BinanceRest on the same app."""
    clock = clock or Clock()

    async def main() -> Any:
        async with paper(tmp_path, clock) as (client, exchange):
            rest = BinanceRest(
                "http://paper", PAPER_API_KEY, PAPER_API_SECRET, client=client, clock_ms=clock
            )
            return await steps(client, rest, exchange, clock)

    return asyncio.run(main())


# --- the route --------------------------------------------------------------------------------


def test_one_symbol_gets_binance_s_premium_index_object(tmp_path: Path) -> None:
    """With a symbol: one object with every documented key; prices are the venue's mark."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        response = await client.get("/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"})
        return response, ex.book.mark("BTCUSDT", clock())

    # Act
    response, mark = call(tmp_path, steps)

    # Assert
    body = response.json()
    assert response.status_code == 200
    assert set(body) == PREMIUM_KEYS
    assert body["symbol"] == "BTCUSDT"
    assert D(body["markPrice"]) == D(body["indexPrice"]) == mark
    assert len(body["markPrice"].split(".")[1]) == 8  # printed as Binance does
    assert (body["lastFundingRate"], body["time"]) == ("0.00010000", T0)
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_without_a_symbol_every_symbol_is_listed(tmp_path: Path) -> None:
    """No symbol: a list with one object per venue symbol, at weight 10."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        return await client.get("/fapi/v1/premiumIndex")

    # Act
    response = call(tmp_path, steps)

    # Assert
    rows = response.json()
    assert isinstance(rows, list)
    assert [r["symbol"] for r in rows] == list(SYMBOLS)
    assert all(set(r) == PREMIUM_KEYS for r in rows)
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "10"


def test_an_unknown_symbol_is_invalid(tmp_path: Path) -> None:
    """-1121 Invalid symbol, like every other handler."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        return await client.get("/fapi/v1/premiumIndex", params={"symbol": "NOPEUSDT"})

    # Act
    response = call(tmp_path, steps)

    # Assert
    assert (response.status_code, response.json()["code"]) == (400, -1121)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0, EIGHT_HOURS_MS),
        (EIGHT_HOURS_MS - 1, EIGHT_HOURS_MS),
        (EIGHT_HOURS_MS, 2 * EIGHT_HOURS_MS),
        (T0, (T0 // EIGHT_HOURS_MS + 1) * EIGHT_HOURS_MS),
    ],
    ids=["epoch", "just before a boundary", "on a boundary", "T0"],
)
def test_next_funding_time_is_the_next_eight_hour_boundary(now: int, expected: int) -> None:
    """nextFundingTime: the next 00:00/08:00/16:00 UTC strictly after now."""
    assert premium_index("BTCUSDT", D(1), now)["nextFundingTime"] == expected


# --- BinanceRest against the venue ------------------------------------------------------------


def test_mark_price_follows_the_venue_price(tmp_path: Path) -> None:
    """mark_price reads the venue's mark, and sees a price set through the admin API."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        before = await rest.mark_price("BTCUSDT")
        await client.post("/paper/price", json={"symbol": "BTCUSDT", "price": "95123.4"})
        return before, ex.book.mark("BTCUSDT", clock()), await rest.mark_price("BTCUSDT")

    # Act
    before, venue_mark, after = call(tmp_path, steps)

    # Assert
    assert before == SYMBOLS["BTCUSDT"].start_price
    assert after == venue_mark == D("95123.4")


def test_mark_price_of_an_unknown_symbol_is_rejected(tmp_path: Path) -> None:
    """The venue's -1121 reaches the caller as Rejected."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        with pytest.raises(Rejected) as info:
            await rest.mark_price("NOPEUSDT")
        return info.value

    # Act
    err = call(tmp_path, steps)

    # Assert
    assert err.code == -1121


def test_cancel_order_cancels_a_resting_entry_then_finds_nothing_open(tmp_path: Path) -> None:
    """cancel_order: CANCELED with its fill; a second cancel is NotFound (-2011)."""

    # Arrange
    async def steps(client, rest, ex, clock):  # type: ignore[no-untyped-def]
        await rest.place_entry(RESTING)
        report = await rest.cancel_order("BTCUSDT", RESTING.client_id)
        with pytest.raises(NotFound) as again:
            await rest.cancel_order("BTCUSDT", RESTING.client_id)
        return report, again.value, ex.book.open_orders()

    # Act
    report, again, open_orders = call(tmp_path, steps)

    # Assert
    assert (report.client_id, report.status, report.filled_qty) == (
        "p1-e", OrderStatus.CANCELED, D(0)
    )
    assert report.quantity == D("0.010")
    assert again.code == -2011
    assert open_orders == []
