"""Kline intervals (every one Binance lists) and the kline rows, from the venue's history.

Bars open on UTC boundaries: minutes to days from the epoch, 3d bars every third day from the
epoch, weeks on Mondays, months on the 1st. Volumes are made up (the venue has no other
traders), deterministic per bar; prices are the history's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot_cli.paper.history import History
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.rules import BookError


MINUTE_MS = 60_000
DAY_MS = 1440 * MINUTE_MS
_FIXED = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
    "6h": 360, "8h": 480, "12h": 720, "1d": 1440, "3d": 3 * 1440, "1w": 7 * 1440,
}  # fmt: skip
INTERVALS = (*_FIXED, "1M")
_MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday: Binance's weeks start on Mondays
_NOTIONAL_PER_MINUTE = Decimal(250_000)  # made-up traded value per minute, in USDT


@dataclass(frozen=True, slots=True)
class Bar:
    open_time: int
    close_time: int  # the bar's last millisecond, as Binance sends it


def interval(p_value: str) -> str:
    if p_value not in INTERVALS:
        raise BookError(-1120, "Invalid interval.")
    return p_value


def bar_at(name: str, t_ms: int) -> Bar:
    """The bar of ``name`` that holds ``t_ms``."""
    if name == "1M":
        return _month(t_ms)
    span = _FIXED[name] * MINUTE_MS
    origin = _MONDAY_MS if name == "1w" else 0
    start = (t_ms - origin) // span * span + origin
    return Bar(start, start + span - 1)


def _month(t_ms: int) -> Bar:
    """The calendar month (UTC) that holds ``t_ms``."""
    d = datetime.fromtimestamp(t_ms / 1000, UTC)
    first = datetime(d.year, d.month, 1, tzinfo=UTC)
    after = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
    return Bar(int(first.timestamp() * 1000), int(after.timestamp() * 1000) - 1)


def bars(name: str, start: int | None, end: int | None, limit: int, now: int) -> list[Bar]:
    """Up to ``limit`` bars: from ``start`` on if sent, else the last ones up to ``end``/now."""
    end = min(end if end is not None else now, now)
    if start is not None:
        bar = bar_at(name, max(start, 0))
        if bar.open_time < start:
            bar = bar_at(name, bar.close_time + 1)
        out: list[Bar] = []
        while len(out) < limit and bar.open_time <= end:
            out.append(bar)
            bar = bar_at(name, bar.close_time + 1)
        return out
    out, t = [], end
    while len(out) < limit and t >= 0:
        bar = bar_at(name, t)
        out.append(bar)
        t = bar.open_time - 1
    return out[::-1]


def row(history: History, symbol: str, name: str, bar: Bar, now: int) -> list[Any]:
    """One kline: [open time, o, h, l, c, volume, close time, quote volume, trades,
    taker buy volume, taker buy quote volume, "0"]."""
    spec = SYMBOLS[symbol]
    p = history.ohlc(symbol, bar.open_time, min(bar.close_time + 1, now))
    minutes = Decimal(max(1, (min(bar.close_time + 1, now) - bar.open_time) // MINUTE_MS))
    u = _uniform(symbol, name, bar.open_time)
    mid = (p.open + p.close) / 2
    volume = (_NOTIONAL_PER_MINUTE * minutes * (Decimal("0.5") + u) / mid).quantize(
        spec.step_size
    )
    taker = (volume * (Decimal("0.35") + u * Decimal("0.3"))).quantize(spec.step_size)
    return [
        bar.open_time, spec.fmt_price(p.open), spec.fmt_price(p.high), spec.fmt_price(p.low),
        spec.fmt_price(p.close), spec.fmt_qty(volume), bar.close_time,
        _quote(volume * mid), int(minutes * 40 * (1 + u)), spec.fmt_qty(taker),
        _quote(taker * mid), "0",
    ]  # fmt: skip


def price_row(history: History, symbol: str, name: str, bar: Bar, now: int) -> list[Any]:
    """A mark or index price kline: prices only, the volume columns "0" (Binance's shape)."""
    spec = SYMBOLS[symbol]
    p = history.ohlc(symbol, bar.open_time, min(bar.close_time + 1, now))
    prices = [spec.fmt_price(x) for x in (p.open, p.high, p.low, p.close)]
    minutes = max(1, (min(bar.close_time + 1, now) - bar.open_time) // MINUTE_MS)
    return [bar.open_time, *prices, "0", bar.close_time, "0", minutes, "0", "0", "0"]


def premium_row(bar: Bar, now: int) -> list[Any]:
    """A premium index kline: the mark is the index here, so the premium is always zero."""
    zero = "0.00000000"
    minutes = max(1, (min(bar.close_time + 1, now) - bar.open_time) // MINUTE_MS)
    return [bar.open_time, zero, zero, zero, zero, "0", bar.close_time, "0", minutes, "0", "0", "0"]


def _quote(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.00000001")), "f")


def _uniform(symbol: str, name: str, open_time: int) -> Decimal:
    digest = hashlib.blake2b(f"{symbol}:{name}:{open_time}".encode(), digest_size=4).digest()
    return Decimal(int.from_bytes(digest, "big")) / Decimal(2**32)
