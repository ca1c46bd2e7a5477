"""Binance USDⓈ-M user-stream events: their typed shapes, and their one translation into core values.

``parse_stream_message`` reads one frame, raw or wrapped as ``{"stream": .., "data": ..}``; events
we do not act on become ``Ignored``. Each field is checked (``bot_cli.exchange.wire.fields``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NotRequired, TypedDict

from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId, OrderReport, OrderStatus, PositionSide
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


def parse_stream_message(raw: str | bytes) -> StreamMessage:
    """One user-stream frame, raw or wrapped as ``{"stream": .., "data": ..}``."""
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise WireError(f"stream message: not JSON: {exc}") from None
    m = obj(data, "stream message")
    if "stream" in m and "data" in m:
        m = obj(m["data"], "stream message data")
    if "e" not in m and "id" in m:
        return Ignored("response")  # the answer to a SUBSCRIBE request, not an event
    event_type = text(m, "e", "stream message")
    parser = _STREAM_PARSERS.get(event_type)
    return parser(m) if parser is not None else Ignored(event_type)


def _order_update(m: Mapping[str, object]) -> OrderUpdate:
    w = "ORDER_TRADE_UPDATE.o"
    o = obj(field(m, "o", "ORDER_TRADE_UPDATE"), w)
    report = OrderReport(
        symbol=text(o, "s", w),
        client_id=ClientId(text(o, "c", w)),
        order_id=integer(o, "i", w),
        status=member(OrderStatus, o, "X", w),
        filled_qty=dec(o, "z", w),
        avg_price=price_or_none(dec(o, "ap", w)),
        quantity=dec(o, "q", w),
    )
    return OrderUpdate(
        event_time=integer(m, "E", "ORDER_TRADE_UPDATE"),
        report=report,
        last_qty=dec(o, "l", w),
        last_price=dec(o, "L", w),
        execution_type=text(o, "x", w),
    )


def _algo_update(m: Mapping[str, object]) -> AlgoUpdate:
    w = "ALGO_UPDATE.o"
    o = obj(field(m, "o", "ALGO_UPDATE"), w)
    report = AlgoReport(
        symbol=text(o, "s", w),
        client_id=ClientId(text(o, "caid", w)),
        algo_id=integer(o, "aid", w),
        status=member(AlgoStatus, o, "X", w),
        trigger_price=dec(o, "tp", w),
        quantity=dec(o, "q", w),
        actual_order_id=opt_id(o, "ai", w),
        executed_qty=opt_dec(o, "aq", w),
        avg_price=opt_price(o, "ap", w),
    )
    reason = text(o, "rm", w) if "rm" in o else ""  # rm is only sent with a failure
    # The docs swap T and E labels for this event; the SDK model says E is event time.
    return AlgoUpdate(integer(m, "E", "ALGO_UPDATE"), report, reason)


def _account_update(m: Mapping[str, object]) -> AccountUpdate:
    w = "ACCOUNT_UPDATE.a.P"
    a = obj(field(m, "a", "ACCOUNT_UPDATE"), "ACCOUNT_UPDATE.a")
    positions: Positions = {}
    for row in as_list(a["P"], w) if "P" in a else []:
        p = obj(row, w)
        positions[(text(p, "s", w), member(PositionSide, p, "ps", w))] = dec(p, "pa", w)
    return AccountUpdate(integer(m, "E", "ACCOUNT_UPDATE"), positions)


def _listen_key_expired(m: Mapping[str, object]) -> ListenKeyExpired:
    return ListenKeyExpired(integer(m, "E", "listenKeyExpired"))


_STREAM_PARSERS: dict[str, Callable[[Mapping[str, object]], StreamMessage]] = {
    "ORDER_TRADE_UPDATE": _order_update,
    "ALGO_UPDATE": _algo_update,
    "ACCOUNT_UPDATE": _account_update,
    "listenKeyExpired": _listen_key_expired,
}
