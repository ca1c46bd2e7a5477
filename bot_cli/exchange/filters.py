"""A symbol's trading filters and the checks Binance applies to prices and quantities (pure).

Round with the filters, never with ``pricePrecision``/``quantityPrecision`` (reference §3.1):
PRICE_FILTER.tickSize (-4014), LOT_SIZE / MARKET_LOT_SIZE stepSize (-4023), min/max
quantity (-4004/-4005), MIN_NOTIONAL.notional (-4164, waived for reduce-only) and
PERCENT_PRICE multiplierUp/Down against the mark (-4016/-4024); MAX_NUM_ORDERS open orders per
symbol (-2025), which admission (``bot_cli.core.admission``) counts against.
Checks return a one-line problem or None, so the CLI can refuse before anything is sent;
``bot_cli.core.checks`` checks a whole entry (every order it needs) against these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal


__all__ = ["SymbolFilters"]


def _round_down(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded toward zero to a multiple of ``step`` (any step, not only 10^-n)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def _off_step(value: Decimal, step: Decimal) -> bool:
    return step > 0 and value % step != 0


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """The filters of one symbol; a zero minimum, maximum or multiplier means "no limit"."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal
    max_price: Decimal
    # PERCENT_PRICE: a BUY limit at most mark x up, a SELL limit at least mark x down
    multiplier_up: Decimal = Decimal(0)
    multiplier_down: Decimal = Decimal(0)
    # MAX_NUM_ORDERS: open regular orders allowed on the symbol (-2025 beyond); 0: not stated
    max_num_orders: int = 0

    def quantize_price(self, price: Decimal) -> Decimal:
        """``price`` rounded down to the tick size."""
        return _round_down(price, self.tick_size)

    def quantize_quantity(self, quantity: Decimal, market: bool = False) -> Decimal:
        """``quantity`` rounded down to the (market) step size."""
        return _round_down(quantity, self.market_step_size if market else self.step_size)

    def check_price(self, price: Decimal) -> str | None:
        """What is wrong with ``price`` (also a trigger price) for this symbol, or None."""
        s = self.symbol
        if price <= 0:
            return f"price {price} must be positive"
        if self.min_price > 0 and price < self.min_price:
            return f"price {price} is below {s}'s minimum price {self.min_price}"
        if self.max_price > 0 and price > self.max_price:
            return f"price {price} is above {s}'s maximum price {self.max_price}"
        if _off_step(price, self.tick_size):
            return (
                f"price {price} is not a multiple of {s}'s tick size {self.tick_size}"
                f" (nearest below: {self.quantize_price(price)})"
            )
        return None

    def check_quantity(
        self,
        quantity: Decimal,
        market: bool,
        price: Decimal | None,
        reduce_only: bool = False,
    ) -> str | None:
        """What is wrong with ``quantity``, or None.

        The notional check needs a price (for a market order, the caller's estimate);
        without one it is skipped. Reduce-only orders are exempt from it, as on Binance.
        """
        problem = self._check_lot(quantity, market)
        if problem is not None or price is None or reduce_only:
            return problem
        notional = quantity * price
        if self.min_notional > 0 and notional < self.min_notional:
            return (
                f"notional {notional} (quantity {quantity} x price {price}) is below"
                f" {self.symbol}'s minimum notional {self.min_notional}"
            )
        return None

    def _check_lot(self, quantity: Decimal, market: bool) -> str | None:
        """LOT_SIZE, or MARKET_LOT_SIZE for market orders."""
        step, low, high = (
            (self.market_step_size, self.market_min_qty, self.market_max_qty)
            if market
            else (self.step_size, self.min_qty, self.max_qty)
        )
        s, kind = self.symbol, " for market orders" if market else ""
        if quantity <= 0:
            return f"quantity {quantity} must be positive"
        if low > 0 and quantity < low:
            return f"quantity {quantity} is below {s}'s minimum {low}{kind}"
        if high > 0 and quantity > high:
            return f"quantity {quantity} is above {s}'s maximum {high}{kind}"
        if _off_step(quantity, step):
            return (
                f"quantity {quantity} is not a multiple of {s}'s step size {step}{kind}"
                f" (nearest below: {_round_down(quantity, step)})"
            )
        return None
