"""Entry checks: every order an entry will need, against the symbol's filters (pure).

An entry is three orders: the entry itself (LIMIT or MARKET) and, once it fills, a stop-loss
and a take-profit, each a MARKET reduce-only order for the filled quantity when it triggers.
All three must pass Binance's filters (reference §3.1), or a fill is left unprotected:

- the entry quantity: LOT_SIZE (limit) or MARKET_LOT_SIZE (market) minQty/maxQty/stepSize;
- the limit price, stop-loss and take-profit: PRICE_FILTER minPrice/maxPrice/tickSize;
- a limit price within PERCENT_PRICE of the mark (-4016/-4024);
- the entry's MIN_NOTIONAL: qty x limit price, or qty x mark for a market entry;
- the triggers on the right side: of the limit price, and of the mark price for a market
  entry or a limit that fills at once (a crossed trigger fires at once: -2021);
- the protective quantity against MARKET_LOT_SIZE (-4005 on a stop that must be placed);
- in hedge mode the protective orders cannot be reduce-only, so MIN_NOTIONAL applies to
  them at their trigger price (as the paper venue applies it).

``check_entry`` returns the first violation as data, or None; its message is one line naming
the filter, the limit and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise
from typing import Protocol

from bot_cli.core.model import EntrySpec, OrderType, PositionSide, Side


__all__ = ["Filters", "Violation", "check_entry", "check_levels", "floor_step", "violations"]


class Filters(Protocol):
    """What the checks read of a symbol's filters (exchange.filters.SymbolFilters has it).

    A zero minimum, maximum or multiplier means "no limit"."""

    @property
    def symbol(self) -> str: ...
    @property
    def tick_size(self) -> Decimal: ...
    @property
    def min_price(self) -> Decimal: ...
    @property
    def max_price(self) -> Decimal: ...
    @property
    def step_size(self) -> Decimal: ...
    @property
    def min_qty(self) -> Decimal: ...
    @property
    def max_qty(self) -> Decimal: ...
    @property
    def market_step_size(self) -> Decimal: ...
    @property
    def market_min_qty(self) -> Decimal: ...
    @property
    def market_max_qty(self) -> Decimal: ...
    @property
    def min_notional(self) -> Decimal: ...
    @property
    def multiplier_up(self) -> Decimal: ...
    @property
    def multiplier_down(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class Violation:
    """One refused value. ``filter`` is Binance's filter name, or for the side rules
    ENTRY_PRICE / MARK_PRICE (a trigger on the wrong side of that price)."""

    filter: str
    field: str  # the filter's field (maxQty, tickSize, ...), or the price it is compared to
    subject: str  # quantity, price, stop-loss, take-profit, notional
    value: Decimal
    limit: Decimal
    message: str

    def __str__(self) -> str:
        return self.message


def check_entry(spec: EntrySpec, filters: Filters, mark: Decimal) -> Violation | None:
    """The first rule the entry (or one of its protective orders) breaks, or None."""
    return next(violations(spec, filters, mark), None)


def check_levels(spec: EntrySpec, filters: Filters, mark: Decimal, *, holding: bool, working: bool) -> Violation | None:
    """Moved levels (`bot amend`): on the tick, and on their sides of the mark for a share held
    now (a leg placed now must not trigger at once) and of the entry price for an entry order
    that still works (as an entry's)."""
    found = _price_filter(spec, filters, mark) or _trail(spec, filters, mark)
    if found is None and working and spec.price is not None:
        found = _entry_sides(spec, filters, mark)
    if found is None and holding:
        found = _check_sides(spec, "MARK_PRICE", f"{filters.symbol}'s mark price", mark, _shown(mark, filters),
                             when="at once")  # fmt: skip
    return found


def violations(spec: EntrySpec, filters: Filters, mark: Decimal) -> Iterator[Violation]:
    """Every violation, in the order the checks run (the entry's own rules first)."""
    for check in _CHECKS:
        found = check(spec, filters, mark)
        if found is not None:
            yield found


# -- the entry's quantity ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Range:
    """A filter of the min/max/step kind: LOT_SIZE, MARKET_LOT_SIZE, PRICE_FILTER."""

    name: str
    fields: tuple[str, str, str]
    low: Decimal
    high: Decimal
    step: Decimal


_LOT_FIELDS = ("minQty", "maxQty", "stepSize")


def _lot(f: Filters, market: bool) -> _Range:
    if market:
        low, high, step = f.market_min_qty, f.market_max_qty, f.market_step_size
        return _Range("MARKET_LOT_SIZE", _LOT_FIELDS, low, high, step)
    return _Range("LOT_SIZE", _LOT_FIELDS, f.min_qty, f.max_qty, f.step_size)


def _entry_lot(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    lot = _lot(f, spec.order_type is OrderType.MARKET)
    return _in_range("quantity", spec.quantity, lot, f.symbol, "")


def _protective_lot(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    why = ": the stop-loss is a market order and could not be placed"
    return _in_range("quantity", spec.quantity, _lot(f, market=True), f.symbol, why)


# -- prices -------------------------------------------------------------------------------


def _prices(spec: EntrySpec) -> list[tuple[str, Decimal]]:
    s = spec
    named = [("price", s.price), ("stop-loss", s.stop_loss), *_take_profits(s)]
    if s.trail is not None:
        named.append(("activation price", s.trail.activate))
    return [(name, value) for name, value in named if value is not None]


def _take_profits(s: EntrySpec) -> list[tuple[str, Decimal | None]]:
    if len(s.tp_levels) > 1:
        return [(f"take-profit level {n}", x.price) for n, x in enumerate(s.tp_levels, 1)]
    return [("take-profit", s.take_profit)]


def _price_filter(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    fields = ("minPrice", "maxPrice", "tickSize")
    pf = _Range("PRICE_FILTER", fields, f.min_price, f.max_price, f.tick_size)
    for name, value in _prices(spec):
        found = _in_range(name, value, pf, f.symbol, "")
        if found is not None:
            return found
    return None


def _in_range(subject: str, value: Decimal, r: _Range, symbol: str, why: str) -> Violation | None:
    """Below the minimum (or not positive), above the maximum, off the step: in that order."""
    (low_f, high_f, step_f), head, tail = r.fields, f"{subject} {_s(value)}", f" for {symbol}{why}"
    if value < r.low or value <= 0:
        text = f"{head} is below {r.name} {low_f} {_s(r.low)}{tail}; use at least {_s(r.low)}"
        return Violation(r.name, low_f, subject, value, r.low, text)
    if r.high > 0 and value > r.high:
        text = f"{head} exceeds {r.name} {high_f} {_s(r.high)}{tail}; use at most {_s(r.high)}"
        return Violation(r.name, high_f, subject, value, r.high, text)
    if r.step > 0 and value % r.step != 0:
        hint = _neighbours(value, r.step)
        text = f"{head} is not a multiple of {r.name} {step_f} {_s(r.step)}{tail}; use {hint}"
        return Violation(r.name, step_f, subject, value, r.step, text)
    return None


def _entry_sides(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    """A limit's stop-loss and take-profit on either side of its price."""
    if spec.price is None:
        return None
    return _check_sides(spec, "ENTRY_PRICE", "the entry price", spec.price, _s(spec.price))


def _mark_sides(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    """A market entry (or a limit at or through the mark: it fills at once) against the mark."""
    buy = spec.side is Side.BUY
    fills_now = spec.price is None or (spec.price >= mark if buy else spec.price <= mark)
    if not fills_now:
        return None
    return _check_sides(spec, "MARK_PRICE", f"{f.symbol}'s mark price", mark, _shown(mark, f))


def _check_sides(
    spec: EntrySpec, rule: str, what: str, ref: Decimal, shown: str, *, when: str = "as soon as the entry fills"
) -> Violation | None:
    """A BUY's stop-loss below ``ref`` and take-profit above it; a SELL's the other way round."""
    buy = spec.side is Side.BUY
    word, sl_rel, tp_rel = ("buy", "below", "above") if buy else ("sell", "above", "below")
    sl = spec.stop_loss
    checks = [("stop-loss", sl, sl_rel, sl < ref if buy else sl > ref)]
    profit_side = [(name, x) for name, x in _prices(spec) if name.startswith(("take-profit", "activation"))]
    checks += [(name, x, tp_rel, x > ref if buy else x < ref) for name, x in profit_side]
    for name, value, rel, ok in checks:
        if not ok:
            text = (f"{name} {_s(value)} is not {rel} {what} {shown} ({rule}): for a {word}"
                    f" it would trigger {when} (-2021);"
                    f" use a {name} {rel} {shown}")
            field = "markPrice" if rule == "MARK_PRICE" else "price"
            return Violation(rule, field, name, value, ref, text)
    return None


def _percent_price(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    """A BUY limit at most mark x multiplierUp, a SELL limit at least mark x multiplierDown."""
    price, pp = spec.price, "PERCENT_PRICE"
    if price is None:
        return None
    if spec.side is Side.BUY and f.multiplier_up > 0 and price > mark * f.multiplier_up:
        bound = floor_step(mark * f.multiplier_up, f.tick_size)
        text = (f"price {_s(price)} exceeds {pp} multiplierUp {_s(f.multiplier_up)} x mark price"
                f" {_shown(mark, f)} for {f.symbol}; use a limit price of at most {_s(bound)}")
        return Violation(pp, "multiplierUp", "price", price, bound, text)
    if spec.side is Side.SELL and f.multiplier_down > 0 and price < mark * f.multiplier_down:
        bound = _ceil(mark * f.multiplier_down, f.tick_size)
        text = (f"price {_s(price)} is below {pp} multiplierDown {_s(f.multiplier_down)} x mark"
                f" price {_shown(mark, f)} for {f.symbol};"
                f" use a limit price of at least {_s(bound)}")
        return Violation(pp, "multiplierDown", "price", price, bound, text)
    return None


# -- notional -----------------------------------------------------------------------------


def _entry_notional(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    if spec.order_type is OrderType.ADOPTED:
        return None  # no entry order is sent: only its reduce-only legs, which Binance exempts
    lot = _lot(f, spec.order_type is OrderType.MARKET)
    if spec.price is None:
        at = f"mark price {_shown(mark, f)}"
        return _check_notional(spec.quantity, mark, at, f, lot.step)
    return _check_notional(spec.quantity, spec.price, _s(spec.price), f, lot.step)


def _protective_notional(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    if spec.position_side is PositionSide.BOTH:
        return None  # one-way mode sends them reduce-only: Binance waives MIN_NOTIONAL
    why = ": hedge mode cannot send it reduce-only, so it could not be placed"
    for name, trigger in _prices(spec):
        if name != "price":
            at = f"{name} {_s(trigger)}"
            found = _check_notional(spec.quantity, trigger, at, f, f.market_step_size, why=why)
            if found is not None:
                return found
    return None


def _check_notional(
    qty: Decimal, price: Decimal, at: str, f: Filters, step: Decimal, *, why: str = ""
) -> Violation | None:
    notional = qty * price
    if f.min_notional <= 0 or notional >= f.min_notional:
        return None
    least = _ceil(f.min_notional / price, step)
    text = (f"notional {_s(notional.normalize())} (quantity {_s(qty)} x {at}) is below"
            f" MIN_NOTIONAL notional {_s(f.min_notional)} for {f.symbol}{why}; use a quantity of at least {_s(least)}")
    return Violation("MIN_NOTIONAL", "notional", "notional", notional, f.min_notional, text)


# -- numbers ------------------------------------------------------------------------------


def floor_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (no step: as it is)."""
    return value if step <= 0 else (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _ceil(value: Decimal, step: Decimal) -> Decimal:
    return value if step <= 0 else (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def _neighbours(value: Decimal, step: Decimal) -> str:
    below = floor_step(value, step)
    return f"{_s(below)} or {_s(below + step)}" if below > 0 else _s(below + step)


def _shown(mark: Decimal, f: Filters) -> str:
    """The mark (8 decimals on Binance) as the symbol's prices are written, for messages only."""
    return _s(mark.quantize(f.tick_size)) if f.tick_size > 0 else _s(mark)


def _s(value: Decimal) -> str:
    """Plain digits, never exponent notation."""
    return format(value, "f")


MAX_TP_LEVELS = 4
MIN_CALLBACK_PCT, MAX_CALLBACK_PCT, CALLBACK_STEP = Decimal("0.1"), Decimal(20), Decimal("0.1")  # since 2026-10-23


def _levels(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    """Take-profit levels: at most MAX_TP_LEVELS, each further from the entry than the last, each
    a quantity a market order may have (every level is a leg of its own)."""
    levels = spec.tp_levels
    if not levels:
        return None
    if len(levels) > MAX_TP_LEVELS:
        text = f"{len(levels)} take-profit levels: at most {MAX_TP_LEVELS}"
        return Violation("TP_LEVELS", "count", "take-profit", Decimal(len(levels)), Decimal(MAX_TP_LEVELS), text)
    buy = spec.side is Side.BUY
    for n, (a, b) in enumerate(pairwise(levels), 2):
        if (b.price <= a.price) if buy else (b.price >= a.price):
            rel = "above" if buy else "below"
            text = (f"take-profit level {n} {_s(b.price)} is not {rel} level {n - 1} {_s(a.price)}: each level"
                    " takes profit further from the entry than the one before")  # fmt: skip
            return Violation("TP_LEVELS", "order", f"take-profit level {n}", b.price, a.price, text)
    why = ": each take-profit level is a market order when it triggers"
    for n, x in enumerate(levels, 1):
        found = _in_range(f"take-profit level {n}'s quantity", x.quantity, _lot(f, market=True), f.symbol, why)
        if found is None and spec.position_side is not PositionSide.BOTH:
            at = f"take-profit level {n} {_s(x.price)}"
            found = _check_notional(x.quantity, x.price, at, f, f.market_step_size, why=why)
        if found is not None:
            return found
    return None


def _trail(spec: EntrySpec, f: Filters, mark: Decimal) -> Violation | None:
    """A trailing stop's callback rate: 0.1 to 20 percent in steps of 0.1 (Binance's range)."""
    if spec.trail is None:
        return None
    rate = spec.trail.callback_pct
    if not (MIN_CALLBACK_PCT <= rate <= MAX_CALLBACK_PCT) or rate % CALLBACK_STEP != 0:
        text = (f"trailing callback rate {_s(rate)} % is not one Binance takes: from {_s(MIN_CALLBACK_PCT)} to"
                f" {_s(MAX_CALLBACK_PCT)} % in steps of {_s(CALLBACK_STEP)}")  # fmt: skip
        return Violation("CALLBACK_RATE", "callbackRate", "trail", rate, MAX_CALLBACK_PCT, text)
    return None


_Check = Callable[[EntrySpec, Filters, Decimal], Violation | None]
_CHECKS: tuple[_Check, ...] = (
    _entry_lot,
    _price_filter,
    _percent_price,
    _entry_notional,
    _entry_sides,
    _mark_sides,
    _protective_lot,
    _protective_notional,
    _levels,
    _trail,
)
