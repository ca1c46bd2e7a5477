"""What an entry reads of the market and the account before it is admitted, as cheaply as it can.

- exchangeInfo is cached in the state dir (``exchange_info.json``, 0600, replaced atomically)
  with the venue it came from and when it was read; it is reused while younger than
  ``INFO_TTL_S`` and read again when stale, from another venue, missing the symbol, or when an
  entry is refused by a filter a newer one could lift (``ops.enter``). It keeps the rate limits
  too, so a process that reads nothing else still throttles itself.
- The daemon's heartbeat gives the account's position mode and the conditional orders that are
  not the bot's, trusted only when the process holding the state dir's lock wrote it (and the
  count only while younger than ``FOREIGN_FRESH_S``).
- Otherwise the exchange is asked: conditional orders on every symbol (40 weight), open regular
  orders on one symbol (1 weight). An order is foreign when no entry of the journal holds it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot_cli.core.admission import foreign
from bot_cli.core.model import AlgoReport, OrderReport, OrderType
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.ops.checks import Account, EntryRefused
from bot_cli.runtime import heartbeat
from bot_cli.state_store import JOURNAL_NAME, PendingEntryStore, StoreError, lock_holder
from bot_cli.store.atomic import replace_durable


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.core.model import EntrySpec
    from bot_cli.exchange.rest import BinanceRest


T = TypeVar("T")
INFO_NAME = "exchange_info.json"
INFO_VERSION = 1
INFO_TTL_S = 3600.0  # filters change rarely; a refusal a newer exchangeInfo could lift re-reads it
FOREIGN_FRESH_S = 600.0  # the daemon counts foreign conditional orders every 5 minutes
_TEXT_FIELDS = frozenset({"symbol"})
_INT_FIELDS = frozenset({"max_num_orders"})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- exchangeInfo, cached ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Info:
    """exchangeInfo as kept: each symbol's filters (decoded on demand) and the rate limits."""

    venue: str  # the REST URL it was read from
    read_at_ms: int
    symbols: Mapping[str, Mapping[str, Any]]
    weight_limit: int | None = None
    order_limits: Mapping[int, int] = field(default_factory=dict)  # window ms -> orders
    fresh: bool = False  # read from the venue by this process, not from the file

    def stale(self, at_ms: int) -> bool:
        age_s = (at_ms - self.read_at_ms) / 1000
        return not 0 <= age_s < INFO_TTL_S

    def filters(self, symbol: str) -> SymbolFilters | None:
        """The symbol's filters; None if it is not listed (or its row cannot be read)."""
        row = self.symbols.get(symbol)
        return None if row is None else _decode_filters(row)

    def apply_limits(self, rest: BinanceRest) -> None:
        """The rate limits kept with it, for a client that has not read them itself."""
        if rest.weight.limit is None:
            rest.weight.limit = self.weight_limit
        if not rest.orders.limits:
            rest.orders.limits = dict(self.order_limits)

    def payload(self) -> bytes:
        return json.dumps({
            "v": INFO_VERSION, "venue": self.venue, "read_at": self.read_at_ms,
            "weight_limit": self.weight_limit,
            "order_limits": {str(k): v for k, v in self.order_limits.items()}, "symbols": self.symbols,
        }, sort_keys=True).encode()  # fmt: skip


async def read_info(rest: BinanceRest, venue: str) -> Info:
    """exchangeInfo from the venue (1 weight); the client takes its rate limits as it reads."""
    filters = await rest.exchange_info()
    rows = {symbol: _encode_filters(f) for symbol, f in filters.items()}
    limits = dict(rest.orders.limits)
    return Info(venue, now_ms(), rows, rest.weight.limit, limits, fresh=True)


async def info_for(rest: BinanceRest, venue: str, state_dir: Path, symbol: str) -> Info:
    """The cached exchangeInfo while fresh and listing the symbol; else read now (1 weight)."""
    info = load_info(state_dir, venue)
    if info is None or info.stale(now_ms()) or info.filters(symbol) is None:
        return await read_info(rest, venue)
    info.apply_limits(rest)
    return info


async def decided(rest: BinanceRest, venue: str, info: Info, decide: Callable[[Info], T]) -> T:
    """``decide`` against ``info``; a refusal by a filter a newer exchangeInfo could lift
    (EntryRefused.by_filter, from a cached one) is decided once more against one read now."""
    try:
        return decide(info)
    except EntryRefused as refused:
        if info.fresh or not refused.by_filter:
            raise
    return decide(await read_info(rest, venue))


def load_info(state_dir: Path, venue: str) -> Info | None:
    """The cached exchangeInfo of ``venue``; None when missing, unreadable or another venue's."""
    try:
        doc = json.loads((state_dir / INFO_NAME).read_bytes())
        if doc["v"] != INFO_VERSION or doc["venue"] != venue or not isinstance(doc["symbols"], dict):
            return None
        weight = doc["weight_limit"]
        orders = {int(k): int(v) for k, v in doc["order_limits"].items()}
        return Info(venue, int(doc["read_at"]), doc["symbols"], weight if isinstance(weight, int) else None, orders)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # a cache: read exchangeInfo again, and the next save replaces it


def keep_info(state_dir: Path, info: Info | None) -> None:
    """Save exchangeInfo read by this process; never creates the state dir, never fails an entry."""
    if info is None or not info.fresh or not state_dir.is_dir():
        return
    with contextlib.suppress(OSError, StoreError):  # a cache: the next entry reads it again
        replace_durable(state_dir / INFO_NAME, info.payload())


def _encode_filters(f: SymbolFilters) -> dict[str, Any]:
    return {x.name: _plain(getattr(f, x.name)) for x in fields(f)}


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def _decode_filters(row: Mapping[str, Any]) -> SymbolFilters | None:
    try:
        values = {x.name: _typed(x.name, row[x.name]) for x in fields(SymbolFilters)}
        return SymbolFilters(**values)
    except (KeyError, TypeError, InvalidOperation):
        return None


def _typed(name: str, value: object) -> Any:
    if name in _TEXT_FIELDS or name in _INT_FIELDS:
        wanted = str if name in _TEXT_FIELDS else int
        if type(value) is not wanted:
            raise TypeError(f"{name} is not {wanted.__name__}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a decimal string")
    return Decimal(value)


# -- the daemon's account facts --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonAccount:
    """What the running daemon's heartbeat says of the account (None: it does not say)."""

    hedge_mode: bool | None = None
    foreign_conditional: int | None = None


def daemon_account(state_dir: Path) -> DaemonAccount:
    """From the heartbeat of the process holding the state dir's lock; nothing from another."""
    holder = lock_holder(state_dir) if state_dir.is_dir() else None
    beat = heartbeat.read(state_dir) if holder else None
    account = beat.get("account") if beat is not None and beat.get("pid") == holder else None
    if not isinstance(account, dict):
        return DaemonAccount()
    hedge, count, at = account.get("hedge_mode"), account.get("foreign_conditional"), account.get("counted_at")
    fresh = type(count) is int and type(at) is int and 0 <= now_ms() - at < FOREIGN_FRESH_S * 1000
    return DaemonAccount(hedge if isinstance(hedge, bool) else None, count if fresh else None)


async def hedge_mode(rest: BinanceRest, cfg: Config, state_dir: Path) -> bool:
    """The account's position mode: the daemon's, else the config's, else read (30 weight)."""
    said = daemon_account(state_dir).hedge_mode
    if said is not None:
        return said
    if cfg.venue.position_mode != "auto":
        return cfg.venue.position_mode == "hedge"
    return await rest.position_mode()


# -- what the exchange lists that is not the journal's ---------------------------------------


class Books(Protocol):
    """The open books an admission reads (BinanceRest has them)."""

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]: ...

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]: ...


def live_ids(state_dir: Path) -> frozenset[str]:
    """The ids of the journal's entries (none, and nothing created, when there is no journal)."""
    if not (state_dir / JOURNAL_NAME).exists():
        return frozenset()
    with PendingEntryStore(state_dir) as store:
        return frozenset(store.load_all())


Ids = Callable[[], Collection[str]]  # the journal's entry ids, read only when a listing needs them


async def foreign_conditional(books: Books, state_dir: Path, live: Ids) -> int:
    """The daemon's fresh count, else the exchange's list on every symbol (40 weight)."""
    counted = daemon_account(state_dir).foreign_conditional
    if counted is not None:
        return counted
    return foreign(await books.open_algo_orders(), live())


async def foreign_open(books: Books, spec: EntrySpec, filters: SymbolFilters, live: Ids) -> int:
    """Open regular orders on the entry's symbol that no entry holds (1 weight): read for a limit
    entry (a market one never rests on the book) on a symbol that states MAX_NUM_ORDERS."""
    if spec.order_type is not OrderType.LIMIT or filters.max_num_orders <= 0:
        return 0
    return foreign(await books.open_orders(spec.symbol), live())


async def read_account(books: Books, state_dir: Path, spec: EntrySpec, filters: SymbolFilters) -> Account:
    """What admission counts beside the journal, for ``spec``; the journal is read for its ids
    only if an exchange listing is (at most once)."""
    live = functools.cache(partial(live_ids, state_dir))  # read at most once, and only if needed
    conditional = await foreign_conditional(books, state_dir, live)
    opened = await foreign_open(books, spec, filters, live)
    return Account(conditional, opened, filters.max_num_orders)
