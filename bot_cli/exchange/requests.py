"""The requests BinanceRest sends, as values: an endpoint and its parameters, in order (pure).

BinanceRest builds every request here and sends it; ``bot recover --dry-run`` prints the
same values. What is shown is what is sent. A ``Request`` holds the unsigned parameters:
for a SIGNED endpoint the client appends ``recvWindow``, ``timestamp`` and ``signature``
when it sends.

Rules kept here (Binance USDⓈ-M "New Order" and "New Algo Order"):

* ``positionSide`` is LONG or SHORT in hedge mode and left out (BOTH) in one-way mode.
  A side that does not fit the mode would be -4061, so the builder raises ``Rejected``
  and nothing is sent.
* Hedge mode forbids ``reduceOnly`` (the position side does its job), so closes and
  protections carry ``reduceOnly=true`` in one-way mode only.
* A LIMIT entry carries price and ``timeInForce=GTC``. A MARKET entry has neither, and a
  LIMIT entry without a price is refused.
* Protections are CONDITIONAL algo orders triggered on the mark price, named by ``clientAlgoId``.
* Orders answer ACK (``newOrderRespType``): the fill arrives on the user stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, Leg, OrderType, PositionSide, Side
from bot_cli.exchange import endpoints as api
from bot_cli.exchange.endpoints import Endpoint
from bot_cli.exchange.signing import encode_params
from bot_cli.venue import Rejected


__all__ = [
    "Request",
    "algo_order",
    "cancel_algo",
    "cancel_order",
    "close",
    "countdown_cancel_all",
    "exchange_info",
    "for_command",
    "keepalive_listen_key",
    "mark_price",
    "new_entry",
    "new_listen_key",
    "new_protection",
    "open_algo_orders",
    "open_orders",
    "order",
    "position_mode",
    "position_risk",
    "query_algo",
    "query_order",
    "server_time",
    "trigger_at",
    "user_trades",
]

Params = tuple[tuple[str, str], ...]

_ALGO_TYPE = {Leg.SL: "STOP_MARKET", Leg.TP: "TAKE_PROFIT_MARKET"}


@dataclass(frozen=True, slots=True)
class Request:
    """One REST request before signing: the endpoint and its parameters in the order sent."""

    endpoint: Endpoint
    params: Params = ()

    @property
    def query(self) -> str:
        """The query string exactly as sent, before any recvWindow, timestamp or signature."""
        return encode_params(self.params)

    @property
    def text(self) -> str:
        """One line: method, path and query, e.g. ``GET /fapi/v1/order symbol=BTCUSDT&...``."""
        line = f"{self.endpoint.method} {self.endpoint.path}"
        return f"{line} {self.query}" if self.params else line


def _num(value: Decimal) -> str:
    """A Decimal as Binance wants it: plain digits, never an exponent."""
    return format(value, "f")


def _side(side: PositionSide, hedge_mode: bool, what: str) -> Params:
    """positionSide: mandatory LONG/SHORT in hedge mode, omitted (BOTH) in one-way mode."""
    if hedge_mode:
        if side is PositionSide.BOTH:
            raise Rejected(f"{what}: hedge mode needs positionSide LONG or SHORT")
        return (("positionSide", side.value),)
    if side is not PositionSide.BOTH:
        raise Rejected(f"{what}: one-way mode has no {side.value} position side")
    return ()


def _reduce_only(hedge_mode: bool) -> Params:
    """reduceOnly=true in one-way mode; hedge mode forbids it (positionSide does the job)."""
    return () if hedge_mode else (("reduceOnly", "true"),)


# --- orders --------------------------------------------------------------------------


def order(
    symbol: str, side: Side, quantity: Decimal, client_id: str, *, position_side: PositionSide, hedge_mode: bool,
    price: Decimal | None = None, reduce: bool = False, what: str = "",
) -> Request:
    """POST /fapi/v1/order: a LIMIT (GTC) at ``price``, else a MARKET; ``reduce`` only reduces;
    answered with an ACK (the fill arrives on the user stream)."""
    what = what or f"new order {client_id}"
    priced: Params = (("price", _num(price)), ("timeInForce", "GTC")) if price is not None else ()
    return Request(api.NEW_ORDER, (
        ("symbol", symbol), ("side", side.value), ("type", "LIMIT" if price is not None else "MARKET"),
        *_side(position_side, hedge_mode, what), ("quantity", _num(quantity)), *priced,
        *(_reduce_only(hedge_mode) if reduce else ()), ("newClientOrderId", client_id), ("newOrderRespType", "ACK"),
    ))


def algo_order(
    symbol: str, side: Side, quantity: Decimal, client_id: str, *, kind: str, trigger: Params,
    position_side: PositionSide, hedge_mode: bool, reduce: bool = True, time_in_force: str = "", what: str = "",
) -> Request:
    """POST /fapi/v1/algoOrder: a CONDITIONAL order of ``kind`` on the mark price, ``trigger`` its
    triggerPrice (or a trailing stop's callbackRate and activatePrice); ``reduce`` as a leg is
    (reduceOnly in one-way mode), ``time_in_force`` e.g. GTE_GTC ("" = the default)."""
    what = what or f"new algo order {client_id}"
    return Request(api.NEW_ALGO, (
        ("algoType", "CONDITIONAL"), ("symbol", symbol), ("side", side.value),
        *_side(position_side, hedge_mode, what), ("type", kind), ("quantity", _num(quantity)),
        *trigger, ("workingType", "MARK_PRICE"), *((("timeInForce", time_in_force),) if time_in_force else ()),
        *(_reduce_only(hedge_mode) if reduce else ()), ("clientAlgoId", client_id),
    ))


def trigger_at(price: Decimal) -> Params:
    """A stop's or take-profit's trigger, as ``algo_order`` takes it."""
    return (("triggerPrice", _num(price)),)


def new_entry(cmd: cm.PlaceEntry, hedge_mode: bool) -> Request:
    """POST /fapi/v1/order: the LIMIT (GTC) or MARKET entry, answered with an ACK."""
    if cmd.order_type is OrderType.LIMIT and cmd.price is None:
        raise Rejected(f"new order {cmd.client_id}: a LIMIT order needs a price")
    price = cmd.price if cmd.order_type is OrderType.LIMIT else None
    return order(cmd.symbol, cmd.side, cmd.quantity, cmd.client_id, position_side=cmd.position_side,
                 hedge_mode=hedge_mode, price=price)  # fmt: skip


def new_protection(cmd: cm.PlaceProtection, hedge_mode: bool) -> Request:
    """POST /fapi/v1/algoOrder: a CONDITIONAL STOP_MARKET (SL), TAKE_PROFIT_MARKET (TP), or a
    TRAILING_STOP_MARKET (TRAIL: ``callbackRate`` in percent, ``activatePrice`` when it activates
    later; it has no triggerPrice)."""
    what = f"new algo order {cmd.client_id}"
    if cmd.leg is Leg.TRAIL:
        if cmd.trail is None:
            raise Rejected(f"{what}: a trailing stop needs its callback rate")
        trigger: Params = (("callbackRate", _num(cmd.trail.callback_pct)),)
        if cmd.trigger_price > 0:
            trigger += (("activatePrice", _num(cmd.trigger_price)),)
        kind = "TRAILING_STOP_MARKET"
    elif cmd.leg in _ALGO_TYPE:
        trigger, kind = trigger_at(cmd.trigger_price), _ALGO_TYPE[cmd.leg]
    else:
        raise Rejected(f"{what}: leg {cmd.leg.name} is not a protection")
    return algo_order(cmd.symbol, cmd.side, cmd.quantity, cmd.client_id, kind=kind, trigger=trigger,
                      position_side=cmd.position_side, hedge_mode=hedge_mode)  # fmt: skip


def close(cmd: cm.ClosePosition, hedge_mode: bool) -> Request:
    """POST /fapi/v1/order: a MARKET order that only reduces (positionSide in hedge mode)."""
    return order(cmd.symbol, cmd.side, cmd.quantity, cmd.client_id, position_side=cmd.position_side,
                 hedge_mode=hedge_mode, reduce=True, what=f"close order {cmd.client_id}")  # fmt: skip


def cancel_order(symbol: str, client_id: ClientId) -> Request:
    """DELETE /fapi/v1/order by our client id (its answer holds the final executedQty)."""
    return Request(api.CANCEL_ORDER, (("symbol", symbol), ("origClientOrderId", client_id)))


def cancel_algo(client_id: ClientId) -> Request:
    """DELETE /fapi/v1/algoOrder by clientAlgoId: the endpoint takes no symbol."""
    return Request(api.CANCEL_ALGO, (("clientAlgoId", client_id),))


def query_order(symbol: str, client_id: ClientId) -> Request:
    return Request(api.QUERY_ORDER, (("symbol", symbol), ("origClientOrderId", client_id)))


def query_algo(client_id: ClientId) -> Request:
    return Request(api.QUERY_ALGO, (("clientAlgoId", client_id),))


def countdown_cancel_all(symbol: str, countdown_ms: int) -> Request:
    """POST /fapi/v1/countdownCancelAll: the symbol's open regular orders are cancelled
    ``countdown_ms`` from now unless this is sent again; 0 turns the countdown off."""
    return Request(api.COUNTDOWN_CANCEL_ALL, (("symbol", symbol), ("countdownTime", str(countdown_ms))))


# --- reads ---------------------------------------------------------------------------


def open_orders(symbol: str | None = None) -> Request:
    """GET /fapi/v1/openOrders: weight 1 for one symbol, 40 for all."""
    return Request(api.OPEN_ORDERS) if symbol is None else Request(api.OPEN_ORDERS_OF, (("symbol", symbol),))


def open_algo_orders(symbol: str | None = None) -> Request:
    """GET /fapi/v1/openAlgoOrders: weight 1 for one symbol, 40 for all."""
    return Request(api.OPEN_ALGOS) if symbol is None else Request(api.OPEN_ALGOS_OF, (("symbol", symbol),))


def position_risk() -> Request:
    """GET /fapi/v3/positionRisk of every symbol: one read serves every entry's position."""
    return Request(api.POSITION_RISK)


def mark_price(symbol: str) -> Request:
    """GET /fapi/v1/premiumIndex?symbol=: the price our SL/TP triggers watch."""
    return Request(api.MARK_PRICE, (("symbol", symbol),))


def user_trades(symbol: str, order_id: int) -> Request:
    return Request(api.USER_TRADES, (("symbol", symbol), ("orderId", str(order_id))))


def exchange_info() -> Request:
    return Request(api.EXCHANGE_INFO)


def position_mode() -> Request:
    return Request(api.POSITION_MODE)


def server_time() -> Request:
    return Request(api.TIME)


def new_listen_key() -> Request:
    return Request(api.LISTEN_KEY_NEW)


def keepalive_listen_key() -> Request:
    return Request(api.LISTEN_KEY_KEEPALIVE)


# --- the core's commands -------------------------------------------------------------


def for_command(cmd: cm.Command, hedge_mode: bool) -> Request | None:
    """The request ``runtime.executor`` sends first for ``cmd``; None for a local action.

    Raises ``Rejected`` where the builder refuses (the executor's send would refuse the same).
    """
    if isinstance(cmd, cm.PlaceEntry):
        return new_entry(cmd, hedge_mode)
    if isinstance(cmd, cm.PlaceProtection):
        return new_protection(cmd, hedge_mode)
    if isinstance(cmd, cm.ClosePosition):
        return close(cmd, hedge_mode)
    if isinstance(cmd, cm.CancelProtection):
        return cancel_algo(cmd.client_id)
    if isinstance(cmd, cm.CancelEntry):  # the executor queries it if it is no longer open
        return cancel_order(cmd.symbol, cmd.client_id)
    if isinstance(cmd, cm.QueryEntry | cm.QueryClose):
        return query_order(cmd.symbol, cmd.client_id)
    if isinstance(cmd, cm.QueryProtection):
        return query_algo(cmd.client_id)
    if isinstance(cmd, cm.QueryPosition):  # every symbol's: the executor picks its own
        return position_risk()
    return None
