"""The /fapi endpoints: request parameters in, Binance-shaped JSON out (no HTTP here).

Each handler takes the exchange, the merged parameters and ``now`` and returns the JSON body,
or raises ``BookError``. ``ROUTES`` lists them with their method, security type and request
weight (reference §3); ``app`` wraps them with authentication, faults and the commit rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot_cli.paper import info, shapes
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import Algo, Order
from bot_cli.paper.rules import (
    BookError,
    Params,
    boolean,
    client_id,
    integer,
    parse_new_algo,
    parse_new_order,
    required,
    symbol_spec,
)
from bot_cli.paper.service import PaperExchange

Handler = Callable[[PaperExchange, Params, int], Any]
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    security: str  # NONE | USER_STREAM (key only) | SIGNED
    weight: Callable[[Params], int]
    handler: Handler
    counts_order: bool = False


def _w(n: int) -> Callable[[Params], int]:
    return lambda _p: n


def _w_symbol(p: Params) -> int:
    return 1 if p.get("symbol") else 40  # "careful when accessing this with no symbol"


def _w_premium(p: Params) -> int:
    return 1 if p.get("symbol") else 10


def _visible_order(ex: PaperExchange, o: Order, now: int) -> bool:
    return not ex.faults.hidden("order", o.order_id, now)


def _visible_algo(ex: PaperExchange, a: Algo, now: int) -> bool:
    return not ex.faults.hidden("algo", a.algo_id, now)


def _opt_symbol(p: Params) -> str | None:
    return symbol_spec(p).symbol if p.get("symbol") else None


def _limit(p: Params) -> int:
    return max(1, min(integer(p, "limit", 500) or 500, 1000))


# --- market data ------------------------------------------------------------------------------


def server_time(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"serverTime": now}


def exchange_info(ex: PaperExchange, p: Params, now: int) -> Any:
    return info.exchange_info(now)


def ticker_price(ex: PaperExchange, p: Params, now: int) -> Any:
    only = _opt_symbol(p)
    rows = [
        {"symbol": s, "price": SYMBOLS[s].fmt_price(ex.book.mark(s, now)), "time": now}
        for s in SYMBOLS
        if only in (None, s)
    ]
    return rows[0] if only else rows


def premium_index(ex: PaperExchange, p: Params, now: int) -> Any:
    """Mark price and funding: one object for a symbol, a list of all without one."""
    only = _opt_symbol(p)
    rows = [
        shapes.premium_index(s, ex.book.mark(s, now), now) for s in SYMBOLS if only in (None, s)
    ]
    return rows[0] if only else rows


# --- regular orders ---------------------------------------------------------------------------


def new_order(ex: PaperExchange, p: Params, now: int) -> Any:
    req = parse_new_order(p)
    accepted, final = ex.book.new_order(req, now)
    ex.faults.created("order", accepted.order_id, now)
    if req.resp_type == "RESULT":
        return shapes.order_response(final, "result")
    return shapes.order_response(accepted, "new")


def _order_ids(p: Params) -> tuple[str, int | None, str | None]:
    return symbol_spec(p).symbol, integer(p, "orderId"), client_id(p, "origClientOrderId")


def query_order(ex: PaperExchange, p: Params, now: int) -> Any:
    order = ex.book.query_order(*_order_ids(p))
    if not _visible_order(ex, order, now):
        raise BookError(-2013, "Order does not exist.")
    return shapes.order_response(order, "query")


def query_open_order(ex: PaperExchange, p: Params, now: int) -> Any:
    order = ex.book.query_order(*_order_ids(p))
    if not order.is_open or not _visible_order(ex, order, now):
        raise BookError(-2013, "Order does not exist.")
    return shapes.order_response(order, "query")


def cancel_order(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, order_id, cid = _order_ids(p)
    return shapes.order_response(ex.book.cancel_order(symbol, order_id, cid, now), "cancel")


def cancel_all_orders(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol = symbol_spec(p).symbol
    for order in ex.book.open_orders(symbol):
        ex.book.cancel_order(symbol, order.order_id, None, now)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def open_orders(ex: PaperExchange, p: Params, now: int) -> Any:
    orders = sorted(ex.book.open_orders(_opt_symbol(p)), key=lambda o: o.order_id)
    return [shapes.order_response(o, "query") for o in orders if _visible_order(ex, o, now)]


def all_orders(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, from_id = _opt_symbol(p), integer(p, "orderId")
    end = integer(p, "endTime") or now
    start = integer(p, "startTime") or (0 if from_id is not None else end - SEVEN_DAYS_MS)
    rows = sorted(
        (
            o
            for o in ex.book.orders.values()
            if symbol in (None, o.symbol)
            and (from_id is None or o.order_id >= from_id)
            and start <= o.time <= end
            and _visible_order(ex, o, now)
        ),
        key=lambda o: o.order_id,
    )
    rows = rows[: _limit(p)] if from_id is not None else rows[-_limit(p) :]
    return [shapes.order_response(o, "all") for o in rows]


# --- algo orders ------------------------------------------------------------------------------


def new_algo(ex: PaperExchange, p: Params, now: int) -> Any:
    algo = ex.book.new_algo(parse_new_algo(p), now)
    ex.faults.created("algo", algo.algo_id, now)
    return shapes.algo_response(algo, "new")


def _algo_ids(p: Params) -> tuple[int | None, str | None]:
    return integer(p, "algoId"), client_id(p, "clientAlgoId")


def query_algo(ex: PaperExchange, p: Params, now: int) -> Any:
    algo = ex.book.query_algo(*_algo_ids(p))
    if not _visible_algo(ex, algo, now):
        raise BookError(-2013, "Order does not exist.")
    return shapes.algo_response(algo, "query")


def cancel_algo(ex: PaperExchange, p: Params, now: int) -> Any:
    return shapes.algo_cancel_response(ex.book.cancel_algo(*_algo_ids(p), now))


def cancel_all_algos(ex: PaperExchange, p: Params, now: int) -> Any:
    for algo in ex.book.open_algos(symbol_spec(p).symbol):
        ex.book.cancel_algo(algo.algo_id, None, now)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def open_algos(ex: PaperExchange, p: Params, now: int) -> Any:
    algo_id = integer(p, "algoId")
    algos = sorted(ex.book.open_algos(_opt_symbol(p)), key=lambda a: a.algo_id)
    return [
        shapes.algo_response(a, "open")
        for a in algos
        if algo_id in (None, a.algo_id) and _visible_algo(ex, a, now)
    ]


def all_algos(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, from_id = symbol_spec(p).symbol, integer(p, "algoId")
    end = integer(p, "endTime") or now
    start = integer(p, "startTime") or (0 if from_id is not None else end - SEVEN_DAYS_MS)
    rows = sorted(
        (
            a
            for a in ex.book.algos.values()
            if a.symbol == symbol
            and (from_id is None or a.algo_id >= from_id)
            and start <= a.create_time <= end
            and _visible_algo(ex, a, now)
        ),
        key=lambda a: a.algo_id,
    )
    rows = rows[: _limit(p)] if from_id is not None else rows[-_limit(p) :]
    return [shapes.algo_response(a, "all") for a in rows]


# --- account ----------------------------------------------------------------------------------


def position_risk_v3(ex: PaperExchange, p: Params, now: int) -> Any:
    book, only = ex.book, _opt_symbol(p)
    busy = {o.symbol for o in book.open_orders()} | {a.symbol for a in book.open_algos()}
    busy |= {pos.symbol for pos in book.positions.values() if pos.amount}
    return [
        shapes.position_v3(book.position(s, ps), book.mark(s, now), book.notional(s))
        for s in sorted(busy)
        if only in (None, s)
        for ps in book.position_sides()
    ]


def position_risk_v2(ex: PaperExchange, p: Params, now: int) -> Any:
    book, only = ex.book, _opt_symbol(p)
    return [
        shapes.position_v2(book.position(s, ps), book.mark(s, now))
        for s in SYMBOLS
        if only in (None, s)
        for ps in book.position_sides()
    ]


def get_dual(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"dualSidePosition": ex.book.dual}


def set_dual(ex: PaperExchange, p: Params, now: int) -> Any:
    value = boolean(p, "dualSidePosition")
    if value is None:
        required(p, "dualSidePosition")
    ex.book.set_dual(bool(value), now)
    return {"code": 200, "msg": "success"}


def user_trades(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, order_id, from_id = symbol_spec(p).symbol, integer(p, "orderId"), integer(p, "fromId")
    end = integer(p, "endTime") or now
    start = integer(p, "startTime") or (
        0 if from_id is not None or order_id is not None else end - SEVEN_DAYS_MS
    )
    rows = [
        t
        for t in ex.book.trades
        if t.symbol == symbol
        and order_id in (None, t.order_id)
        and (from_id is None or t.trade_id >= from_id)
        and start <= t.time <= end
    ]
    rows = rows[: _limit(p)] if from_id is not None else rows[-_limit(p) :]
    return [shapes.user_trade(t) for t in rows]


def account_v3(ex: PaperExchange, p: Params, now: int) -> Any:
    book = ex.book
    held = [pos for pos in book.positions.values() if pos.amount]
    upnl = sum((shapes.unrealized(pos, book.mark(pos.symbol, now)) for pos in held), Decimal(0))
    margin = sum(
        (abs(pos.amount) * book.mark(pos.symbol, now) / shapes.LEVERAGE for pos in held), Decimal(0)
    )
    wallet, m = shapes.money(book.balance), shapes.money
    asset = {
        "asset": "USDT",
        "walletBalance": wallet,
        "unrealizedProfit": m(upnl),
        "marginBalance": m(book.balance + upnl),
        "maintMargin": "0",
        "initialMargin": m(margin),
        "positionInitialMargin": m(margin),
        "openOrderInitialMargin": "0",
        "crossWalletBalance": wallet,
        "crossUnPnl": m(upnl),
        "availableBalance": m(book.balance + upnl - margin),
        "maxWithdrawAmount": m(book.balance - margin),
        "updateTime": now,
    }
    return {
        "totalInitialMargin": m(margin),
        "totalMaintMargin": "0",
        "totalWalletBalance": wallet,
        "totalUnrealizedProfit": m(upnl),
        "totalMarginBalance": m(book.balance + upnl),
        "totalPositionInitialMargin": m(margin),
        "totalOpenOrderInitialMargin": "0",
        "totalCrossWalletBalance": wallet,
        "totalCrossUnPnl": m(upnl),
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": [
            {
                "symbol": pos.symbol,
                "positionSide": pos.position_side.value,
                "positionAmt": SYMBOLS[pos.symbol].fmt_qty(pos.amount),
                "unrealizedProfit": m(shapes.unrealized(pos, book.mark(pos.symbol, now))),
                "isolatedMargin": "0",
                "notional": m(pos.amount * book.mark(pos.symbol, now)),
                "isolatedWallet": "0",
                "initialMargin": "0",
                "maintMargin": "0",
                "updateTime": pos.update_time,
            }
            for pos in held
        ],
    }


# --- listenKey (USER_STREAM: API key, no signature) -------------------------------------------


def start_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"listenKey": ex.start_listen_key()}


def keepalive_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"listenKey": ex.keepalive_listen_key()}


def close_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {}  # accepted but harmless: the key is shared, another consumer may still use it


ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v1/time", "NONE", _w(1), server_time),
    Route("GET", "/fapi/v1/ping", "NONE", _w(1), lambda ex, p, now: {}),
    Route("GET", "/fapi/v1/exchangeInfo", "NONE", _w(1), exchange_info),
    Route(
        "GET", "/fapi/v1/ticker/price", "NONE", lambda p: 1 if p.get("symbol") else 2, ticker_price
    ),
    Route("GET", "/fapi/v1/premiumIndex", "NONE", _w_premium, premium_index),
    Route("POST", "/fapi/v1/order", "SIGNED", _w(0), new_order, counts_order=True),
    Route("GET", "/fapi/v1/order", "SIGNED", _w(1), query_order),
    Route("DELETE", "/fapi/v1/order", "SIGNED", _w(1), cancel_order),
    Route("GET", "/fapi/v1/openOrder", "SIGNED", _w(1), query_open_order),
    Route("GET", "/fapi/v1/openOrders", "SIGNED", _w_symbol, open_orders),
    Route("GET", "/fapi/v1/allOrders", "SIGNED", _w(5), all_orders),
    Route("DELETE", "/fapi/v1/allOpenOrders", "SIGNED", _w(1), cancel_all_orders),
    Route("POST", "/fapi/v1/algoOrder", "SIGNED", _w(0), new_algo, counts_order=True),
    Route("GET", "/fapi/v1/algoOrder", "SIGNED", _w(1), query_algo),
    Route("DELETE", "/fapi/v1/algoOrder", "SIGNED", _w(1), cancel_algo),
    Route("GET", "/fapi/v1/openAlgoOrders", "SIGNED", _w_symbol, open_algos),
    Route("GET", "/fapi/v1/allAlgoOrders", "SIGNED", _w(5), all_algos),
    Route("DELETE", "/fapi/v1/algoOpenOrders", "SIGNED", _w(1), cancel_all_algos),
    Route("GET", "/fapi/v3/positionRisk", "SIGNED", _w(5), position_risk_v3),
    Route("GET", "/fapi/v2/positionRisk", "SIGNED", _w(5), position_risk_v2),
    Route("GET", "/fapi/v1/positionSide/dual", "SIGNED", _w(30), get_dual),
    Route("POST", "/fapi/v1/positionSide/dual", "SIGNED", _w(1), set_dual),
    Route("GET", "/fapi/v1/userTrades", "SIGNED", _w(5), user_trades),
    Route("GET", "/fapi/v3/account", "SIGNED", _w(5), account_v3),
    Route("POST", "/fapi/v1/listenKey", "USER_STREAM", _w(1), start_listen_key),
    Route("PUT", "/fapi/v1/listenKey", "USER_STREAM", _w(1), keepalive_listen_key),
    Route("DELETE", "/fapi/v1/listenKey", "USER_STREAM", _w(1), close_listen_key),
)
