"""The market streams' events: which names exist, and what each pushes when (no I/O).

Names (Binance's grammar, symbols lowercase): ``<symbol>@markPrice`` (every 3 s) or
``@markPrice@1s``, ``<symbol>@bookTicker`` (when the best quote changes), ``<symbol>@kline_<i>``
(every 250 ms, ``x`` true once the bar closed), ``<symbol>@aggTrade`` (one made-up trade a second
at the mark, and every fill of the paper account). Binance serves them on routed paths: book
streams on ``/public``, the others on ``/market``; ``category`` says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from bot_cli.paper import funding, klines, quotes, shapes, shapes_market
from bot_cli.paper.market import SYMBOLS


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange

_NAME = re.compile(
    r"^(?P<symbol>[a-z0-9]+)@(?P<kind>markPrice(?:@1s)?|bookTicker|aggTrade|kline_(?P<i>\w+))$"
)
KLINE_EVERY_MS = 250


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    symbol: str  # upper case, as in the payloads; may be unknown: accepted, never pushed
    kind: str  # markPrice | bookTicker | aggTrade | kline
    every_ms: int = 0
    interval: str = ""

    @property
    def category(self) -> str:
        return "public" if self.kind == "bookTicker" else "market"


def parse(name: str) -> Stream | None:
    """The stream a name stands for, or None for a name Binance refuses ("invalid stream")."""
    m = _NAME.match(name)
    if m is None:
        return None
    symbol, kind = m["symbol"].upper(), m["kind"]
    if kind.startswith("markPrice"):
        return Stream(name, symbol, "markPrice", 1000 if kind.endswith("@1s") else 3000)
    if m["i"] is not None:
        if m["i"] not in klines.INTERVALS:
            return None
        return Stream(name, symbol, "kline", KLINE_EVERY_MS, m["i"])
    return Stream(name, symbol, kind, 1000 if kind == "aggTrade" else 100)


@dataclass
class Cursor:
    """What a socket already pushed for one stream."""

    last_ms: int = -1
    last_quote: tuple[Decimal, Decimal] | None = None
    last_trade_id: int = 0
    last_bar: int = -1


@dataclass
class Feed:
    """The events due on one socket's streams at ``now``."""

    cursors: dict[str, Cursor] = field(default_factory=dict)

    def due(self, ex: PaperExchange, streams: list[Stream], now: int) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for s in streams:
            if s.symbol not in SYMBOLS:
                continue
            cur = self.cursors.setdefault(s.name, Cursor())
            out += [(s.name, e) for e in _events(ex, s, cur, now)]
        return out


def _events(ex: PaperExchange, s: Stream, cur: Cursor, now: int) -> list[dict[str, Any]]:
    if s.kind == "bookTicker":
        return _book_ticker(ex, s, cur, now)
    if s.kind == "aggTrade":
        return _agg_trades(ex, s, cur, now)
    if cur.last_ms >= 0 and now // s.every_ms == cur.last_ms // s.every_ms:
        return []
    cur.last_ms = now
    return [mark_price(ex, s.symbol, now)] if s.kind == "markPrice" else _kline(ex, s, cur, now)


def mark_price(ex: PaperExchange, symbol: str, now: int) -> dict[str, Any]:
    mark = shapes.money(ex.book.mark(symbol, now))
    return {
        "e": "markPriceUpdate", "E": now, "s": symbol, "p": mark, "ap": mark, "i": mark,
        "P": mark, "r": shapes_market.FUNDING_RATE, "T": funding.next_time(now), "st": 1,
    }  # fmt: skip


def _book_ticker(ex: PaperExchange, s: Stream, cur: Cursor, now: int) -> list[dict[str, Any]]:
    spec, mark = SYMBOLS[s.symbol], ex.book.mark(s.symbol, now)
    bids, asks = quotes.levels(s.symbol, mark, now, 1)
    if cur.last_quote == (bids[0][0], asks[0][0]):
        return []
    cur.last_quote = (bids[0][0], asks[0][0])
    return [{
        "e": "bookTicker", "u": now, "E": now, "T": now, "s": s.symbol, "ps": s.symbol,
        "b": spec.fmt_price(bids[0][0]), "B": spec.fmt_qty(bids[0][1]),
        "a": spec.fmt_price(asks[0][0]), "A": spec.fmt_qty(asks[0][1]), "st": 1,
    }]  # fmt: skip


def _kline(ex: PaperExchange, s: Stream, cur: Cursor, now: int) -> list[dict[str, Any]]:
    """The bar of now; when a new bar began, first the previous one, closed (``x`` true)."""
    bar = klines.bar_at(s.interval, now)
    bars = [bar]
    if 0 <= cur.last_bar < bar.open_time:
        bars.insert(0, klines.bar_at(s.interval, bar.open_time - 1))
    cur.last_bar = bar.open_time
    return [_kline_event(ex, s, b, now) for b in bars]


def _kline_event(ex: PaperExchange, s: Stream, bar: klines.Bar, now: int) -> dict[str, Any]:
    row = klines.row(ex.history(), s.symbol, s.interval, bar, now)
    first = bar.open_time // 1000 * 7
    k = {
        "t": bar.open_time, "T": bar.close_time, "s": s.symbol, "i": s.interval, "f": first,
        "L": first + row[8] - 1, "o": row[1], "c": row[4], "h": row[2], "l": row[3],
        "v": row[5], "n": row[8], "x": now > bar.close_time, "q": row[7], "V": row[9],
        "Q": row[10], "B": "0",
    }  # fmt: skip
    return {"e": "kline", "E": now, "s": s.symbol, "k": k}


def _agg_trades(ex: PaperExchange, s: Stream, cur: Cursor, now: int) -> list[dict[str, Any]]:
    """The account's new fills, then one made-up trade per new second, at the mark; ids grow
    with time (ten per second)."""
    spec = SYMBOLS[s.symbol]
    new = [t for t in ex.book.trades if t.symbol == s.symbol and t.trade_id > cur.last_trade_id]
    out = [
        _agg(s.symbol, t.time // 1000 * 10 + 1 + i, spec.fmt_price(t.price), spec.fmt_qty(t.qty),
             t=t.time, maker=(t.side.value == "BUY") == t.maker)
        for i, t in enumerate(new)
    ]  # fmt: skip
    if ex.book.trades:
        cur.last_trade_id = max(cur.last_trade_id, ex.book.trades[-1].trade_id)
    if now // 1000 != cur.last_ms // 1000:
        cur.last_ms = now
        mark = ex.book.mark(s.symbol, now)
        qty = quotes.qty(s.symbol, mark, now // 1000, 7) / 10
        qty = max(spec.min_qty, qty.quantize(spec.step_size, rounding=ROUND_DOWN))
        out.append(_agg(s.symbol, now // 1000 * 10, spec.fmt_price(mark), spec.fmt_qty(qty), t=now,
                        maker=(now // 1000) % 2 == 0))  # fmt: skip
    return out


def _agg(symbol: str, ident: int, price: str, qty: str, *, t: int, maker: bool) -> dict[str, Any]:
    """``m``: was the buyer the maker (the taker sold)."""
    return {
        "e": "aggTrade", "E": t, "s": symbol, "a": ident, "p": price, "q": qty, "nq": qty,
        "f": ident, "l": ident, "T": t, "m": maker, "st": 1,
    }  # fmt: skip
