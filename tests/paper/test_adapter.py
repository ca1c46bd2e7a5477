"""The project's real Binance adapter (BinanceRest) against the paper venue, unchanged."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.model import (
    AlgoStatus,
    ClientId,
    Leg,
    OrderStatus,
    OrderType,
    PendingId,
    PositionSide,
    Side,
)
from bot_cli.exchange.rest import BinanceRest
from bot_cli.exchange.user_stream import UserStream
from bot_cli.exchange.wire import OrderUpdate
from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET
from bot_cli.paper.server import PaperHandle, start_in_process
from bot_cli.venue import Duplicate, NotFound, OutcomeUnknown, RateLimited, VenueError, WouldTrigger
from tests.paper import poll


PID = PendingId("p1")
ENTRY = PlaceEntry(
    PID,
    ClientId("p1-e"),
    "BTCUSDT",
    Side.BUY,
    OrderType.MARKET,
    D("0.010"),
    None,
    PositionSide.BOTH,
)
LIMIT = PlaceEntry(
    PID,
    ClientId("p1-l"),
    "BTCUSDT",
    Side.BUY,
    OrderType.LIMIT,
    D("0.010"),
    D("90000.0"),
    PositionSide.BOTH,
)
SL = PlaceProtection(
    PID,
    ClientId("p1-sl1"),
    Leg.SL,
    "BTCUSDT",
    Side.SELL,
    D("0.010"),
    D("95000.0"),
    PositionSide.BOTH,
)
Steps = Callable[[PaperHandle, BinanceRest], Awaitable[Any]]


def run(tmp_path: Path, steps: Steps, faults: tuple[str, ...] = ()) -> Any:
    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0, faults=faults)
        try:
            async with BinanceRest(handle.rest_url, PAPER_API_KEY, PAPER_API_SECRET) as venue:
                await venue.sync_time()
                return await steps(handle, venue)
        finally:
            await handle.stop()

    return asyncio.run(main())


def test_entry_protection_and_reconciliation_calls_work_unchanged(tmp_path: Path) -> None:
    """Entry, SL, both books, positions, exchange info, position mode, trades, listenKey, cancel."""

    # Arrange
    async def steps(handle: PaperHandle, venue: BinanceRest) -> dict[str, Any]:
        out: dict[str, Any] = {"ack": await venue.place_entry(ENTRY)}
        out["entry"] = await venue.query_order("BTCUSDT", ENTRY.client_id)
        out["sl"] = await venue.place_protection(SL)
        out["open_algos"] = await venue.open_algo_orders()
        out["limit"] = await venue.place_entry(LIMIT)
        out["open_orders"] = await venue.open_orders()
        out["positions"] = await venue.positions()
        out["filters"] = await venue.exchange_info()
        out["hedge"] = await venue.position_mode()
        out["trades"] = await venue.user_trades("BTCUSDT", out["entry"].order_id)
        out["keys"] = (await venue.new_listen_key(), await venue.new_listen_key())
        await venue.keepalive_listen_key()
        await venue.cancel_protection(SL.client_id)
        out["sl_after"] = await venue.query_algo(SL.client_id)
        return out

    # Act
    out = run(tmp_path, steps)

    # Assert
    assert out["ack"].status is OrderStatus.NEW  # the ACK answer; the fill follows
    entry = out["entry"]
    assert (entry.status, entry.filled_qty, entry.avg_price) == (OrderStatus.FILLED, D("0.010"), D(97000))
    assert out["sl"].status is AlgoStatus.NEW
    assert out["sl"].trigger_price == D(95000)
    assert [a.client_id for a in out["open_algos"]] == ["p1-sl1"]
    assert [o.client_id for o in out["open_orders"]] == ["p1-l"]
    assert out["positions"] == {("BTCUSDT", PositionSide.BOTH): D("0.010")}
    assert out["filters"]["BTCUSDT"].tick_size == D("0.10")
    assert out["filters"]["BTCUSDT"].min_notional == D(100)
    assert out["hedge"] is False
    assert [(t.qty, t.price) for t in out["trades"]] == [(D("0.010"), D("97000.00"))]
    assert out["keys"][0] == out["keys"][1]
    assert out["sl_after"].status is AlgoStatus.CANCELED


def test_definite_refusals_map_to_the_venue_errors(tmp_path: Path) -> None:
    """-2021 -> WouldTrigger, -4116 -> Duplicate, -2013 -> NotFound, -2011 -> NotFound."""
    # Arrange
    crossed = PlaceProtection(
        PID,
        ClientId("p1-sl9"),
        Leg.SL,
        "BTCUSDT",
        Side.SELL,
        D("0.010"),
        D("98000.0"),
        PositionSide.BOTH,
    )

    async def steps(handle: PaperHandle, venue: BinanceRest) -> list[type[VenueError]]:
        await venue.place_entry(LIMIT)
        raised = []
        for call in (
            lambda: venue.place_protection(crossed),
            lambda: venue.place_entry(LIMIT),
            lambda: venue.query_order("BTCUSDT", ClientId("nope")),
            lambda: venue.cancel_protection(ClientId("nope")),
        ):
            with pytest.raises(VenueError) as err:
                await call()
            raised.append(type(err.value))
        return raised

    # Act
    raised = run(tmp_path, steps)

    # Assert
    assert raised == [WouldTrigger, Duplicate, NotFound, NotFound]


@pytest.mark.parametrize(
    "fault", ["lost_response:order:once", "unknown_503:order:once", "timeout_1007:order:once"]
)
def test_an_unknown_outcome_is_resolved_by_querying_the_client_id(tmp_path: Path, fault: str) -> None:
    """The entry's answer is lost / 503 / -1007: OutcomeUnknown, and the query finds it executed."""

    # Arrange
    async def steps(handle: PaperHandle, venue: BinanceRest) -> Any:
        with pytest.raises(OutcomeUnknown):
            await venue.place_entry(ENTRY)
        return await venue.query_order("BTCUSDT", ENTRY.client_id)

    # Act
    found = run(tmp_path, steps, (fault,))

    # Assert
    assert (found.status, found.filled_qty) == (OrderStatus.FILLED, D("0.010"))


def test_a_rate_limited_request_did_not_execute(tmp_path: Path) -> None:
    """429 -> RateLimited; the algo order is not there once the Retry-After lets a read go."""

    # Arrange
    async def steps(handle: PaperHandle, venue: BinanceRest) -> Any:
        await venue.place_entry(ENTRY)
        with pytest.raises(RateLimited) as limited:
            await venue.place_protection(SL)
        with pytest.raises(RateLimited):  # no read before the Retry-After (going on earns a 418)
            await venue.query_algo(SL.client_id)
        await asyncio.sleep(limited.value.retry_after)
        with pytest.raises(NotFound):
            await venue.query_algo(SL.client_id)
        close = ClosePosition(
            PID, ClientId("p1-x1"), "BTCUSDT", Side.SELL, D("0.010"), PositionSide.BOTH
        )
        await venue.close_position(close)
        return await venue.positions()

    # Act
    positions = run(tmp_path, steps, ("rate_limit_429:algoOrder@POST:once",))

    # Assert
    assert positions == {}  # flat: v3 lists only symbols with a position or open orders


@dataclass
class Heard:
    """What a UserStream hands its callbacks."""

    messages: list[Any] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    async def on_message(self, message: Any) -> None:
        self.messages.append(message)

    async def on_gap(self, reason: str) -> None:
        self.gaps.append(reason)

    def filled(self) -> bool:
        return any(isinstance(m, OrderUpdate) and m.report.status is OrderStatus.FILLED for m in self.messages)


def test_the_user_stream_client_follows_fills_drops_and_key_expiry(tmp_path: Path) -> None:
    """UserStream over the paper venue: a fill arrives parsed; a stream drop and an expired key
    both end in a reconnect (reported as a gap), on a new key after the expiry."""

    # Arrange
    async def steps(handle: PaperHandle, venue: BinanceRest) -> Any:
        heard = Heard()
        stream = UserStream(venue, handle.ws_url, on_message=heard.on_message, on_gap=heard.on_gap,
                            delays=lambda: itertools.repeat(0.01))  # fmt: skip
        task = asyncio.create_task(stream.run())
        try:
            await poll(lambda: handle.exchange.hub.count() == 1, what="the stream to connect")
            await venue.place_entry(ENTRY)
            await poll(heard.filled, what="the fill event")
            first_key = handle.exchange.listen_key
            handle.exchange.add_fault("drop_stream")
            await poll(lambda: heard.gaps.count("reconnected") == 1, what="a reconnect after the drop")
            handle.exchange.add_fault("expire_listen_key")
            await poll(lambda: heard.gaps.count("reconnected") == 2, what="a reconnect after the expiry")
            return heard.gaps, first_key, handle.exchange.listen_key
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    # Act
    gaps, first_key, last_key = run(tmp_path, steps)

    # Assert
    assert gaps == ["connected", "reconnected", "reconnected"]
    assert last_key is not None
    assert last_key != first_key
