"""Binance's order shapes, built from the paper records: the REST answers and user-stream events
of regular and algo orders, and the number formats every shape uses (``num``, ``money``).
The account's shapes are in ``shapes_account``, premiumIndex in ``shapes_market``.

Key sets follow the reference fixtures (copied in ``tests/fixtures/binance``): numbers are
strings, ids and times ints, ``ai``/``actualOrderId`` strings. The new-order (ACK and RESULT) and
cancel answers have no ``avgPrice``/``cumQuote`` (the SDK's 2026 models); the query answer has them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from bot_cli.paper.market import SYMBOLS, SymbolSpec
from bot_cli.paper.records import Algo, Order, Trade


_EIGHT = Decimal("0.00000001")
_TENTH = Decimal("0.1")


def num(value: Decimal) -> str:
    """A plain decimal string (never exponent notation), trailing zeros dropped."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def money(value: Decimal) -> str:
    """Eight decimals, as Binance prints balances and PnL."""
    return format(value.quantize(_EIGHT), "f")


def _spec(symbol: str) -> SymbolSpec:
    return SYMBOLS[symbol]


# --- regular orders ---------------------------------------------------------------------------


def order_response(
    o: Order, kind: Literal["new", "result", "cancel", "query", "all"]
) -> dict[str, Any]:
    """One order: ``new`` (ACK), ``result`` (RESULT: the same keys, the order's final state),
    ``cancel``, ``query`` (GET order, open orders), ``all`` (GET allOrders)."""
    spec = _spec(o.symbol)
    body: dict[str, Any] = {"clientOrderId": o.client_id}
    if kind not in ("query", "all"):  # the query shapes have cumQuote/avgPrice/time instead
        body["cumQty"] = spec.fmt_qty(o.executed)
    body |= {
        "executedQty": spec.fmt_qty(o.executed),
        "orderId": o.order_id,
        "origQty": spec.fmt_qty(o.quantity),
        "price": spec.fmt_price(o.price),
        "reduceOnly": o.reduce_only,
        "side": o.side.value,
        "positionSide": o.position_side.value,
        "status": o.status.value,
        "stopPrice": spec.fmt_price(o.stop_price),
        "closePosition": o.close_position,
        "symbol": o.symbol,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "origType": o.orig_type,
        "updateTime": o.update_time,
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
    }
    return body | _order_extras(o, kind, spec)


def _order_extras(o: Order, kind: str, spec: SymbolSpec) -> dict[str, Any]:
    """What the query shapes add to the keys every order shape has."""
    if kind not in ("query", "all"):  # new (ACK and RESULT) and cancel: the SDK's 2026 models
        return {}
    extras: dict[str, Any] = {"avgPrice": _avg(o), "cumQuote": num(o.cum_quote), "time": o.time}
    if kind == "all":  # GET allOrders: the SDK model adds cumBase and pair
        extras |= {"cumBase": spec.fmt_qty(o.executed), "pair": o.symbol}
    return extras


def _avg(o: Order) -> str:
    return format(o.avg_price.quantize(_EIGHT), "f") if o.executed else "0.00000"


def order_event(
    o: Order,
    *,
    x: str,
    t: int,
    last_qty: Decimal = Decimal(0),
    last_price: Decimal = Decimal(0),
    trade: Trade | None = None,
    notional: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0)),
    expiry_reason: str = "0",
) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE (reference §5.2); ``notional``: the symbol's open (bid, ask) notional."""
    spec = _spec(o.symbol)
    happened = {
        "x": x,
        "X": o.status.value,
        "i": o.order_id,
        "l": spec.fmt_qty(last_qty),
        "z": spec.fmt_qty(o.executed),
        "L": spec.fmt_price(last_price),
        "N": "USDT",
        "n": money(trade.commission) if trade else "0",
        "T": t,
        "t": trade.trade_id if trade else 0,
        "b": num(notional[0]),
        "a": num(notional[1]),
        "m": trade.maker if trade else False,
    }
    body = _order_event_head(o, spec) | happened | _order_event_tail(o, trade, expiry_reason)
    return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": body}


def _order_event_head(o: Order, spec: SymbolSpec) -> dict[str, Any]:
    """The order as placed: the keys before what happened to it."""
    return {
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side.value,
        "o": o.type,
        "f": o.time_in_force,
        "q": spec.fmt_qty(o.quantity),
        "p": spec.fmt_price(o.price),
        "ap": num(o.avg_price) if o.executed else "0",
        "sp": spec.fmt_price(o.stop_price),
    }


def _order_event_tail(o: Order, trade: Trade | None, expiry_reason: str) -> dict[str, Any]:
    """The order's flags and the fill's realized PnL: the keys after what happened."""
    return {
        "R": o.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": o.orig_type,
        "ps": o.position_side.value,
        "cp": o.close_position,
        "pP": False,
        "si": 0,
        "ss": 0,
        "rp": money(trade.realized_pnl) if trade else "0",
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": 0,
        "er": expiry_reason,
    }


# --- algo orders ------------------------------------------------------------------------------


def algo_response(a: Algo, kind: Literal["new", "query", "open", "all"]) -> dict[str, Any]:
    """One algo order: ``new`` (POST), ``query`` (GET algoOrder), ``open`` (openAlgoOrders) and
    ``all`` (allAlgoOrders). The lists keep the tp*/sl* fields and have no actualType/actualQty;
    the single query has them the other way round (SDK models, fixtures of both)."""
    spec = _spec(a.symbol)
    body = _algo_head(a, spec) | _algo_actual(a, spec, kind)
    body |= {"triggerPrice": spec.fmt_price(a.trigger_price), "price": "0", "icebergQuantity": None}
    if kind in ("open", "all"):
        body |= {"tpTriggerPrice": "0", "tpPrice": "0", "slTriggerPrice": "0", "slPrice": "0"}
    if kind != "new":
        body["tpOrderType"] = ""
    body |= {
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": a.working_type,
        "priceMatch": "NONE",
        "closePosition": a.close_position,
        "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only,
    }
    if kind == "new":  # the SDK's other algo models have no trailing fields
        body |= _trailing_fields(a, spec)
    times = {"createTime": a.create_time, "updateTime": a.update_time, "triggerTime": a.trigger_time}
    return body | times | {"goodTillDate": 0}


def _trailing_fields(a: Algo, spec: SymbolSpec) -> dict[str, Any]:
    """activatePrice and callbackRate (percent, one decimal) of a trailing stop; "" otherwise."""
    if not a.is_trailing:
        return {"activatePrice": "", "callbackRate": ""}
    rate = format(a.callback_rate.quantize(_TENTH), "f")
    return {"activatePrice": spec.fmt_price(a.activate_price), "callbackRate": rate}


def _algo_head(a: Algo, spec: SymbolSpec) -> dict[str, Any]:
    """The keys every algo-order answer starts with."""
    return {
        "algoId": a.algo_id,
        "clientAlgoId": a.client_id,
        "algoType": "CONDITIONAL",
        "orderType": a.order_type,
        "symbol": a.symbol,
        "side": a.side.value,
        "positionSide": a.position_side.value,
        "timeInForce": a.time_in_force,
        "quantity": spec.fmt_qty(a.quantity),
        "algoStatus": a.status.value,
    }


def _algo_actual(a: Algo, spec: SymbolSpec, kind: str) -> dict[str, Any]:
    """The child order of a fired algo order: none in the POST answer, its type and quantity
    only in the single query."""
    if kind == "new":
        return {}
    actual = {
        "actualOrderId": str(a.actual_order_id) if a.actual_order_id else "",
        "actualPrice": spec.fmt_price(a.actual_price) if a.actual_price else "0.00000",
    }
    if kind == "query":
        actual |= {"actualType": "MARKET" if a.actual_order_id else "", "actualQty": spec.fmt_qty(a.actual_qty)}
    return actual


def algo_event(a: Algo, t: int) -> dict[str, Any]:
    """ALGO_UPDATE (reference §5.3): ``ai`` is a string, "" until triggered; a trailing stop
    adds ``ia`` (the SDK's model has no activation price or callback rate)."""
    spec = _spec(a.symbol)
    body: dict[str, Any] = {
        "caid": a.client_id,
        "aid": a.algo_id,
        "at": "CONDITIONAL",
        "o": a.order_type,
        "s": a.symbol,
        "S": a.side.value,
        "ps": a.position_side.value,
        "f": a.time_in_force,
        "q": spec.fmt_qty(a.quantity),
        "X": a.status.value,
        "ai": str(a.actual_order_id) if a.actual_order_id else "",
        "ap": spec.fmt_price(a.actual_price) if a.actual_price else "0",
        "aq": spec.fmt_qty(a.actual_qty),
        "act": "MARKET" if a.actual_order_id else "0",
        "tp": spec.fmt_price(a.trigger_price),
        "p": "0",
        "V": "EXPIRE_MAKER",
        "wt": a.working_type,
        "pm": "NONE",
        "cp": a.close_position,
        "pP": a.price_protect,
        "R": a.reduce_only,
        "tt": a.trigger_time,
        "gtd": 0,
    }
    if a.reason:
        body["rm"] = a.reason
    if a.is_trailing:  # is-activated: NEW with false at placement, NEW with true on activation
        body["ia"] = a.activated
    return {"e": "ALGO_UPDATE", "T": t, "E": t, "o": body}


def algo_cancel_response(a: Algo) -> dict[str, Any]:
    return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200", "msg": "success"}
