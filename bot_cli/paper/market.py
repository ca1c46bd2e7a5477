"""The paper venue's symbols and its seeded price path: the price is a pure function of time.

Each symbol has an anchor ``(t0_ms, p0)``. From it the log-price follows a random walk whose
per-second steps come from a hash of ``(seed, symbol, second)`` (a standard normal, scaled by
the relative volatility per second). Inside a second the log-price is interpolated linearly, so
the price is monotone within each whole second: the extremes over any sub-second span are at its
ends, which lets the book skip quiet seconds without stepping through them.

Because nothing here depends on when it is asked, a restarted paper venue recomputes exactly the
prices it would have seen while it was down. ``set_price`` re-anchors a symbol at ``now``; the
walk continues from the new price.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal


PERCENT_UP, PERCENT_DOWN = Decimal("1.1500"), Decimal("0.8500")  # PERCENT_PRICE: limits vs the mark


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A tradable symbol with Binance-like filters (all values as Binance would send them)."""

    symbol: str
    base_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    start_price: Decimal
    price_precision: int
    quantity_precision: int

    def round_price(self, price: Decimal) -> Decimal:
        """Nearest multiple of the tick (never below one tick)."""
        ticks = (price / self.tick_size).to_integral_value(rounding=ROUND_HALF_EVEN)
        return (max(ticks, Decimal(1)) * self.tick_size).quantize(self.tick_size)

    def fmt_price(self, price: Decimal) -> str:
        return str(price.quantize(self.tick_size)) if price else "0"

    def fmt_qty(self, qty: Decimal) -> str:
        return str(qty.quantize(self.step_size)) if qty else "0"


# symbol, tick size, min price, max price, step size, min qty, max qty, MARKET max qty, min notional, start price
_TABLE = (
    ("BTCUSDT", "0.10", "261.10", "809484", "0.001", "0.001", "1000", "120", "100", "97000.00"),
    ("ETHUSDT", "0.01", "39.86", "306177", "0.001", "0.001", "10000", "2000", "20", "3500.00"),
    ("SOLUSDT", "0.0100", "0.4200", "6857", "1", "1", "1000000", "5000", "5", "180.0000"),
    ("DOGEUSDT", "0.00001", "0.00244", "30", "1", "1", "50000000", "30000000", "5", "0.32000"),
    ("BNBUSDT", "0.010", "6.600", "100000", "0.01", "0.01", "100000", "2000", "5", "650.000"),
    ("XRPUSDT", "0.0001", "0.0143", "100000", "0.1", "0.1", "10000000", "2000000", "5", "2.2000"),
)


def _spec(row: tuple[str, ...]) -> SymbolSpec:
    """A symbol from one row of the table above."""
    symbol, tick, lo, hi, step, min_qty, max_qty, market_max, notional, start = row
    tick_d, step_d = Decimal(tick), Decimal(step)
    return SymbolSpec(
        symbol=symbol,
        base_asset=symbol.removesuffix("USDT"),
        tick_size=tick_d,
        min_price=Decimal(lo),
        max_price=Decimal(hi),
        step_size=step_d,
        min_qty=Decimal(min_qty),
        max_qty=Decimal(max_qty),
        market_max_qty=Decimal(market_max),
        min_notional=Decimal(notional),
        start_price=Decimal(start),
        price_precision=-int(tick_d.as_tuple().exponent),
        quantity_precision=-int(step_d.as_tuple().exponent),
    )


SYMBOLS: dict[str, SymbolSpec] = {s.symbol: s for s in map(_spec, _TABLE)}


@dataclass(frozen=True, slots=True)
class Anchor:
    """The walk of one symbol starts here: price ``p0`` at ``t0_ms``."""

    t0_ms: int
    p0: Decimal


def _normal(seed: int, symbol: str, second: int) -> float:
    """A standard normal drawn from a hash: the same inputs give the same step, everywhere."""
    digest = hashlib.blake2b(f"{seed}:{symbol}:{second}".encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / 2.0**64  # in (0, 1]: log() is defined
    u2 = int.from_bytes(digest[8:], "big") / 2.0**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class _Sums:
    """Cumulative step sums S(k) from one base second, kept for a sliding window of k.

    Time only moves forward in the book, so old sums are dropped (memory stays bounded on a
    venue running for weeks); a rare question about the past starts the sums over.
    """

    KEEP = 4096

    def __init__(self, seed: int, symbol: str, base: int) -> None:
        self.seed, self.symbol, self.base = seed, symbol, base
        self.first = 0  # k of sums[0]
        self.sums = [0.0]

    def pair(self, k: int) -> tuple[float, float]:
        """(S(k), S(k + 1)): the walk at the start and the end of second ``base + k``."""
        if k < self.first:
            self.first, self.sums = 0, [0.0]
        while self.first + len(self.sums) <= k + 1:
            second = self.base + self.first + len(self.sums) - 1
            self.sums.append(self.sums[-1] + _normal(self.seed, self.symbol, second))
        at = k - self.first
        result = self.sums[at], self.sums[at + 1]
        if len(self.sums) > 2 * self.KEEP:
            drop = len(self.sums) - self.KEEP
            self.first += drop
            del self.sums[:drop]
        return result


class PricePath:
    """Deterministic prices for every symbol; ``price_at`` is a pure function of its inputs."""

    def __init__(self, seed: int, volatility: float, anchors: dict[str, Anchor]) -> None:
        self.seed = seed
        self.volatility = volatility
        self.anchors = dict(anchors)
        self._sums: dict[str, _Sums] = {}  # per symbol, for its current anchor's base second

    @classmethod
    def starting(cls, seed: int, volatility: float, now_ms: int) -> PricePath:
        """A fresh path: every symbol anchored at its start price now."""
        return cls(
            seed, volatility, {s: Anchor(now_ms, spec.start_price) for s, spec in SYMBOLS.items()}
        )

    def price_at(self, symbol: str, t_ms: int) -> Decimal:
        """The symbol's price at ``t_ms``, on its tick; the anchor price before the anchor."""
        anchor = self.anchors[symbol]
        if t_ms <= anchor.t0_ms:
            return anchor.p0
        log_move = self.volatility * (self._walk(symbol, t_ms) - self._walk(symbol, anchor.t0_ms))
        raw = Decimal(float(anchor.p0) * math.exp(log_move))
        return SYMBOLS[symbol].round_price(raw)

    def set_price(self, symbol: str, price: Decimal, now_ms: int) -> Decimal:
        """Re-anchor ``symbol`` at ``price`` (rounded to its tick) from ``now_ms`` on."""
        rounded = SYMBOLS[symbol].round_price(price)
        self.anchors[symbol] = Anchor(now_ms, rounded)
        return rounded

    def _walk(self, symbol: str, t_ms: int) -> float:
        """Sum of unit steps from the anchor's whole second to ``t_ms`` (linear inside a second)."""
        base = self.anchors[symbol].t0_ms // 1000
        k, frac_ms = divmod(t_ms - base * 1000, 1000)
        if k == 0:  # the anchor's own second: no need to touch (or rewind) the window
            return _normal(self.seed, symbol, base) * (frac_ms / 1000.0)
        sums = self._sums.get(symbol)
        if sums is None or sums.base != base:
            sums = self._sums[symbol] = _Sums(self.seed, symbol, base)
        start, end = sums.pair(k)
        return start + (end - start) * (frac_ms / 1000.0)
