"""What a reconcile reads from the exchange: the open books, then only what they leave open.

The reads run with nothing held (runtime.engine applies the plan afterwards, to the entries
that did not move meanwhile). Books are read symbol by symbol (at once) while that costs less
request weight than one read of every symbol's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import TypeVar

from bot_cli.core.model import AlgoReport, ClientId, OrderReport, Pending, PendingId
from bot_cli.core.reconcile import Lookups, Snapshot, book_symbols, lookups_needed
from bot_cli.venue import BOOK_WEIGHT_ALL_SYMBOLS, BOOK_WEIGHT_ONE_SYMBOL, NotFound, Venue


T = TypeVar("T")
R = TypeVar("R", OrderReport, AlgoReport)


async def read_snapshot(
    venue: Venue, state: Mapping[PendingId, Pending], *, positions: bool = False
) -> tuple[Snapshot, Lookups, int]:
    """The snapshot ``state`` needs, what it looked up, and how many REST calls it took."""
    open_orders, open_algos, reads = await _open_books(venue, book_symbols(state))
    lookups = lookups_needed(state, open_orders, open_algos, positions=positions)
    orders: dict[ClientId, OrderReport | None] = {}
    for symbol, cid in lookups.orders:
        orders[cid] = await _or_none(venue.query_order(symbol, cid))
    algos: dict[ClientId, AlgoReport | None] = {}
    for cid in lookups.algos:
        algos[cid] = await _or_none(venue.query_algo(cid))
    held = await venue.positions() if lookups.positions else None
    return Snapshot(open_orders, open_algos, orders, algos, held), lookups, reads + lookups.calls


async def _open_books(
    venue: Venue, symbols: tuple[str, ...]
) -> tuple[dict[ClientId, OrderReport], dict[ClientId, AlgoReport], int]:
    """Open orders and open algo orders: none for an empty journal; symbol by symbol (at
    once) while that costs less request weight than one read of every symbol's; else that."""
    if not symbols:
        return {}, {}, 0
    if len(symbols) * BOOK_WEIGHT_ONE_SYMBOL >= BOOK_WEIGHT_ALL_SYMBOLS:
        orders, algos = await venue.open_orders(), await venue.open_algo_orders()
        return _by_client_id(orders), _by_client_id(algos), 2
    orders = await _joined(venue.open_orders(s) for s in symbols)
    algos = await _joined(venue.open_algo_orders(s) for s in symbols)
    return _by_client_id(orders), _by_client_id(algos), 2 * len(symbols)


def _by_client_id(reports: Iterable[R]) -> dict[ClientId, R]:
    return {r.client_id: r for r in reports}


async def _joined(reads: Iterable[Awaitable[list[R]]]) -> list[R]:
    """The reads run at once, their answers joined; the first failure is raised once all ended."""
    answers = await asyncio.gather(*reads, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [report for answer in answers if not isinstance(answer, BaseException) for report in answer]


async def _or_none(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except NotFound:
        return None
