"""The /fapi endpoints: request parameters in, Binance-shaped JSON out (no HTTP here).

Each handler takes the exchange, the merged parameters and ``now`` and returns the JSON body,
or raises ``BookError``. ``ROUTES`` lists them with their method, security type and request
weight (reference §3); ``app`` wraps them with authentication, faults and the commit rule.
"""

from __future__ import annotations

from typing import Any

from bot_cli.paper import handlers_account, handlers_market, info, shapes
from bot_cli.paper.auth import ONE_ORDER
from bot_cli.paper.endpoint import SEVEN_DAYS_MS, Route, limit, opt_symbol, w, w_symbol
from bot_cli.paper.records import Algo, Order
from bot_cli.paper.rules import (
    BookError,
    Params,
    client_id,
    integer,
    natural,
    parse_new_algo,
    parse_new_order,
    symbol_spec,
)
from bot_cli.paper.service import PaperExchange


__all__ = ["ROUTES", "Route"]


def _visible_order(ex: PaperExchange, o: Order, now: int) -> bool:
    return not ex.faults.hidden("order", o.order_id, now)


def _visible_algo(ex: PaperExchange, a: Algo, now: int) -> bool:
    return not ex.faults.hidden("algo", a.algo_id, now)


# --- market data ------------------------------------------------------------------------------


def server_time(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"serverTime": now}


def exchange_info(ex: PaperExchange, p: Params, now: int) -> Any:
    return info.exchange_info(now, ex.weights.limits)


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


def countdown_cancel_all(ex: PaperExchange, p: Params, now: int) -> Any:
    """The symbol's dead-man switch, (re)armed for countdownTime ms, or off with 0. Binance
    answers the countdown as a string (the SDK's model types it StrictStr)."""
    symbol, countdown = symbol_spec(p).symbol, natural(p, "countdownTime")
    ex.book.set_countdown(symbol, countdown, now)
    return {"symbol": symbol, "countdownTime": str(countdown)}


def open_orders(ex: PaperExchange, p: Params, now: int) -> Any:
    orders = sorted(ex.book.open_orders(opt_symbol(p)), key=lambda o: o.order_id)
    return [shapes.order_response(o, "query") for o in orders if _visible_order(ex, o, now)]


def all_orders(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, from_id = opt_symbol(p), integer(p, "orderId")
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
    rows = rows[: limit(p)] if from_id is not None else rows[-limit(p) :]
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
    algos = sorted(ex.book.open_algos(opt_symbol(p)), key=lambda a: a.algo_id)
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
    rows = rows[: limit(p)] if from_id is not None else rows[-limit(p) :]
    return [shapes.algo_response(a, "all") for a in rows]


# --- listenKey (USER_STREAM: API key, no signature) -------------------------------------------


def start_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"listenKey": ex.start_listen_key()}


def keepalive_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"listenKey": ex.keepalive_listen_key()}


def close_listen_key(ex: PaperExchange, p: Params, now: int) -> Any:
    return {}  # accepted but harmless: the key is shared, another consumer may still use it


ORDER_ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v1/time", "NONE", w(1), server_time),
    Route("GET", "/fapi/v1/ping", "NONE", w(1), lambda ex, p, now: {}),
    Route("GET", "/fapi/v1/exchangeInfo", "NONE", w(1), exchange_info),
    Route("POST", "/fapi/v1/order", "SIGNED", w(0), new_order, order_cost=ONE_ORDER),
    Route("GET", "/fapi/v1/order", "SIGNED", w(1), query_order),
    Route("DELETE", "/fapi/v1/order", "SIGNED", w(1), cancel_order),
    Route("GET", "/fapi/v1/openOrder", "SIGNED", w(1), query_open_order),
    Route("GET", "/fapi/v1/openOrders", "SIGNED", w_symbol(40), open_orders),
    Route("GET", "/fapi/v1/allOrders", "SIGNED", w(5), all_orders),
    Route("DELETE", "/fapi/v1/allOpenOrders", "SIGNED", w(1), cancel_all_orders),
    Route("POST", "/fapi/v1/countdownCancelAll", "SIGNED", w(10), countdown_cancel_all),
    Route("POST", "/fapi/v1/algoOrder", "SIGNED", w(0), new_algo, order_cost=ONE_ORDER),
    Route("GET", "/fapi/v1/algoOrder", "SIGNED", w(1), query_algo),
    Route("DELETE", "/fapi/v1/algoOrder", "SIGNED", w(1), cancel_algo),
    Route("GET", "/fapi/v1/openAlgoOrders", "SIGNED", w_symbol(40), open_algos),
    Route("GET", "/fapi/v1/allAlgoOrders", "SIGNED", w(5), all_algos),
    Route("DELETE", "/fapi/v1/algoOpenOrders", "SIGNED", w(1), cancel_all_algos),
    Route("POST", "/fapi/v1/listenKey", "USER_STREAM", w(1), start_listen_key),
    Route("PUT", "/fapi/v1/listenKey", "USER_STREAM", w(1), keepalive_listen_key),
    Route("DELETE", "/fapi/v1/listenKey", "USER_STREAM", w(1), close_listen_key),
)
ROUTES: tuple[Route, ...] = ORDER_ROUTES + handlers_account.ROUTES + handlers_market.ROUTES
