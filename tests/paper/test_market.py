"""The seeded price path: a pure function of time, on the tick, re-anchored by set_price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot_cli.paper.market import SYMBOLS, PricePath
from tests.paper import T0


def test_same_seed_same_prices_different_seed_different_prices() -> None:
    """Two paths with one seed agree at every instant; another seed gives another walk."""
    # Arrange
    a, b = PricePath.starting(7, 0.0005, T0), PricePath.starting(7, 0.0005, T0)
    other = PricePath.starting(8, 0.0005, T0)
    times = [T0 + k * 1_234 for k in range(200)]

    # Act
    pa = [a.price_at("BTCUSDT", t) for t in times]
    pb = [b.price_at("BTCUSDT", t) for t in reversed(times)][::-1]  # asked in another order
    po = [other.price_at("BTCUSDT", t) for t in times]

    # Assert
    assert pa == pb
    assert pa != po


@pytest.mark.parametrize("symbol", sorted(SYMBOLS))
def test_prices_are_on_the_tick_and_start_at_the_anchor(symbol: str) -> None:
    """Every price is a positive multiple of the symbol's tickSize; at t0 it is the start price."""
    # Arrange
    path = PricePath.starting(7, 0.0005, T0)
    tick = SYMBOLS[symbol].tick_size

    # Act
    prices = [path.price_at(symbol, T0 + k * 700) for k in range(500)]

    # Assert
    assert prices[0] == SYMBOLS[symbol].start_price
    assert all(p > 0 and p % tick == 0 for p in prices)
    assert len(set(prices)) > 10  # it does walk


def test_the_path_is_monotone_inside_each_second() -> None:
    """Inside a whole second the price never leaves the range of its two ends (the skip rule)."""
    # Arrange
    path = PricePath.starting(3, 0.002, T0)

    # Act
    bad = []
    for second in range(300):
        start = T0 + second * 1000
        ends = path.price_at("ETHUSDT", start), path.price_at("ETHUSDT", start + 1000)
        inside = [path.price_at("ETHUSDT", start + ms) for ms in range(100, 1000, 100)]
        if any(not min(ends) <= p <= max(ends) for p in inside):
            bad.append(second)

    # Assert
    assert bad == []


def test_set_price_re_anchors_and_the_walk_continues_from_there() -> None:
    """After set_price the price at that instant is the new one, and it keeps moving after it."""
    # Arrange
    path = PricePath.starting(7, 0.0005, T0)
    before = path.price_at("BTCUSDT", T0 + 10_000)

    # Act
    set_to = path.set_price("BTCUSDT", Decimal("50000.04"), T0 + 10_000)
    later = [path.price_at("BTCUSDT", T0 + 10_000 + k * 1000) for k in range(1, 30)]

    # Assert
    assert before != set_to == Decimal("50000.00")  # rounded to the 0.10 tick
    assert path.price_at("BTCUSDT", T0 + 10_000) == set_to
    assert all(abs(p - set_to) < 2000 for p in later)
    assert len(set(later)) > 5


def test_a_day_of_prices_is_cheap_and_bounded() -> None:
    """A day of per-second prices stays fast, keeps bounded memory, and the past is still exact."""
    # Arrange
    import time

    path = PricePath.starting(7, 0.0005, T0)
    start = time.perf_counter()

    # Act
    for second in range(0, 86_400, 1):
        path.price_at("DOGEUSDT", T0 + second * 1000)

    # Assert
    assert time.perf_counter() - start < 5.0
    assert len(path._sums["DOGEUSDT"].sums) <= 2 * path._sums["DOGEUSDT"].KEEP  # memory bounded
    fresh = PricePath.starting(7, 0.0005, T0)
    assert path.price_at("DOGEUSDT", T0 + 5_500) == fresh.price_at("DOGEUSDT", T0 + 5_500)
