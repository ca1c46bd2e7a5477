"""Binance USDⓈ-M REST answers: their typed shapes, and their one translation into core values.

The TypedDicts name the fields we read (Binance sends more; the rest is ignored). Each
``parse_*`` checks what it reads (``bot_cli.exchange.wire.fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, NotRequired, TypedDict

from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId, OrderReport, OrderStatus, PositionSide
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.wire.fields import (
    WireError,
    as_list,
    dec,
    field,
    integer,
    member,
    obj,
    opt_dec,
    opt_id,
    opt_price,
    price_or_none,
    text,
)
from bot_cli.venue import Positions


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


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One of exchangeInfo.rateLimits: at most ``limit`` of ``kind`` per ``interval_s`` seconds."""

    kind: str  # REQUEST_WEIGHT (per IP), ORDERS (per account), RAW_REQUESTS
    interval_s: int
    limit: int


_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


class UserTrade(NamedTuple):
    order_id: int
    qty: Decimal
    price: Decimal


def parse_order(d: RestOrder) -> OrderReport:
    """Any REST order shape; ``avgPrice`` absent (new-order, cancel) or zero -> None."""
    return _order(obj(d, "order"))


def _order(m: Mapping[str, object]) -> OrderReport:
    w = "order"
    avg = price_or_none(dec(m, "avgPrice", w)) if "avgPrice" in m else None
    return OrderReport(
        symbol=text(m, "symbol", w),
        client_id=ClientId(text(m, "clientOrderId", w)),
        order_id=integer(m, "orderId", w),
        status=member(OrderStatus, m, "status", w),
        filled_qty=dec(m, "executedQty", w),
        avg_price=avg,
        quantity=dec(m, "origQty", w),
    )


def parse_algo(d: RestAlgoOrder) -> AlgoReport:
    """Any REST algo-order shape; ``actualOrderId`` "" or absent -> None."""
    return _algo(obj(d, "algo order"))


def _algo(m: Mapping[str, object]) -> AlgoReport:
    w = "algo order"
    return AlgoReport(
        symbol=text(m, "symbol", w),
        client_id=ClientId(text(m, "clientAlgoId", w)),
        algo_id=integer(m, "algoId", w),
        status=member(AlgoStatus, m, "algoStatus", w),
        trigger_price=dec(m, "triggerPrice", w),
        quantity=dec(m, "quantity", w),
        actual_order_id=opt_id(m, "actualOrderId", w),
        executed_qty=opt_dec(m, "actualQty", w),
        avg_price=opt_price(m, "actualPrice", w),
    )


def parse_orders(rows: list[RestOrder]) -> list[OrderReport]:
    return [_order(obj(r, "order")) for r in as_list(rows, "orders")]


def parse_algos(rows: list[RestAlgoOrder]) -> list[AlgoReport]:
    return [_algo(obj(r, "algo order")) for r in as_list(rows, "algo orders")]


def parse_cancel_algo(d: RestCancelAlgo) -> ClientId:
    """The cancelled clientAlgoId; anything but code 200 is not a confirmed cancel."""
    w = "algo cancel"
    m = obj(d, w)
    code = field(m, "code", w)
    if code not in ("200", 200):
        raise WireError(f"{w}: code is {code!r}, not 200")
    return ClientId(text(m, "clientAlgoId", w))


def parse_api_error(d: RestError) -> ApiError:
    return _api_error(obj(d, "error"))


def _api_error(m: Mapping[str, object]) -> ApiError:
    return ApiError(integer(m, "code", "error"), text(m, "msg", "error"))


def parse_batch_orders(rows: list[object]) -> list[OrderReport | ApiError]:
    """batchOrders answers positionally: each element is an order OR a ``{code, msg}``."""
    out: list[OrderReport | ApiError] = []
    for row in as_list(rows, "batch orders"):
        m = obj(row, "batch orders element")
        is_error = "code" in m and "orderId" not in m
        out.append(_api_error(m) if is_error else _order(m))
    return out


def parse_position_risk(rows: list[RestPositionRisk]) -> Positions:
    """positionRisk v2 or v3 -> signed amount per (symbol, position side)."""
    out: Positions = {}
    for row in as_list(rows, "position risk"):
        m = obj(row, "position risk row")
        side = member(PositionSide, m, "positionSide", "position risk row")
        out[(text(m, "symbol", "position risk row"), side)] = dec(
            m, "positionAmt", "position risk row"
        )
    return out


def parse_user_trades(rows: list[RestUserTrade]) -> list[UserTrade]:
    w = "user trade"
    out = []
    for row in as_list(rows, "user trades"):
        m = obj(row, w)
        out.append(UserTrade(integer(m, "orderId", w), dec(m, "qty", w), dec(m, "price", w)))
    return out


def parse_exchange_info(d: RestExchangeInfo) -> dict[str, SymbolFilters]:
    """GET /fapi/v1/exchangeInfo -> the filters of every symbol."""
    symbols = as_list(field(obj(d, "exchangeInfo"), "symbols", "exchangeInfo"), "symbols")
    parsed = (_symbol_filters(obj(s, "symbol")) for s in symbols)
    return {f.symbol: f for f in parsed}


def parse_rate_limits(d: object) -> list[RateLimit]:
    """exchangeInfo.rateLimits: the limits the exchange enforces, each one checked."""
    rows = as_list(field(obj(d, "exchangeInfo"), "rateLimits", "exchangeInfo"), "rateLimits")
    return [_rate_limit(obj(row, "rate limit")) for row in rows]


def _rate_limit(m: Mapping[str, object]) -> RateLimit:
    w = "rate limit"
    interval = text(m, "interval", w)
    if interval not in _INTERVAL_S:
        raise WireError(f"{w}: field 'interval' has unknown value {interval!r}")
    return RateLimit(text(m, "rateLimitType", w), _INTERVAL_S[interval] * integer(m, "intervalNum", w),
                     integer(m, "limit", w))  # fmt: skip


def parse_symbol_filters(d: RestSymbol) -> SymbolFilters:
    """One element of exchangeInfo.symbols; the four filters we use are required."""
    return _symbol_filters(obj(d, "symbol"))


def _symbol_filters(m: Mapping[str, object]) -> SymbolFilters:
    symbol = text(m, "symbol", "symbol")
    w = f"symbol {symbol}"
    by_type: dict[str, Mapping[str, object]] = {}
    for f in as_list(field(m, "filters", w), f"{w} filters"):
        fm = obj(f, f"{w} filter")
        by_type[text(fm, "filterType", f"{w} filter")] = fm

    def need(kind: str) -> Mapping[str, object]:
        return obj(field(by_type, kind, f"{w} filters"), f"{w} {kind}")

    kinds = ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL")
    price, lot, market, notional = map(need, kinds)
    pct = by_type.get("PERCENT_PRICE")  # optional: absent means no limit against the mark
    most = by_type.get("MAX_NUM_ORDERS")  # optional: absent means no limit known
    return SymbolFilters(
        symbol=symbol,
        tick_size=dec(price, "tickSize", f"{w} PRICE_FILTER"),
        step_size=dec(lot, "stepSize", f"{w} LOT_SIZE"),
        min_qty=dec(lot, "minQty", f"{w} LOT_SIZE"),
        max_qty=dec(lot, "maxQty", f"{w} LOT_SIZE"),
        market_step_size=dec(market, "stepSize", f"{w} MARKET_LOT_SIZE"),
        market_min_qty=dec(market, "minQty", f"{w} MARKET_LOT_SIZE"),
        market_max_qty=dec(market, "maxQty", f"{w} MARKET_LOT_SIZE"),
        min_notional=dec(notional, "notional", f"{w} MIN_NOTIONAL"),
        min_price=dec(price, "minPrice", f"{w} PRICE_FILTER"),
        max_price=dec(price, "maxPrice", f"{w} PRICE_FILTER"),
        multiplier_up=dec(pct, "multiplierUp", f"{w} PERCENT_PRICE") if pct else Decimal(0),
        multiplier_down=dec(pct, "multiplierDown", f"{w} PERCENT_PRICE") if pct else Decimal(0),
        max_num_orders=integer(most, "limit", f"{w} MAX_NUM_ORDERS") if most else 0,
    )


def parse_premium_index(d: RestPremiumIndex) -> MarkPrice:
    """One symbol's premiumIndex; a mark price that is not positive is no price at all."""
    w = "premium index"
    m = obj(d, w)
    price = dec(m, "markPrice", w)
    if price <= 0:
        raise WireError(f"{w}: field 'markPrice' is not positive: {price}")
    return MarkPrice(text(m, "symbol", w), price, integer(m, "time", w))


def parse_server_time(d: object) -> int:
    return integer(obj(d, "server time"), "serverTime", "server time")


def parse_position_mode(d: object) -> bool:
    """GET /fapi/v1/positionSide/dual: True means Hedge Mode."""
    value = field(obj(d, "position mode"), "dualSidePosition", "position mode")
    if not isinstance(value, bool):
        raise WireError(f"position mode: field 'dualSidePosition' is not a boolean: {value!r}")
    return value


def parse_algo_terms(d: object) -> tuple[str, str]:
    """An algo order's timeInForce and the reason the service gave for ending it ("" if none):
    what `bot probe` reports besides the AlgoReport."""
    m = obj(d, "algo order")
    tif, reason = m.get("timeInForce", ""), m.get("rm", m.get("reason", ""))
    return (tif if isinstance(tif, str) else "", reason if isinstance(reason, str) else "")


def parse_countdown(d: object) -> tuple[str, int]:
    """POST /fapi/v1/countdownCancelAll: the symbol and the countdown set, in ms (Binance
    answers the countdown as a string; a number is read too)."""
    w = "countdown answer"
    m = obj(d, w)
    return text(m, "symbol", w), integer(m, "countdownTime", w)


def parse_listen_key(d: object) -> str:
    return text(obj(d, "listenKey answer"), "listenKey", "listenKey answer")
