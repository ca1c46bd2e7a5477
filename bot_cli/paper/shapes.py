"""Binance's wire shapes, built from the paper records (REST answers and user-stream events).

Key sets follow the reference fixtures (copied in ``tests/fixtures/binance``): numbers are
strings, ids and times ints, ``ai``/``actualOrderId`` strings. The new-order and cancel answers
have no ``avgPrice``/``cumQuote`` (the 2026 shape); the query answer has them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from bot_cli.paper import leverage
from bot_cli.paper.leverage import Setting
from bot_cli.paper.market import SYMBOLS, SymbolSpec
from bot_cli.paper.records import Algo, Order, Position, Trade

_EIGHT = Decimal("0.00000001")
PERCENT_UP, PERCENT_DOWN = Decimal("1.1500"), Decimal("0.8500")  # PERCENT_PRICE vs the mark


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
    """One order: ``new`` (ACK), ``result`` (RESULT), ``cancel``, ``query`` (GET order, open
    orders), ``all`` (GET allOrders)."""
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
    """What the RESULT and query shapes add to the keys every order shape has."""
    if kind == "result":
        # ccxt reads the fill price of a RESULT answer from avgPrice (the SDK's 2026 model has no
        # avgPrice/cumQuote: extra keys it keeps aside); an ACK answer stays the SDK shape.
        return {"avgPrice": _avg(o), "cumQuote": num(o.cum_quote)}
    if kind not in ("query", "all"):
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
    body = {
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side.value,
        "o": o.type,
        "f": o.time_in_force,
        "q": spec.fmt_qty(o.quantity),
        "p": spec.fmt_price(o.price),
        "ap": num(o.avg_price) if o.executed else "0",
        "sp": spec.fmt_price(o.stop_price),
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
    return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": body}


# --- algo orders ------------------------------------------------------------------------------


def algo_response(a: Algo, kind: Literal["new", "query", "open", "all"]) -> dict[str, Any]:
    """One algo order: ``new`` (POST), ``query`` (GET algoOrder), ``open`` (openAlgoOrders) and
    ``all`` (allAlgoOrders). The lists keep the tp*/sl* fields and have no actualType/actualQty;
    the single query has them the other way round (SDK models, fixtures of both)."""
    spec = _spec(a.symbol)
    body: dict[str, Any] = {
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
    if kind != "new":
        body["actualOrderId"] = str(a.actual_order_id) if a.actual_order_id else ""
        body["actualPrice"] = spec.fmt_price(a.actual_price) if a.actual_price else "0.00000"
    if kind == "query":
        body["actualType"] = "MARKET" if a.actual_order_id else ""
        body["actualQty"] = spec.fmt_qty(a.actual_qty)
    body.update(triggerPrice=spec.fmt_price(a.trigger_price), price="0", icebergQuantity=None)
    if kind in ("open", "all"):
        body.update(tpTriggerPrice="0", tpPrice="0", slTriggerPrice="0", slPrice="0")
    if kind != "new":
        body["tpOrderType"] = ""
    body.update(
        selfTradePreventionMode="EXPIRE_MAKER",
        workingType=a.working_type,
        priceMatch="NONE",
        closePosition=a.close_position,
        priceProtect=a.price_protect,
        reduceOnly=a.reduce_only,
    )
    if kind == "new":
        body.update(activatePrice="", callbackRate="")
    body.update(
        createTime=a.create_time, updateTime=a.update_time, triggerTime=a.trigger_time,
        goodTillDate=0,
    )  # fmt: skip
    return body


def algo_event(a: Algo, t: int) -> dict[str, Any]:
    """ALGO_UPDATE (reference §5.3): ``ai`` is a string, "" until triggered."""
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
    return {"e": "ALGO_UPDATE", "T": t, "E": t, "o": body}


def algo_cancel_response(a: Algo) -> dict[str, Any]:
    return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200", "msg": "success"}


# --- account ----------------------------------------------------------------------------------


def account_event(
    balance: Decimal,
    change: Decimal,
    positions: list[tuple[Position, Decimal, Setting]],
    t: int,
    *,
    reason: str = "ORDER",
) -> dict[str, Any]:
    """ACCOUNT_UPDATE; ``positions`` pairs each changed position with its mark and settings."""
    rows = [
        {
            "s": p.symbol,
            "pa": _spec(p.symbol).fmt_qty(p.amount),
            "ep": num(p.entry_price),
            "bep": num(p.entry_price),
            "cr": money(p.realized),
            "up": money(unrealized(p, mark)),
            "mt": setting.margin_type,
            "iw": money(isolated_wallet(p, setting)) if setting.isolated else "0",
            "ps": p.position_side.value,
        }
        for p, mark, setting in positions
    ]
    wallet = money(balance)
    moved = money(change) if reason != "ORDER" else "0"  # bc: a change other than trading
    b = [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": moved}]
    return {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {"m": reason, "B": b, "P": rows}}


def config_event(symbol: str, leverage: int, t: int) -> dict[str, Any]:
    """ACCOUNT_CONFIG_UPDATE: a symbol's leverage changed."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": t, "T": t, "ac": {"s": symbol, "l": leverage}}


def unrealized(p: Position, mark: Decimal) -> Decimal:
    return (mark - p.entry_price) * p.amount if p.amount else Decimal(0)


def isolated_wallet(p: Position, setting: Setting) -> Decimal:
    """The margin an isolated position was opened with (the venue never adds or removes any)."""
    return abs(p.amount) * p.entry_price / setting.leverage


def position_v3(
    p: Position, mark: Decimal, notional: tuple[Decimal, Decimal], setting: Setting
) -> dict[str, Any]:
    value = p.amount * mark
    margin = abs(value) / setting.leverage
    wallet = isolated_wallet(p, setting) if setting.isolated else Decimal(0)
    upnl = unrealized(p, mark)
    return {
        "symbol": p.symbol,
        "positionSide": p.position_side.value,
        "positionAmt": _spec(p.symbol).fmt_qty(p.amount),
        "entryPrice": num(p.entry_price),
        "breakEvenPrice": num(p.entry_price),
        "markPrice": money(mark),
        "unRealizedProfit": money(upnl),
        "liquidationPrice": "0",
        "isolatedMargin": money(wallet + upnl) if setting.isolated else "0",
        "notional": money(value),
        "marginAsset": "USDT",
        "isolatedWallet": money(wallet) if setting.isolated else "0",
        "initialMargin": money(margin),
        "maintMargin": money(leverage.maint_margin(p.symbol, abs(value))),
        "positionInitialMargin": money(margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": num(notional[0]),
        "askNotional": num(notional[1]),
        "updateTime": p.update_time,
    }


def position_v2(p: Position, mark: Decimal, setting: Setting) -> dict[str, Any]:
    wallet = isolated_wallet(p, setting) if setting.isolated else Decimal(0)
    return {
        "entryPrice": num(p.entry_price),
        "breakEvenPrice": num(p.entry_price),
        "marginType": setting.margin_type,
        "isAutoAddMargin": "false",
        "isolatedMargin": money(wallet + unrealized(p, mark) if setting.isolated else wallet),
        "leverage": str(setting.leverage),
        "liquidationPrice": "0",
        "markPrice": money(mark),
        "maxNotionalValue": str(leverage.max_notional(p.symbol, setting.leverage)),
        "positionAmt": _spec(p.symbol).fmt_qty(p.amount),
        "notional": money(p.amount * mark),
        "isolatedWallet": money(wallet) if setting.isolated else "0",
        "symbol": p.symbol,
        "unRealizedProfit": money(unrealized(p, mark)),
        "positionSide": p.position_side.value,
        "updateTime": p.update_time,
    }


def user_trade(tr: Trade) -> dict[str, Any]:
    spec = _spec(tr.symbol)
    return {
        "buyer": tr.side.value == "BUY",
        "commission": money(tr.commission),
        "commissionAsset": "USDT",
        "id": tr.trade_id,
        "maker": tr.maker,
        "orderId": tr.order_id,
        "price": spec.fmt_price(tr.price),
        "qty": spec.fmt_qty(tr.qty),
        "quoteQty": num(tr.price * tr.qty),
        "baseQty": spec.fmt_qty(tr.qty),
        "marginAsset": "USDT",
        "realizedPnl": money(tr.realized_pnl),
        "side": tr.side.value,
        "positionSide": tr.position_side.value,
        "symbol": tr.symbol,
        "pair": tr.symbol,
        "time": tr.time,
    }


# --- market data ------------------------------------------------------------------------------

FUNDING_RATE = "0.00010000"  # the paper venue charges no funding; this is the usual 0.01 %
INTEREST_RATE = "0.00010000"
FUNDING_PERIOD_MS = 8 * 3600 * 1000  # funding settles at 00:00, 08:00 and 16:00 UTC


def premium_index(symbol: str, mark: Decimal, now: int) -> dict[str, Any]:
    """GET /fapi/v1/premiumIndex for one symbol; with no index feed, index = mark."""
    price = money(mark)  # eight decimals, as Binance prints it
    return {
        "symbol": symbol,
        "markPrice": price,
        "indexPrice": price,
        "estimatedSettlePrice": price,
        "lastFundingRate": FUNDING_RATE,
        "interestRate": INTEREST_RATE,
        "nextFundingTime": (now // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS,
        "time": now,
    }
