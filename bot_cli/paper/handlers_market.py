"""The /fapi market-data endpoints: prices, tickers, depth, klines and funding, all from the
venue's seeded price path (``history``, ``quotes``, ``klines``, ``funding``)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot_cli.paper import funding, klines, quotes, shapes, shapes_market
from bot_cli.paper.endpoint import Route, limit, one_or_all, opt_symbol, w, w_symbol
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.rules import BookError, Params, integer, required, symbol_spec


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange

DAY_MS = 86_400_000


def ticker_price(ex: PaperExchange, p: Params, now: int) -> Any:
    only = opt_symbol(p)
    rows = [
        {"symbol": s, "price": SYMBOLS[s].fmt_price(ex.book.mark(s, now)), "time": now}
        for s in SYMBOLS
        if only in (None, s)
    ]
    return one_or_all(only, rows)


def premium_index(ex: PaperExchange, p: Params, now: int) -> Any:
    """Mark price and funding: one object for a symbol, a list of all without one."""
    only = opt_symbol(p)
    rows = [
        shapes_market.premium_index(s, ex.book.mark(s, now), now) for s in SYMBOLS if only in (None, s)
    ]
    return one_or_all(only, rows)


def ticker_24hr(ex: PaperExchange, p: Params, now: int) -> Any:
    """The rolling 24 h window up to now, from the price history."""
    only = opt_symbol(p)
    return one_or_all(only, [_ticker(ex, s, now) for s in SYMBOLS if only in (None, s)])


def _ticker(ex: PaperExchange, symbol: str, now: int) -> dict[str, Any]:
    spec, start = SYMBOLS[symbol], now - DAY_MS
    h = ex.history().ohlc(symbol, start, now)
    bar = klines.row(ex.history(), symbol, "1d", klines.Bar(start, now - 1), now)
    change = h.close - h.open
    volume, quote = Decimal(bar[5]), Decimal(bar[7])
    first = (start // 1000) * 7
    return {
        "symbol": symbol,
        "priceChange": spec.fmt_price(change) if change else "0",
        "priceChangePercent": format((change / h.open * 100).quantize(Decimal("0.001")), "f"),
        "weightedAvgPrice": spec.fmt_price(spec.round_price(quote / volume)),
        "lastPrice": spec.fmt_price(h.close),
        "lastQty": spec.fmt_qty(quotes.qty(symbol, h.close, now // 1000, 0)),
        "openPrice": spec.fmt_price(h.open),
        "highPrice": spec.fmt_price(h.high),
        "lowPrice": spec.fmt_price(h.low),
        "volume": bar[5],
        "quoteVolume": bar[7],
        "openTime": start,
        "closeTime": now,
        "firstId": first,
        "lastId": first + bar[8] - 1,
        "count": bar[8],
    }


def book_ticker(ex: PaperExchange, p: Params, now: int) -> Any:
    only = opt_symbol(p)
    return one_or_all(only, [_book_ticker(ex, s, now) for s in SYMBOLS if only in (None, s)])


def _book_ticker(ex: PaperExchange, symbol: str, now: int) -> dict[str, Any]:
    spec = SYMBOLS[symbol]
    bids, asks = quotes.levels(symbol, ex.book.mark(symbol, now), now, 1)
    (bid, bid_qty), (ask, ask_qty) = bids[0], asks[0]
    return {
        "symbol": symbol,
        "bidPrice": spec.fmt_price(bid),
        "bidQty": spec.fmt_qty(bid_qty),
        "askPrice": spec.fmt_price(ask),
        "askQty": spec.fmt_qty(ask_qty),
        "time": now,
    }


def depth(ex: PaperExchange, p: Params, now: int) -> Any:
    spec = symbol_spec(p)
    n = integer(p, "limit", 500) or 500
    if n not in quotes.DEPTH_LIMITS:
        raise BookError(-1130, "Data sent for parameter 'limit' is not valid.")
    bids, asks = quotes.levels(spec.symbol, ex.book.mark(spec.symbol, now), now, n)
    return {
        "lastUpdateId": now,
        "E": now,
        "T": now,
        "bids": [[spec.fmt_price(px), spec.fmt_qty(q)] for px, q in bids],
        "asks": [[spec.fmt_price(px), spec.fmt_qty(q)] for px, q in asks],
    }


# Request weight by the limit sent (default 500): (largest limit, weight), the rest the last weight.
_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (None, 20))
_KLINE_WEIGHTS = ((99, 1), (499, 2), (1000, 5), (None, 10))


def _w_depth(p: Params) -> int:
    return _weight_by_limit(p, _DEPTH_WEIGHTS)


def _w_klines(p: Params) -> int:
    return _weight_by_limit(p, _KLINE_WEIGHTS)


def _weight_by_limit(p: Params, table: tuple[tuple[int | None, int], ...]) -> int:
    text = p.get("limit") or "500"
    n = int(text) if text.isdigit() else 500  # a malformed limit weighs as the default; the handler refuses it
    return next(weight for most, weight in table if most is None or n <= most)


def _bars(p: Params, now: int) -> tuple[str, list[klines.Bar]]:
    name = klines.interval(required(p, "interval"))
    start, end = integer(p, "startTime"), integer(p, "endTime")
    return name, klines.bars(name, start, end, limit(p, 500, 1500), now)


def kline_rows(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol = symbol_spec(p).symbol
    name, bars = _bars(p, now)
    return [klines.row(ex.history(), symbol, name, b, now) for b in bars]


def mark_klines(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol = symbol_spec(p).symbol
    name, bars = _bars(p, now)
    return [klines.price_row(ex.history(), symbol, name, b, now) for b in bars]


def index_klines(ex: PaperExchange, p: Params, now: int) -> Any:
    """The index of a pair: the venue's index is its mark, so the mark's klines."""
    pair = required(p, "pair")
    if pair not in SYMBOLS:
        raise BookError(-1121, "Invalid symbol.")
    name, bars = _bars(p, now)
    return [klines.price_row(ex.history(), pair, name, b, now) for b in bars]


def premium_klines(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol_spec(p)
    _name, bars = _bars(p, now)
    return [klines.premium_row(b, now) for b in bars]


def funding_rate(ex: PaperExchange, p: Params, now: int) -> Any:
    """GET /fapi/v1/fundingRate: the settled periods, oldest first (the last ``limit``, 100,
    up to 1000, unless a start is sent)."""
    only, n = opt_symbol(p), limit(p, 100, 1000)
    start, end = integer(p, "startTime"), min(integer(p, "endTime") or now, now)
    last = end // funding.PERIOD_MS * funding.PERIOD_MS
    first = funding.next_time(start - 1) if start is not None else last - (n - 1) * funding.PERIOD_MS
    times = list(range(first, last + 1, funding.PERIOD_MS))[:n]
    history = ex.history()
    return [
        {
            "symbol": s,
            "fundingRate": shapes_market.FUNDING_RATE,
            "fundingTime": at,
            "markPrice": shapes.money(history.price(s, at)),
        }
        for at in times
        for s in SYMBOLS
        if only in (None, s)
    ][:n]


def funding_info(ex: PaperExchange, p: Params, now: int) -> Any:
    return [
        {
            "symbol": s,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": funding.PERIOD_MS // 3_600_000,
            "disclaimer": False,
        }
        for s in SYMBOLS
    ]


ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v1/ticker/price", "NONE", w_symbol(2), ticker_price),
    Route("GET", "/fapi/v2/ticker/price", "NONE", w_symbol(2), ticker_price),
    Route("GET", "/fapi/v1/premiumIndex", "NONE", w_symbol(10), premium_index),
    Route("GET", "/fapi/v1/ticker/24hr", "NONE", w_symbol(40), ticker_24hr),
    Route("GET", "/fapi/v1/ticker/bookTicker", "NONE", w_symbol(5), book_ticker),
    Route("GET", "/fapi/v1/depth", "NONE", _w_depth, depth),
    Route("GET", "/fapi/v1/klines", "NONE", _w_klines, kline_rows),
    Route("GET", "/fapi/v1/markPriceKlines", "NONE", _w_klines, mark_klines),
    Route("GET", "/fapi/v1/indexPriceKlines", "NONE", _w_klines, index_klines),
    Route("GET", "/fapi/v1/premiumIndexKlines", "NONE", _w_klines, premium_klines),
    Route("GET", "/fapi/v1/fundingRate", "NONE", w(1), funding_rate),
    Route("GET", "/fapi/v1/fundingInfo", "NONE", w(1), funding_info),
)
