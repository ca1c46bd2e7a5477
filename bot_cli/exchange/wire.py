"""Binance USDⓈ-M payloads: their typed shapes, and their one translation into core values (pure).

The TypedDicts below name the fields we read (Binance sends more; the rest is ignored).
Each ``parse_*`` checks what it reads: a missing required field, a wrong type or a bad
number raises ``WireError`` naming the field, never a default. Numbers arrive as strings
and become ``Decimal``; ids and times are ints, except where Binance sends them as
strings (``E`` of ``listenKeyExpired``, ``ai``/``actualOrderId``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, NotRequired, TypedDict, TypeVar

from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    OrderReport,
    OrderStatus,
    PositionSide,
)
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.venue import Positions


class WireError(ValueError):
    """A payload that does not have the shape Binance documents."""


# --- REST shapes -----------------------------------------------------------------------


class RestOrder(TypedDict):
    """POST/GET/DELETE /fapi/v1/order, GET /fapi/v1/openOrders, batchOrders elements."""

    symbol: str
    clientOrderId: str
    orderId: int
    status: str
    executedQty: str  # cumulative
    origQty: str
    avgPrice: NotRequired[str]  # dropped from new-order and cancel answers in 2026-07


class RestAlgoOrder(TypedDict):
    """POST/GET /fapi/v1/algoOrder, GET /fapi/v1/openAlgoOrders."""

    symbol: str
    clientAlgoId: str
    algoId: int
    algoStatus: str
    triggerPrice: str
    quantity: str
    actualOrderId: NotRequired[str]  # "" until triggered; absent from the new-order answer


class RestCancelAlgo(TypedDict):
    algoId: int
    clientAlgoId: str
    code: str | int  # the STRING "200" here, a number on algoOpenOrders
    msg: str


class RestPositionRisk(TypedDict):
    """GET /fapi/v2/positionRisk and /fapi/v3/positionRisk rows."""

    symbol: str
    positionSide: str
    positionAmt: str


class RestSymbol(TypedDict):
    symbol: str
    filters: list[dict[str, str | int]]


class RestExchangeInfo(TypedDict):
    symbols: list[RestSymbol]


class RestPremiumIndex(TypedDict):
    """GET /fapi/v1/premiumIndex?symbol= (a list of these without a symbol)."""

    symbol: str
    markPrice: str
    time: int


class RestUserTrade(TypedDict):
    orderId: int
    qty: str
    price: str


class RestError(TypedDict):
    code: int
    msg: str


# --- user stream shapes ----------------------------------------------------------------


class WsOrder(TypedDict):
    s: str  # symbol
    c: str  # client order id
    i: int  # order id
    X: str  # order status
    x: str  # execution type
    q: str  # original quantity
    z: str  # cumulative filled quantity
    ap: str  # average price
    l: str  # noqa: E741  # last filled quantity
    L: str  # last filled price
    N: NotRequired[str]  # commission asset: "will not push if no commission"
    n: NotRequired[str]


class WsAlgo(TypedDict):
    caid: str  # clientAlgoId
    aid: int  # algoId
    s: str
    X: str  # algo status
    tp: str  # trigger price
    q: str
    ai: NotRequired[str]  # matching-engine order id after trigger, a STRING; "" before
    rm: NotRequired[str]  # failure reason


class WsPosition(TypedDict):
    s: str
    pa: str  # signed position amount
    ps: str


class WsAccount(TypedDict):
    m: str
    P: NotRequired[list[WsPosition]]  # absent e.g. for FUNDING_FEE on a cross position


class WsEvent(TypedDict):
    e: str
    E: int | str  # event time; a string in some listenKeyExpired events


# --- parsed values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiError:
    """A ``{"code", "msg"}`` answer, e.g. one element of a batchOrders answer."""

    code: int
    msg: str


@dataclass(frozen=True, slots=True)
class MarkPrice:
    symbol: str
    price: Decimal
    time: int  # exchange time of the price, ms


class UserTrade(NamedTuple):
    order_id: int
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """ORDER_TRADE_UPDATE: a matching-engine order changed (``report.filled_qty`` is ``z``)."""

    event_time: int
    report: OrderReport
    last_qty: Decimal
    last_price: Decimal
    execution_type: str


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    """ALGO_UPDATE: an algo (conditional) order changed; ``reason`` is ``rm`` or ""."""

    event_time: int
    report: AlgoReport
    reason: str


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """ACCOUNT_UPDATE: positions that changed (only those)."""

    event_time: int
    positions: Positions


@dataclass(frozen=True, slots=True)
class ListenKeyExpired:
    event_time: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event we do not act on (ACCOUNT_CONFIG_UPDATE, TRADE_LITE, ...)."""

    event_type: str


StreamMessage = OrderUpdate | AlgoUpdate | AccountUpdate | ListenKeyExpired | Ignored


# --- field readers ---------------------------------------------------------------------

_E = TypeVar("_E", bound=enum.Enum)
_INT = re.compile(r"-?[0-9]+")


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise WireError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise WireError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _field(m: Mapping[str, object], key: str, where: str) -> object:
    if key not in m:
        raise WireError(f"{where}: missing field {key!r}")
    return m[key]


def _str(m: Mapping[str, object], key: str, where: str) -> str:
    value = _field(m, key, where)
    if not isinstance(value, str):
        raise WireError(f"{where}: field {key!r} is not a string: {value!r}")
    return value


def _int(m: Mapping[str, object], key: str, where: str) -> int:
    """An int, or a string of digits (Binance sends some ids and times as strings)."""
    value = _field(m, key, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise WireError(f"{where}: field {key!r} is not an integer: {value!r}")


def _dec(m: Mapping[str, object], key: str, where: str) -> Decimal:
    value = _field(m, key, where)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise WireError(f"{where}: field {key!r} is not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"{where}: field {key!r} is not a number: {value!r}") from None
    if not number.is_finite():
        raise WireError(f"{where}: field {key!r} is not a finite number: {value!r}")
    return number


def _opt_id(m: Mapping[str, object], key: str, where: str) -> int | None:
    """An id that is absent, "" or "0" until it exists (``ai``, ``actualOrderId``)."""
    if key not in m or m[key] in ("", None):
        return None
    return _int(m, key, where) or None


def _opt_dec(m: Mapping[str, object], key: str, where: str) -> Decimal | None:
    """A quantity that is absent or "" until it exists (``aq``, ``actualQty`` once fired)."""
    if key not in m or m[key] in ("", None):
        return None
    return _dec(m, key, where)


def _price_or_none(price: Decimal) -> Decimal | None:
    """Binance reports "0" as the average price of an order with no fill."""
    return price if price != 0 else None


def _enum(cls: type[_E], m: Mapping[str, object], key: str, where: str) -> _E:
    value = _str(m, key, where)
    try:
        return cls(value)
    except ValueError:
        raise WireError(f"{where}: field {key!r} has unknown value {value!r}") from None


# --- REST parsers ----------------------------------------------------------------------


def parse_order(d: RestOrder) -> OrderReport:
    """Any REST order shape; ``avgPrice`` absent (new-order, cancel) or zero -> None."""
    return _order(_obj(d, "order"))


def _order(m: Mapping[str, object]) -> OrderReport:
    w = "order"
    avg = _price_or_none(_dec(m, "avgPrice", w)) if "avgPrice" in m else None
    return OrderReport(
        symbol=_str(m, "symbol", w),
        client_id=ClientId(_str(m, "clientOrderId", w)),
        order_id=_int(m, "orderId", w),
        status=_enum(OrderStatus, m, "status", w),
        filled_qty=_dec(m, "executedQty", w),
        avg_price=avg,
        quantity=_dec(m, "origQty", w),
    )


def parse_algo(d: RestAlgoOrder) -> AlgoReport:
    """Any REST algo-order shape; ``actualOrderId`` "" or absent -> None."""
    return _algo(_obj(d, "algo order"))


def _algo(m: Mapping[str, object]) -> AlgoReport:
    w = "algo order"
    return AlgoReport(
        symbol=_str(m, "symbol", w),
        client_id=ClientId(_str(m, "clientAlgoId", w)),
        algo_id=_int(m, "algoId", w),
        status=_enum(AlgoStatus, m, "algoStatus", w),
        trigger_price=_dec(m, "triggerPrice", w),
        quantity=_dec(m, "quantity", w),
        actual_order_id=_opt_id(m, "actualOrderId", w),
        executed_qty=_opt_dec(m, "actualQty", w),
    )


def parse_orders(rows: list[RestOrder]) -> list[OrderReport]:
    return [_order(_obj(r, "order")) for r in _list(rows, "orders")]


def parse_algos(rows: list[RestAlgoOrder]) -> list[AlgoReport]:
    return [_algo(_obj(r, "algo order")) for r in _list(rows, "algo orders")]


def parse_cancel_algo(d: RestCancelAlgo) -> ClientId:
    """The cancelled clientAlgoId; anything but code 200 is not a confirmed cancel."""
    w = "algo cancel"
    m = _obj(d, w)
    code = _field(m, "code", w)
    if code not in ("200", 200):
        raise WireError(f"{w}: code is {code!r}, not 200")
    return ClientId(_str(m, "clientAlgoId", w))


def parse_api_error(d: RestError) -> ApiError:
    return _api_error(_obj(d, "error"))


def _api_error(m: Mapping[str, object]) -> ApiError:
    return ApiError(_int(m, "code", "error"), _str(m, "msg", "error"))


def parse_batch_orders(rows: list[object]) -> list[OrderReport | ApiError]:
    """batchOrders answers positionally: each element is an order OR a ``{code, msg}``."""
    out: list[OrderReport | ApiError] = []
    for row in _list(rows, "batch orders"):
        m = _obj(row, "batch orders element")
        is_error = "code" in m and "orderId" not in m
        out.append(_api_error(m) if is_error else _order(m))
    return out


def parse_position_risk(rows: list[RestPositionRisk]) -> Positions:
    """positionRisk v2 or v3 -> signed amount per (symbol, position side)."""
    out: Positions = {}
    for row in _list(rows, "position risk"):
        m = _obj(row, "position risk row")
        side = _enum(PositionSide, m, "positionSide", "position risk row")
        out[(_str(m, "symbol", "position risk row"), side)] = _dec(
            m, "positionAmt", "position risk row"
        )
    return out


def parse_user_trades(rows: list[RestUserTrade]) -> list[UserTrade]:
    w = "user trade"
    out = []
    for row in _list(rows, "user trades"):
        m = _obj(row, w)
        out.append(UserTrade(_int(m, "orderId", w), _dec(m, "qty", w), _dec(m, "price", w)))
    return out


def parse_exchange_info(d: RestExchangeInfo) -> dict[str, SymbolFilters]:
    """GET /fapi/v1/exchangeInfo -> the filters of every symbol."""
    symbols = _list(_field(_obj(d, "exchangeInfo"), "symbols", "exchangeInfo"), "symbols")
    parsed = (_symbol_filters(_obj(s, "symbol")) for s in symbols)
    return {f.symbol: f for f in parsed}


def parse_symbol_filters(d: RestSymbol) -> SymbolFilters:
    """One element of exchangeInfo.symbols; the four filters we use are required."""
    return _symbol_filters(_obj(d, "symbol"))


def _symbol_filters(m: Mapping[str, object]) -> SymbolFilters:
    symbol = _str(m, "symbol", "symbol")
    w = f"symbol {symbol}"
    by_type: dict[str, Mapping[str, object]] = {}
    for f in _list(_field(m, "filters", w), f"{w} filters"):
        fm = _obj(f, f"{w} filter")
        by_type[_str(fm, "filterType", f"{w} filter")] = fm

    def need(kind: str) -> Mapping[str, object]:
        return _obj(_field(by_type, kind, f"{w} filters"), f"{w} {kind}")

    kinds = ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL")
    price, lot, market, notional = map(need, kinds)
    pct = by_type.get("PERCENT_PRICE")  # optional: absent means no limit against the mark
    return SymbolFilters(
        symbol=symbol,
        tick_size=_dec(price, "tickSize", f"{w} PRICE_FILTER"),
        step_size=_dec(lot, "stepSize", f"{w} LOT_SIZE"),
        min_qty=_dec(lot, "minQty", f"{w} LOT_SIZE"),
        max_qty=_dec(lot, "maxQty", f"{w} LOT_SIZE"),
        market_step_size=_dec(market, "stepSize", f"{w} MARKET_LOT_SIZE"),
        market_min_qty=_dec(market, "minQty", f"{w} MARKET_LOT_SIZE"),
        market_max_qty=_dec(market, "maxQty", f"{w} MARKET_LOT_SIZE"),
        min_notional=_dec(notional, "notional", f"{w} MIN_NOTIONAL"),
        min_price=_dec(price, "minPrice", f"{w} PRICE_FILTER"),
        max_price=_dec(price, "maxPrice", f"{w} PRICE_FILTER"),
        multiplier_up=_dec(pct, "multiplierUp", f"{w} PERCENT_PRICE") if pct else Decimal(0),
        multiplier_down=_dec(pct, "multiplierDown", f"{w} PERCENT_PRICE") if pct else Decimal(0),
    )


def parse_premium_index(d: RestPremiumIndex) -> MarkPrice:
    """One symbol's premiumIndex; a mark price that is not positive is no price at all."""
    w = "premium index"
    m = _obj(d, w)
    price = _dec(m, "markPrice", w)
    if price <= 0:
        raise WireError(f"{w}: field 'markPrice' is not positive: {price}")
    return MarkPrice(_str(m, "symbol", w), price, _int(m, "time", w))


def parse_server_time(d: object) -> int:
    return _int(_obj(d, "server time"), "serverTime", "server time")


def parse_position_mode(d: object) -> bool:
    """GET /fapi/v1/positionSide/dual: True means Hedge Mode."""
    value = _field(_obj(d, "position mode"), "dualSidePosition", "position mode")
    if not isinstance(value, bool):
        raise WireError(f"position mode: field 'dualSidePosition' is not a boolean: {value!r}")
    return value


def parse_listen_key(d: object) -> str:
    return _str(_obj(d, "listenKey answer"), "listenKey", "listenKey answer")


# --- user stream -----------------------------------------------------------------------


def parse_stream_message(raw: str | bytes) -> StreamMessage:
    """One user-stream frame, raw or wrapped as ``{"stream": .., "data": ..}``."""
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise WireError(f"stream message: not JSON: {exc}") from None
    m = _obj(data, "stream message")
    if "stream" in m and "data" in m:
        m = _obj(m["data"], "stream message data")
    if "e" not in m and "id" in m:
        return Ignored("response")  # the answer to a SUBSCRIBE request, not an event
    event_type = _str(m, "e", "stream message")
    parser = _STREAM_PARSERS.get(event_type)
    return parser(m) if parser is not None else Ignored(event_type)


def _order_update(m: Mapping[str, object]) -> OrderUpdate:
    w = "ORDER_TRADE_UPDATE.o"
    o = _obj(_field(m, "o", "ORDER_TRADE_UPDATE"), w)
    report = OrderReport(
        symbol=_str(o, "s", w),
        client_id=ClientId(_str(o, "c", w)),
        order_id=_int(o, "i", w),
        status=_enum(OrderStatus, o, "X", w),
        filled_qty=_dec(o, "z", w),
        avg_price=_price_or_none(_dec(o, "ap", w)),
        quantity=_dec(o, "q", w),
    )
    return OrderUpdate(
        event_time=_int(m, "E", "ORDER_TRADE_UPDATE"),
        report=report,
        last_qty=_dec(o, "l", w),
        last_price=_dec(o, "L", w),
        execution_type=_str(o, "x", w),
    )


def _algo_update(m: Mapping[str, object]) -> AlgoUpdate:
    w = "ALGO_UPDATE.o"
    o = _obj(_field(m, "o", "ALGO_UPDATE"), w)
    report = AlgoReport(
        symbol=_str(o, "s", w),
        client_id=ClientId(_str(o, "caid", w)),
        algo_id=_int(o, "aid", w),
        status=_enum(AlgoStatus, o, "X", w),
        trigger_price=_dec(o, "tp", w),
        quantity=_dec(o, "q", w),
        actual_order_id=_opt_id(o, "ai", w),
        executed_qty=_opt_dec(o, "aq", w),
    )
    reason = _str(o, "rm", w) if "rm" in o else ""  # rm is only sent with a failure
    # The docs swap T and E labels for this event; the SDK model says E is event time.
    return AlgoUpdate(_int(m, "E", "ALGO_UPDATE"), report, reason)


def _account_update(m: Mapping[str, object]) -> AccountUpdate:
    w = "ACCOUNT_UPDATE.a.P"
    a = _obj(_field(m, "a", "ACCOUNT_UPDATE"), "ACCOUNT_UPDATE.a")
    positions: Positions = {}
    for row in _list(a["P"], w) if "P" in a else []:
        p = _obj(row, w)
        positions[(_str(p, "s", w), _enum(PositionSide, p, "ps", w))] = _dec(p, "pa", w)
    return AccountUpdate(_int(m, "E", "ACCOUNT_UPDATE"), positions)


def _listen_key_expired(m: Mapping[str, object]) -> ListenKeyExpired:
    return ListenKeyExpired(_int(m, "E", "listenKeyExpired"))


_STREAM_PARSERS: dict[str, Callable[[Mapping[str, object]], StreamMessage]] = {
    "ORDER_TRADE_UPDATE": _order_update,
    "ALGO_UPDATE": _algo_update,
    "ACCOUNT_UPDATE": _account_update,
    "listenKeyExpired": _listen_key_expired,
}
