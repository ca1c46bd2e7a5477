"""Request parameters -> validated order requests, with Binance's error codes (pure).

Everything that depends only on the request and the symbol's filters is checked here; what
depends on the book (duplicate ids, position mode, immediate triggers, reduce-only room) is
checked by the book. Every rejection is a ``BookError(code, msg)`` with Binance's code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot_cli.core.model import PositionSide, Side
from bot_cli.paper.market import PERCENT_DOWN, PERCENT_UP, SYMBOLS, SymbolSpec
from bot_cli.paper.records import ALGO_ONLY_TYPES, ALGO_TIME_IN_FORCE, CONDITIONAL_TYPES, TRAILING


CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
# callbackRate of a trailing stop, in percent: 0.1 to 20 (10 before 2026-10-23), steps of 0.1
CALLBACK_MIN, CALLBACK_MAX, CALLBACK_STEP = Decimal("0.1"), Decimal(20), Decimal("0.1")
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
Params = Mapping[str, str]


class BookError(Exception):
    """A request the exchange refuses: Binance's code, message and HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    side: Side
    type: str  # LIMIT | MARKET
    quantity: Decimal
    price: Decimal  # 0 for MARKET
    time_in_force: str
    reduce_only: bool
    position_side: PositionSide | None  # None: not sent
    client_id: str | None  # None: generate one
    resp_type: str  # ACK | RESULT


@dataclass(frozen=True, slots=True)
class NewAlgo:
    symbol: str
    side: Side
    type: str  # STOP_MARKET | TAKE_PROFIT_MARKET | TRAILING_STOP_MARKET
    quantity: Decimal  # 0 with closePosition
    trigger_price: Decimal  # 0 for a trailing stop
    close_position: bool
    reduce_only: bool
    position_side: PositionSide | None
    client_id: str | None
    working_type: str
    price_protect: bool
    time_in_force: str
    activate_price: Decimal | None = None  # trailing: None = the price at placement
    callback_rate: Decimal = Decimal(0)  # trailing: percent


# --- parameter readers ------------------------------------------------------------------------


def required(p: Params, name: str) -> str:
    value = p.get(name, "")
    if value == "":
        raise BookError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def decimal(p: Params, name: str) -> Decimal:
    text = required(p, name)
    if not _NUMBER.match(text):
        raise BookError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            f"'^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        )
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already rules this out
        raise BookError(-1100, f"Illegal characters found in parameter '{name}'.") from None


def integer(p: Params, name: str, default: int | None = None) -> int | None:
    text = p.get(name, "")
    if text == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise illegal_integer(name)
    return int(text)


def natural(p: Params, name: str) -> int:
    """A mandatory whole number, 0 or more (a LONG such as countdownTime)."""
    required(p, name)  # -1102 when not sent
    value = integer(p, name)
    if value is None or value < 0:
        raise illegal_integer(name)
    return value


def illegal_integer(name: str) -> BookError:
    """-1100: a parameter that is not a whole number of the range Binance names."""
    return BookError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
    )


def boolean(p: Params, name: str) -> bool | None:
    text = p.get(name, "")
    if text == "":
        return None
    if text.lower() not in ("true", "false"):
        raise BookError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return text.lower() == "true"


def symbol_spec(p: Params) -> SymbolSpec:
    spec = SYMBOLS.get(required(p, "symbol"))
    if spec is None:
        raise BookError(-1121, "Invalid symbol.")
    return spec


def client_id(p: Params, name: str) -> str | None:
    value = p.get(name, "")
    if value == "":
        return None
    if not CLIENT_ID.match(value):
        raise BookError(-4015, "Client order id is not valid.")
    return value


def _side(p: Params) -> Side:
    try:
        return Side(required(p, "side"))
    except ValueError:
        raise BookError(-1117, "Invalid side.") from None


def _position_side(p: Params) -> PositionSide | None:
    value = p.get("positionSide", "")
    if value == "":
        return None
    try:
        return PositionSide(value)
    except ValueError:
        raise BookError(-1130, "Data sent for parameter 'positionSide' is not valid.") from None


# --- new orders -------------------------------------------------------------------------------


def parse_new_order(p: Params) -> NewOrder:
    """POST /fapi/v1/order parameters; only LIMIT (GTC) and MARKET are accepted here."""
    spec = symbol_spec(p)
    side = _side(p)
    kind = required(p, "type")
    if kind in ALGO_ONLY_TYPES:
        raise BookError(
            -4120,
            "Order type not supported for this endpoint. "
            "Please use the Algo Order API endpoints instead.",
        )
    if kind not in ("LIMIT", "MARKET"):
        raise BookError(-1116, "Invalid orderType.")
    quantity = decimal(p, "quantity")
    price, tif = Decimal(0), "GTC"
    if kind == "LIMIT":
        tif = required(p, "timeInForce")
        if tif != "GTC":
            raise BookError(-1115, "Invalid timeInForce. (the paper venue supports GTC only)")
        price = decimal(p, "price")
    resp_type = p.get("newOrderRespType", "ACK") or "ACK"
    if resp_type not in ("ACK", "RESULT"):
        raise BookError(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
    order = NewOrder(
        spec.symbol,
        side,
        kind,
        quantity,
        price,
        tif,
        boolean(p, "reduceOnly") or False,
        _position_side(p),
        client_id(p, "newClientOrderId"),
        resp_type,
    )
    _reduce_only_sent(p, order.position_side)
    return order


def parse_new_algo(p: Params) -> NewAlgo:
    """POST /fapi/v1/algoOrder parameters: CONDITIONAL STOP_MARKET / TAKE_PROFIT_MARKET /
    TRAILING_STOP_MARKET; a timeInForce of the SDK's enum or GTE_GTC (undocumented, expired when
    the symbol goes flat)."""
    if required(p, "algoType") != "CONDITIONAL":
        raise BookError(-1130, "Data sent for parameter 'algoType' is not valid.")
    spec = symbol_spec(p)
    side = _side(p)
    kind = required(p, "type")
    if kind not in CONDITIONAL_TYPES:
        raise BookError(-1116, "Invalid orderType. (the paper venue supports STOP_MARKET, "
                               "TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET)")  # fmt: skip
    activate, rate = _trailing(p) if kind == TRAILING else (None, Decimal(0))
    trigger = Decimal(0) if kind == TRAILING else decimal(p, "triggerPrice")
    close, reduce_only, quantity = _close_or_reduce(p)
    working = p.get("workingType", "CONTRACT_PRICE") or "CONTRACT_PRICE"
    if working not in ("CONTRACT_PRICE", "MARK_PRICE"):
        raise BookError(-1130, "Data sent for parameter 'workingType' is not valid.")
    position_side = _position_side(p)
    _reduce_only_sent(p, position_side)
    protect = (p.get("priceProtect", "") or "false").lower() == "true"
    tif = p.get("timeInForce", "") or "GTC"
    if tif not in ALGO_TIME_IN_FORCE:
        raise BookError(-1115, "Invalid timeInForce.")
    return NewAlgo(
        spec.symbol, side, kind, quantity, trigger, close, reduce_only, position_side,
        client_id(p, "clientAlgoId"), working, protect, tif, activate, rate,
    )  # fmt: skip


def _trailing(p: Params) -> tuple[Decimal | None, Decimal]:
    """A trailing stop's (activatePrice or None, callbackRate): no triggerPrice (it trails the
    price instead), no closePosition (Binance: "Target strategy invalid ..."), a callbackRate of
    0.1 to 20 in steps of 0.1 (Binance's error list has no code of its own for it: -1130)."""
    if p.get("triggerPrice", ""):
        raise BookError(-1106, "Parameter 'triggerPrice' sent when not required.")
    if boolean(p, "closePosition"):
        raise BookError(-4136, "Target strategy invalid for orderType TRAILING_STOP_MARKET,closePosition true")
    rate = decimal(p, "callbackRate")
    if not CALLBACK_MIN <= rate <= CALLBACK_MAX or rate % CALLBACK_STEP:
        raise BookError(
            -1130,
            f"Data sent for parameter 'callbackRate' is not valid. "
            f"(from {CALLBACK_MIN} to {CALLBACK_MAX}, in steps of {CALLBACK_STEP})",
        )
    return (decimal(p, "activatePrice") if p.get("activatePrice", "") else None), rate


def _close_or_reduce(p: Params) -> tuple[bool, bool, Decimal]:
    """(closePosition, reduceOnly, quantity): closePosition takes neither a quantity nor reduceOnly."""
    close = boolean(p, "closePosition") or False
    reduce_only = boolean(p, "reduceOnly")
    if close and p.get("quantity", ""):
        raise BookError(-4137, "Quantity must be zero with closePosition equals true.")
    if close and reduce_only is not None:
        raise BookError(-1106, "Parameter 'reduceOnly' sent when not required.")
    return close, reduce_only or False, Decimal(0) if close else decimal(p, "quantity")


def _reduce_only_sent(p: Params, position_side: PositionSide | None) -> None:
    """Hedge mode (LONG/SHORT) reduces by side and positionSide; reduceOnly is not allowed."""
    if position_side in (PositionSide.LONG, PositionSide.SHORT) and p.get("reduceOnly", ""):
        raise BookError(-1106, "Parameter 'reduceOnly' sent when not required.")


# --- filters ----------------------------------------------------------------------------------


def check_price(spec: SymbolSpec, price: Decimal) -> None:
    if price <= 0:
        raise BookError(-4001, "Price less than 0.")
    if price < spec.min_price:
        raise BookError(-4013, "Price less than min price.")
    if price > spec.max_price:
        raise BookError(-4016, f"Price greater than max price {spec.max_price}.")
    if price % spec.tick_size:
        raise BookError(-4014, "Price not increased by tick size.")


def check_quantity(spec: SymbolSpec, qty: Decimal, market: bool) -> None:
    if qty <= 0:
        raise BookError(-4003, "Quantity less than or equal to zero.")
    if qty % spec.step_size:
        raise BookError(-4023, "Quantity not increased by step size.")
    if qty < spec.min_qty:
        raise BookError(-4004, "Quantity less than min quantity.")
    if qty > (spec.market_max_qty if market else spec.max_qty):
        raise BookError(-4005, "Quantity greater than max quantity.")


def check_notional(spec: SymbolSpec, qty: Decimal, price: Decimal, reduce_only: bool) -> None:
    if not reduce_only and qty * price < spec.min_notional:
        raise BookError(
            -4164,
            f"Order's notional must be no smaller than {spec.min_notional} "
            f"(unless you choose reduce only).",
        )


def check_order(o: NewOrder, mark: Decimal) -> None:
    """The symbol filters for a regular order, against the current mark price."""
    spec = SYMBOLS[o.symbol]
    check_quantity(spec, o.quantity, market=o.type == "MARKET")
    if o.type == "LIMIT":
        check_price(spec, o.price)
        if o.side is Side.BUY and o.price > mark * PERCENT_UP:
            raise BookError(
                -4016, f"Limit price can't be higher than {spec.round_price(mark * PERCENT_UP)}."
            )
        if o.side is Side.SELL and o.price < mark * PERCENT_DOWN:
            raise BookError(
                -4024, f"Limit price can't be lower than {spec.round_price(mark * PERCENT_DOWN)}."
            )
    check_notional(spec, o.quantity, o.price if o.type == "LIMIT" else mark, o.reduce_only)


def check_algo(a: NewAlgo, mark: Decimal) -> None:
    """The symbol filters for an algo order: its trigger (a trailing stop: its activatePrice,
    when sent) and its quantity at that price (at ``mark`` for a trailing stop without one)."""
    spec = SYMBOLS[a.symbol]
    if a.type == TRAILING:
        if a.activate_price is not None:
            check_activate_price(spec, a.activate_price)
        at = mark if a.activate_price is None else a.activate_price
    else:
        check_price(spec, a.trigger_price)
        at = a.trigger_price
    if not a.close_position:
        check_quantity(spec, a.quantity, market=True)
        check_notional(spec, a.quantity, at, a.reduce_only)


def check_activate_price(spec: SymbolSpec, price: Decimal) -> None:
    """-4135 off the symbol's price range, -4014 off its tick."""
    if not spec.min_price <= price <= spec.max_price:
        raise BookError(-4135, "Invalid activation price.")
    if price % spec.tick_size:
        raise BookError(-4014, "Price not increased by tick size.")
