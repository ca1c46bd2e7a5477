"""A made-up order book around the venue's price: the best bid is the mark, the best ask one
tick above, and each level holds a deterministic quantity (it changes every second)."""

from __future__ import annotations

import hashlib
from decimal import ROUND_DOWN, Decimal

from bot_cli.paper.market import SYMBOLS


LEVEL_NOTIONAL = Decimal(20_000)  # typical value resting on one level, in USDT
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)

Level = tuple[Decimal, Decimal]


def best(symbol: str, mark: Decimal) -> tuple[Decimal, Decimal]:
    """(best bid, best ask)."""
    return mark, mark + SYMBOLS[symbol].tick_size


def levels(symbol: str, mark: Decimal, t_ms: int, n: int) -> tuple[list[Level], list[Level]]:
    """``n`` bid and ``n`` ask levels, best first."""
    spec = SYMBOLS[symbol]
    bid, ask = best(symbol, mark)
    second = t_ms // 1000
    bids = [(bid - i * spec.tick_size, qty(symbol, mark, second, -i - 1)) for i in range(n)]
    asks = [(ask + i * spec.tick_size, qty(symbol, mark, second, i + 1)) for i in range(n)]
    return [b for b in bids if b[0] > 0], asks


def qty(symbol: str, mark: Decimal, second: int, level: int) -> Decimal:
    """The quantity on one level (negative levels: bids), at least one step."""
    spec = SYMBOLS[symbol]
    digest = hashlib.blake2b(f"{symbol}:{second}:{level}".encode(), digest_size=4).digest()
    u = Decimal(int.from_bytes(digest, "big")) / Decimal(2**32)
    raw = LEVEL_NOTIONAL * (Decimal("0.2") + 2 * u) / mark
    steps = (raw / spec.step_size).to_integral_value(rounding=ROUND_DOWN)
    return max(steps, Decimal(1)) * spec.step_size
