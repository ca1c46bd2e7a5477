"""The paper venue's price history, for klines and tickers: open, high, low, close of any span.

Since its anchor a symbol's price is the seeded walk of ``market`` (the prices the venue
matched at); ``ForwardWalk`` keeps, per whole UTC minute, the walk's value at the minute's start
and its extremes, so every bar (all Binance intervals are whole minutes) has the exact high and
low of that path, whatever its interval, and a long-running venue computes each minute once.

Before the anchor there was no venue, so ``BackwardWalk`` makes a past up: a Brownian bridge
back from the anchor, built top-down on dyadic seconds from the same seed (any second costs
~32 draws, memoized), its long scales damped so that years of history stay within a plausible
band. Its bars take the extremes of ~32 points each: consistent across intervals at opens and
closes, close to it at highs and lows. A ``set_price`` re-anchors, and so re-makes that past.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from decimal import Decimal

from bot_cli.paper.market import SYMBOLS, PricePath, _normal


MINUTE_S = 60
_TOP_LEVEL = 32  # the bridge spans 2**32 s (136 years) before the anchor
_DAMP_ABOVE = 2**16  # spans longer than ~18 h add no more variance than this one
_SAMPLES = 32  # points per bar in the made-up past
_MEMO_MAX = 500_000


@dataclass(frozen=True, slots=True)
class Ohlc:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class ForwardWalk:
    """The walk of one symbol from its anchor's base second, as whole-minute blocks."""

    def __init__(self, seed: int, symbol: str, base: int) -> None:
        self.seed, self.symbol, self.base = seed, symbol, base
        self.first = base // MINUTE_S  # the minute holding the base second
        self.starts, self.lows, self.highs = array("d"), array("d"), array("d")
        self._s, self._sec = 0.0, base  # the walk at the start of the next block to fill

    def at(self, t_ms: int) -> float:
        """The walk at ``t_ms`` (>= the base second), linear inside a second."""
        sec, frac = divmod(t_ms, 1000)
        s0 = self._at_second(sec)
        return s0 + _normal(self.seed, self.symbol, sec) * frac / 1000.0 if frac else s0

    def extremes(self, start_ms: int, end_ms: int) -> tuple[float, float]:
        """(low, high) of the walk over [start_ms, end_ms]; whole minutes from the table."""
        values = [self.at(start_ms), self.at(end_ms)]
        sec, last = -(-start_ms // 1000), end_ms // 1000
        s = self._at_second(sec) if sec <= last else 0.0
        while sec <= last:
            minute = sec // MINUTE_S
            if sec % MINUTE_S == 0 and (minute + 1) * MINUTE_S <= last:
                self._fill(minute + 1)
                i = minute - self.first
                values += [self.lows[i], self.highs[i]]
                sec, s = sec + MINUTE_S, self.starts[i + 1]
                continue
            values.append(s)
            s += _normal(self.seed, self.symbol, sec)
            sec += 1
        return min(values), max(values)

    def _at_second(self, sec: int) -> float:
        minute = sec // MINUTE_S
        self._fill(minute)
        s = self.starts[minute - self.first]
        for k in range(max(minute * MINUTE_S, self.base), sec):
            s += _normal(self.seed, self.symbol, k)
        return s

    def _fill(self, minute: int) -> None:
        """Compute the blocks up to ``minute`` (once; the walk only ever grows forward)."""
        while self.first + len(self.starts) <= minute:
            s, lo, hi = self._s, self._s, self._s
            end = (self._sec // MINUTE_S + 1) * MINUTE_S
            for k in range(self._sec, end):
                s += _normal(self.seed, self.symbol, k)
                lo, hi = min(lo, s), max(hi, s)
            self.starts.append(self._s)
            self.lows.append(lo)
            self.highs.append(hi)
            self._s, self._sec = s, end


class BackwardWalk:
    """A made-up walk before the anchor: W(0) = 0 at the anchor, seconds counted backwards."""

    def __init__(self, seed: int, symbol: str) -> None:
        self.seed, self.symbol = seed, symbol
        self._memo: dict[int, float] = {}

    def at(self, seconds_before: float) -> float:
        lo = math.floor(seconds_before)
        a = self._node(lo)
        frac = seconds_before - lo
        return a + (self._node(lo + 1) - a) * frac if frac else a

    def _node(self, x: int) -> float:
        if x <= 0 or x >= 2**_TOP_LEVEL:
            return 0.0  # pinned at the anchor and at the far end
        found = self._memo.get(x)
        if found is not None:
            return found
        k = (x & -x).bit_length() - 1  # x is an odd multiple of 2**k
        span = 2 ** (k + 1)
        sd = math.sqrt(span) / 2 * (math.sqrt(_DAMP_ABOVE / span) if span > _DAMP_ABOVE else 1.0)
        mid = (self._node(x - 2**k) + self._node(x + 2**k)) / 2
        value = mid + _normal(self.seed, f"{self.symbol}:past", x) * sd
        if len(self._memo) > _MEMO_MAX:
            self._memo.clear()
        self._memo[x] = value
        return value

    def extremes(self, start_s: float, end_s: float) -> tuple[float, float]:
        """(low, high) over [start_s, end_s] seconds before the anchor, from sampled points."""
        step = max(1, 2 ** int(math.log2(max(1.0, (end_s - start_s) / _SAMPLES))))
        points = [self.at(start_s), self.at(end_s)]
        x = int(start_s // step + 1) * step
        while x < end_s:
            points.append(self._node(x))
            x += step
        return min(points), max(points)


class History:
    """OHLC of any span of any symbol, from the book's price path (anchors, seed, volatility)."""

    def __init__(self, path: PricePath) -> None:
        self.path = path
        self._forward: dict[str, ForwardWalk] = {}
        self._backward: dict[str, BackwardWalk] = {}

    def ohlc(self, symbol: str, start_ms: int, end_ms: int) -> Ohlc:
        """Open at ``start_ms``, close at ``end_ms``, and the extremes between."""
        lo, hi = self._log_extremes(symbol, start_ms, end_ms)
        o, c = self.price(symbol, start_ms), self.price(symbol, end_ms)
        high, low = max(self._price(symbol, hi), o, c), min(self._price(symbol, lo), o, c)
        return Ohlc(o, high, low, c)

    def price(self, symbol: str, t_ms: int) -> Decimal:
        anchor = self.path.anchors[symbol]
        if t_ms >= anchor.t0_ms:
            return self.path.price_at(symbol, t_ms)
        return self._price(symbol, self._backward_of(symbol).at((anchor.t0_ms - t_ms) / 1000))

    def _log_extremes(self, symbol: str, start_ms: int, end_ms: int) -> tuple[float, float]:
        t0 = self.path.anchors[symbol].t0_ms
        found: list[float] = []
        if start_ms < t0:
            back = self._backward_of(symbol)
            found += back.extremes((t0 - min(end_ms, t0)) / 1000, (t0 - start_ms) / 1000)
        if end_ms > t0:
            fwd = self._forward_of(symbol)
            origin = fwd.at(t0)
            found += [v - origin for v in fwd.extremes(max(start_ms, t0), end_ms)]
        return (min(found), max(found)) if found else (0.0, 0.0)  # an empty span at the anchor

    def _price(self, symbol: str, log_move: float) -> Decimal:
        """The anchor price moved by ``log_move`` walk units, on the tick."""
        anchor = self.path.anchors[symbol]
        raw = Decimal(float(anchor.p0) * math.exp(self.path.volatility * log_move))
        return SYMBOLS[symbol].round_price(raw)

    def _forward_of(self, symbol: str) -> ForwardWalk:
        base = self.path.anchors[symbol].t0_ms // 1000
        walk = self._forward.get(symbol)
        if walk is None or walk.base != base:  # re-anchored: a new walk
            walk = self._forward[symbol] = ForwardWalk(self.path.seed, symbol, base)
        return walk

    def _backward_of(self, symbol: str) -> BackwardWalk:
        walk = self._backward.get(symbol)
        if walk is None:
            walk = self._backward[symbol] = BackwardWalk(self.path.seed, symbol)
        return walk
