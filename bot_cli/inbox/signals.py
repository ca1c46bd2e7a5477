"""A signal: the JSON body of ``POST /signal``, parsed into an entry as `bot enter` takes it.

    {"key": "ema-cross-BTCUSDT-1714557600", "symbol": "BTCUSDT", "side": "buy",
     "quantity": "0.010" | "risk": "25",          exactly one
     "price": "96900" | "market",                 omitted: market
     "sl": "95000" | "sl_pct": "1.5",             exactly one
     "tp": "99000" | "tp_pct": "3",               at most one
     "position_side": "LONG",                     hedge mode only, optional
     "tp_levels": [["66000", "50"], ["68000"]],   take profit in steps, instead of tp: [price, percent]
                                                  for each level but the last, [price] for the last
     "trail": "1.5", "activate": "70000"}         a trailing stop beside the stop-loss, optional

Numbers may be JSON numbers or strings; they are read as Decimal, never float. A percentage is
taken from the entry price (the mark for a market entry) and rounded to the tick away from it,
so a stop never lands on the wrong side. ``risk`` is the quote amount lost if the stop-loss is
hit: quantity = risk / |entry - stop-loss|, rounded down to the step. Unknown fields are refused
(a misspelt "tp_pc" must not silently drop the take-profit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from bot_cli.api.keys import key_problem
from bot_cli.core.checks import Filters
from bot_cli.core.model import Trail
from bot_cli.core.numbers import NotANumber, positive, shown
from bot_cli.ops.checks import EntryRefused, Order


FIELDS = frozenset({
    "key", "symbol", "side", "quantity", "risk", "price", "sl", "sl_pct", "tp", "tp_pct",
    "position_side", "secret", "tp_levels", "trail", "activate",
})  # fmt: skip
_HUNDRED = Decimal(100)
_PAIR = 2  # a take-profit level: [price, percent]
# The entry check's field -> the signal's field for a value given as is, and for one computed.
_DERIVED = {
    "stop_loss": ("sl", "sl_pct"), "take_profit": ("tp", "tp_pct"),
    "quantity": ("quantity", "risk"),
}  # fmt: skip


class Refused(Exception):
    """The signal's answer: an HTTP status and one line; nothing was written or sent."""

    def __init__(
        self, status: int, message: str, field: str | None = None, *, by_filter: bool = False, **extra: str
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.extra = status, message, field, extra
        self.by_filter = by_filter  # refused by a filter exchangeInfo states (it may have changed)


@dataclass(frozen=True, slots=True)
class Signal:
    key: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal | None
    risk: Decimal | None
    price: Decimal | None  # None: market
    sl: Decimal | None
    sl_pct: Decimal | None
    tp: Decimal | None
    tp_pct: Decimal | None
    position_side: str | None
    tp_levels: tuple[tuple[Decimal, Decimal | None], ...] = ()
    trail: Trail | None = None


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object with Decimal numbers; 400 for anything else."""
    try:
        obj = json.loads(body.decode("utf-8"), parse_float=Decimal,
                         parse_constant=_no_constant, object_pairs_hook=_no_repeats)  # fmt: skip
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Refused(400, f"the body is not valid JSON ({_first_line(err)})") from None
    if not isinstance(obj, dict):
        raise Refused(400, "the body must be a JSON object")
    return obj


def parse_signal(obj: dict[str, Any]) -> Signal:
    """Every field checked for type and presence; 422 naming the first one at fault."""
    unknown = sorted(set(obj) - FIELDS)
    if unknown:
        known = ", ".join(sorted(FIELDS))
        raise Refused(422, f"unknown field {unknown[0]!r}; known: {known}", unknown[0])
    key = obj.get("key")
    if (problem := key_problem(key)) is not None:
        raise Refused(422, problem, "key")
    side = _text(obj, "side", required=True).lower()
    if side not in ("buy", "sell"):
        raise Refused(422, f"side {obj['side']!r} is not buy or sell", "side")
    _one_of(obj, "quantity", "risk", required=True)
    _one_of(obj, "sl", "sl_pct", required=True)
    _one_of(obj, "tp", "tp_pct", required=False)
    levels = _levels(obj)
    if levels and (obj.get("tp") is not None or obj.get("tp_pct") is not None):
        raise Refused(422, "give tp (or tp_pct) or tp_levels, not both", "tp_levels")
    trail = _number(obj, "trail")
    if trail is None and obj.get("activate") is not None:
        raise Refused(422, "activate is the trailing stop's: give trail with it", "activate")
    price = obj.get("price")
    market = price is None or (isinstance(price, str) and price.lower() == "market")
    ps = _text(obj, "position_side", required=False) or None
    return Signal(
        str(key), _text(obj, "symbol", required=True).upper(), side,
        _number(obj, "quantity"), _number(obj, "risk"), None if market else _number(obj, "price"),
        _number(obj, "sl"), _number(obj, "sl_pct"), _number(obj, "tp"), _number(obj, "tp_pct"), ps,
        levels, None if trail is None else Trail(trail, _number(obj, "activate")),
    )  # fmt: skip


def _levels(obj: dict[str, Any]) -> tuple[tuple[Decimal, Decimal | None], ...]:
    """tp_levels: a list of [price, percent] and a last [price]."""
    value = obj.get("tp_levels")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, list) and 1 <= len(x) <= _PAIR for x in value):
        raise Refused(422, "tp_levels must be a list of [price, percent] pairs and a last [price],"
                           " e.g. [[66000, 50], [68000]]", "tp_levels")  # fmt: skip
    out = []
    for n, level in enumerate(value, 1):
        name = f"tp_levels[{n}]"
        price = _number({name: level[0]}, name)
        if price is None:
            raise Refused(422, f"{name} needs a price", "tp_levels")
        out.append((price, _number({f"{name} percent": level[-1]}, f"{name} percent") if len(level) == _PAIR else None))
    return tuple(out)


def resolve(s: Signal, filters: Filters, mark: Decimal) -> Order:
    """Percentages and risk turned into prices and a quantity on the symbol's tick and step."""
    ref = s.price if s.price is not None else mark
    buy = s.side == "buy"
    tick = filters.tick_size
    sl = s.sl if s.sl is not None else _pct_price(ref, s.sl_pct, buy, tick, "sl_pct")
    tp = s.tp if s.tp_pct is None else _pct_price(ref, s.tp_pct, not buy, tick, "tp_pct")
    qty = s.quantity if s.quantity is not None else _sized(s, ref, sl, filters)
    return Order(s.symbol, s.side, qty, s.price, sl, tp, s.position_side, tp_levels=s.tp_levels, trail=s.trail)


def refusal(s: Signal, order: Order, err: EntryRefused) -> Refused:
    """An entry check's refusal, naming the signal's own field (and what it computed)."""
    plain, derived = _DERIVED.get(err.field, (err.field, ""))
    if err.field == "take_profit" and s.tp_levels:
        plain, derived = "tp_levels", ""
    value = getattr(s, derived) if derived else None
    if value is None:
        return Refused(422, str(err), plain, by_filter=err.by_filter)
    computed = getattr(order, err.field)
    text = f"{derived} {_s(value)} gives {err.field} {computed:f}: {err}"
    return Refused(422, text, derived, by_filter=err.by_filter)


# -- fields ------------------------------------------------------------------------------


def _text(obj: dict[str, Any], name: str, *, required: bool) -> str:
    value = obj.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise Refused(422, f"{name} must be a non-empty string", name)
    return value.strip()


def _one_of(obj: dict[str, Any], a: str, b: str, *, required: bool) -> None:
    present = [n for n in (a, b) if obj.get(n) is not None]
    if len(present) > 1:
        raise Refused(422, f"give {a} or {b}, not both", b)
    if required and not present:
        raise Refused(422, f"{a} (or {b}) is required", a)


def _number(obj: dict[str, Any], name: str) -> Decimal | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise Refused(422, f"{name} must be a number or a string of digits", name)
    if isinstance(value, str):
        try:
            return positive(name, value)
        except NotANumber as err:
            raise Refused(422, str(err), name) from None
    number = Decimal(value)
    if not number.is_finite() or number <= 0:
        raise Refused(422, f"{name} {shown(str(number))} must be a positive number", name)
    return number


def _pct_price(ref: Decimal, pct: Decimal | None, below: bool, tick: Decimal, name: str) -> Decimal:
    assert pct is not None  # parse_signal requires a price or a percentage
    if below and pct >= _HUNDRED:
        raise Refused(422, f"{name} {_s(pct)} must be below 100", name)
    raw = ref * (1 - pct / _HUNDRED) if below else ref * (1 + pct / _HUNDRED)
    return _to_step(raw, tick, ROUND_FLOOR if below else ROUND_CEILING)


def _sized(s: Signal, ref: Decimal, sl: Decimal, filters: Filters) -> Decimal:
    assert s.risk is not None
    distance = abs(ref - sl)
    if distance == 0:
        raise Refused(422, "risk: the stop-loss equals the entry price; nothing to size by", "risk")
    step = filters.market_step_size if s.price is None else filters.step_size
    qty = _to_step(s.risk / distance, step, ROUND_FLOOR)
    if qty <= 0:
        raise Refused(422, (
            f"risk {_s(s.risk)} over a stop distance of {_s(distance)} sizes less than one step"
            f" ({_s(step)}) of {s.symbol}; raise the risk or move the stop-loss closer"
        ), "risk")  # fmt: skip
    return qty


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return value if step <= 0 else (value / step).to_integral_value(rounding=rounding) * step


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError(f"field {name!r} appears twice")
        seen[name] = value
    return seen


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
