"""SymbolFilters: rounding to the tick/step and one-line problems for bad prices and quantities."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot_cli.exchange.filters import SymbolFilters


BTC = SymbolFilters(
    symbol="BTCUSDT",
    tick_size=D("0.10"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D(1000),
    market_step_size=D("0.001"),
    market_min_qty=D("0.001"),
    market_max_qty=D(120),
    min_notional=D(100),
    min_price=D("261.10"),
    max_price=D(809484),
)


def test_valid_price_has_no_problem() -> None:
    """A price on the tick inside the bounds is fine."""
    assert BTC.check_price(D("65000.10")) is None


@pytest.mark.parametrize(
    ("price", "problem"),
    [
        (D("65000.15"), ("price 65000.15 is not a multiple of BTCUSDT's tick size 0.10"
                        " (nearest below: 65000.10)")),
        (D(100), "price 100 is below BTCUSDT's minimum price 261.10"),
        (D(900000), "price 900000 is above BTCUSDT's maximum price 809484"),
        (D(0), "price 0 must be positive"),
        (D(-5), "price -5 must be positive"),
    ],
    ids=["off the tick", "below min price", "above max price", "zero", "negative"],
)
def test_bad_price_is_described_in_one_line(price: D, problem: str) -> None:
    """Each price problem is named with the symbol's limit."""
    assert BTC.check_price(price) == problem


def test_quantize_price_rounds_down_to_the_tick() -> None:
    """quantize_price never rounds up."""
    assert BTC.quantize_price(D("65000.19")) == D("65000.10")
    assert str(BTC.quantize_price(D("65000.19"))) == "65000.10"


def test_quantize_price_handles_a_tick_that_is_not_a_power_of_ten() -> None:
    """A 0.5 tick rounds 101.7 down to 101.5."""
    half = SymbolFilters("X", D("0.5"), D(1), D(1), D(9), D(1), D(1), D(9),
                         D(0), D(0), D(0))
    assert half.quantize_price(D("101.7")) == D("101.5")
    assert half.check_price(D("101.5")) is None


def test_quantize_quantity_uses_the_market_step_for_market_orders() -> None:
    """Market quantities round to MARKET_LOT_SIZE.stepSize."""
    f = SymbolFilters("X", D("0.1"), D("0.01"), D("0.01"), D(9), D("0.1"), D("0.1"), D(9),
                      D(0), D(0), D(0))
    assert f.quantize_quantity(D("1.239")) == D("1.23")
    assert f.quantize_quantity(D("1.239"), market=True) == D("1.2")


def test_valid_quantity_has_no_problem() -> None:
    """On the step, inside the bounds, notional above the minimum."""
    assert BTC.check_quantity(D("0.002"), market=False, price=D(65000)) is None


@pytest.mark.parametrize(
    ("qty", "market", "price", "problem"),
    [
        (D("0.0005"), False, None, "quantity 0.0005 is below BTCUSDT's minimum 0.001"),
        (D(1001), False, None, "quantity 1001 is above BTCUSDT's maximum 1000"),
        (D(121), True, None, "quantity 121 is above BTCUSDT's maximum 120 for market orders"),
        (D("0.0015"), False, None, ("quantity 0.0015 is not a multiple of BTCUSDT's step size"
                                   " 0.001 (nearest below: 0.001)")),
        (D(0), False, None, "quantity 0 must be positive"),
        (D("0.001"), False, D(65000), ("notional 65.000 (quantity 0.001 x price 65000) is below"
                                        " BTCUSDT's minimum notional 100")),
    ],
    ids=["below min", "above max", "above market max", "off the step", "zero", "notional"],
)
def test_bad_quantity_is_described_in_one_line(qty: D, market: bool, price: D | None, problem: str) -> None:
    """Each quantity problem is named with the symbol's limit."""
    assert BTC.check_quantity(qty, market=market, price=price) == problem


def test_market_max_does_not_apply_to_limit_orders() -> None:
    """121 is too much for a market order but fine for a limit order."""
    assert BTC.check_quantity(D(121), market=False, price=None) is None


def test_reduce_only_is_exempt_from_min_notional() -> None:
    """Binance waives MIN_NOTIONAL for reduce-only orders."""
    assert BTC.check_quantity(D("0.001"), market=True, price=D(65000), reduce_only=True) is None


def test_reduce_only_still_checks_the_lot() -> None:
    """The exemption is for the notional only."""
    problem = BTC.check_quantity(D("0.0005"), market=True, price=D(1), reduce_only=True)
    assert problem == "quantity 0.0005 is below BTCUSDT's minimum 0.001 for market orders"


def test_without_price_the_notional_is_not_checked() -> None:
    """No price, no notional: only the lot is checked."""
    assert BTC.check_quantity(D("0.001"), market=True, price=None) is None


def test_zero_limits_mean_no_limit() -> None:
    """A zero min/max price or notional disables that check."""
    free = SymbolFilters("X", D("0.01"), D("0.01"), D(0), D(0), D("0.01"), D(0), D(0),
                         D(0), D(0), D(0))
    assert free.check_price(D("123456789.01")) is None
    assert free.check_quantity(D("99999.99"), market=False, price=D("0.01")) is None


def test_percent_price_defaults_to_no_limit() -> None:
    """Filters built without PERCENT_PRICE carry zero multipliers: the check is off."""
    assert (BTC.multiplier_up, BTC.multiplier_down) == (D(0), D(0))


def test_filters_satisfy_the_core_checks_protocol() -> None:
    """core.checks reads SymbolFilters through its Filters protocol (core imports no exchange)."""
    from bot_cli.core.checks import check_entry
    from bot_cli.core.model import EntrySpec, OrderType, Side

    spec = EntrySpec("BTCUSDT", Side.BUY, D("0.010"), OrderType.MARKET, None, D(60000), D(70000))
    assert check_entry(spec, BTC, D(65000)) is None
