"""What a reconciliation costs in request weight: the open books of the journal's symbols only.

Binance charges 1 for a read of one symbol's open orders (or open algo orders) and 40 for a
read of every symbol's (reference §3). A start reads them symbol by symbol while that costs
less, so a crash loop under a service manager no longer spends a minute's weight in 30 starts.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.core.model import AlgoReport, AlgoStatus, EntrySpec, OrderReport, OrderType, Side
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from bot_cli.venue import BOOK_WEIGHT_ALL_SYMBOLS, BOOK_WEIGHT_ONE_SYMBOL, Positions
from tests.fakes import FakeClock, FakeExchange


# The IP weight of each read a reconciliation makes (reference §3).
WEIGHT = {"query_order": 1, "query_algo": 1, "positions": 5}
# What a start costs besides its reconciliation: GET /fapi/v1/time, GET /fapi/v1/exchangeInfo
# (the rate limits), POST /fapi/v1/listenKey; position_mode = "auto" adds 30 (positionSide/dual).
START_OVERHEAD = 3


class MeteredExchange(FakeExchange):
    """FakeExchange that counts request weight as Binance does."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.spent = 0

    @property
    def weight_spent(self) -> int:
        return self.spent

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self.spent += BOOK_WEIGHT_ALL_SYMBOLS if symbol is None else BOOK_WEIGHT_ONE_SYMBOL
        return await super().open_orders(symbol)

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]:
        self.spent += BOOK_WEIGHT_ALL_SYMBOLS if symbol is None else BOOK_WEIGHT_ONE_SYMBOL
        return await super().open_algo_orders(symbol)

    async def positions(self) -> Positions:
        self.spent += WEIGHT["positions"]
        return await super().positions()


def journal_with(path: Path, symbols: int, clock: FakeClock, venue: FakeExchange) -> None:
    """One open entry per symbol, resting on the venue (the state a restart finds)."""
    engine = ExecutionEngine(PendingEntryStore(path), venue, clock=clock)
    for n in range(symbols):
        spec = EntrySpec(f"S{n:02d}USDT", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(100), Decimal(90),
                         Decimal(110))  # fmt: skip
        asyncio.run(engine.execute_entry(spec))
        clock.advance(1)


def restart(path: Path, clock: FakeClock, venue: FakeExchange) -> int:
    """A fresh engine on the journal reconciles; the request weight that took."""
    venue.book_reads.clear()
    recovery = asyncio.run(ExecutionEngine(PendingEntryStore(path), venue, clock=clock).recover())
    assert recovery.weight is not None
    return recovery.weight


@pytest.mark.parametrize(
    ("symbols", "reads"),
    [
        pytest.param(0, [], id="empty journal: no book is read"),
        pytest.param(1, [("open_orders", "S00USDT"), ("open_algo_orders", "S00USDT")], id="one symbol"),
        pytest.param(39, "per symbol", id="39 symbols: 78 reads of 1 still cost less than 2 of 40"),
        pytest.param(40, [("open_orders", None), ("open_algo_orders", None)], id="40 symbols: all at once"),
    ],
)
def test_the_books_are_read_per_symbol_while_that_costs_less(
    tmp_path: Path, symbols: int, reads: list[tuple[str, str | None]] | str
) -> None:
    """Per symbol below 40 symbols (weight 2n), one unfiltered read of each book from 40 on (80)."""
    clock = FakeClock()
    venue = MeteredExchange(clock)
    journal_with(tmp_path, symbols, clock, venue)

    restart(tmp_path, clock, venue)

    if reads == "per symbol":
        assert len(venue.book_reads) == 2 * symbols
        assert all(symbol is not None for _, symbol in venue.book_reads)
    else:
        assert venue.book_reads == reads


@pytest.mark.parametrize("symbols", [1, 5])
def test_a_start_with_up_to_five_symbols_costs_at_most_20_weight(tmp_path: Path, symbols: int) -> None:
    """The issue's goal: with a resting entry per symbol, a start costs <= 20 request weight."""
    clock = FakeClock()
    venue = MeteredExchange(clock)
    journal_with(tmp_path, symbols, clock, venue)

    weight = restart(tmp_path, clock, venue) + START_OVERHEAD

    assert weight <= 20


def test_reconciling_finds_a_filled_entry_through_the_per_symbol_books(tmp_path: Path) -> None:
    """An entry that filled while the bot was down is protected after a per-symbol start."""
    clock = FakeClock()
    venue = MeteredExchange(clock)
    journal_with(tmp_path, 2, clock, venue)
    entry = next(cid for cid, o in venue.orders.items() if o.symbol == "S01USDT")
    venue.fill(entry, Decimal(1))

    restart(tmp_path, clock, venue)

    assert venue.book_reads[0] == ("open_orders", "S00USDT")
    live = [a.report for a in venue.algos.values() if a.report.status is AlgoStatus.NEW]
    assert {r.symbol for r in live} == {"S01USDT"}
    assert len(live) == 2  # its stop-loss and its take-profit
