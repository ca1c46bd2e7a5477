"""exchange.requests: every request BinanceRest sends, as a value; and `bot recover --dry-run`
shows exactly the request the executor's call sends (what is shown is what is sent)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal as D

import httpx
import pytest

from bot_cli.cli.calls import describe
from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, Leg, Millis, PositionSide, Status
from bot_cli.exchange import endpoints as api
from bot_cli.exchange import requests as rq
from bot_cli.exchange.rest import BinanceRest
from bot_cli.runtime.executor import SENDS
from bot_cli.venue import Rejected
from tests.core.helpers import pending
from tests.exchange.test_rest import BASE, CLOSE, ENTRY, KEY, MARKET_ENTRY, PID, SECRET, SL, TP, fixture


LONG, BOTH = PositionSide.LONG, PositionSide.BOTH


# --- the text ----------------------------------------------------------------------------


def test_text_is_the_method_the_path_and_the_query_as_encoded() -> None:
    """One line: method, path and the unsigned query, exactly as signing.encode_params writes it."""
    # Arrange
    request = rq.Request(api.QUERY_ORDER, (("symbol", "BTCUSDT"), ("origClientOrderId", "a/b:c")))

    # Act
    text = request.text

    # Assert
    assert text == "GET /fapi/v1/order symbol=BTCUSDT&origClientOrderId=a%2Fb%3Ac"


def test_a_request_without_parameters_is_its_method_and_path() -> None:
    """No parameters, no query: position risk reads every symbol."""
    assert rq.position_risk().text == "GET /fapi/v3/positionRisk"


# --- entries ------------------------------------------------------------------------------


def test_limit_entry_carries_price_and_good_till_cancel() -> None:
    """LIMIT: price and timeInForce=GTC after the quantity; an ACK answer asked for."""
    # Act
    request = rq.new_entry(ENTRY, hedge_mode=False)

    # Assert
    assert request.endpoint == api.NEW_ORDER
    assert request.params == (
        ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1"),
        ("price", "9000"), ("timeInForce", "GTC"),
        ("newClientOrderId", "bcabc123-e"), ("newOrderRespType", "ACK"),
    )


def test_market_entry_has_neither_price_nor_time_in_force() -> None:
    """MARKET: the quantity, as plain digits, and nothing that prices it."""
    # Act
    params = dict(rq.new_entry(MARKET_ENTRY, hedge_mode=False).params)

    # Assert
    assert (params["type"], params["quantity"]) == ("MARKET", "0.010")
    assert "price" not in params
    assert "timeInForce" not in params


def test_numbers_are_plain_digits_never_an_exponent() -> None:
    """Decimal('1E-3') is sent as 0.001: Binance refuses scientific notation."""
    # Arrange
    cmd = replace(ENTRY, quantity=D("1E-3"), price=D("9E+3"))

    # Act
    params = dict(rq.new_entry(cmd, hedge_mode=False).params)

    # Assert
    assert (params["quantity"], params["price"]) == ("0.001", "9000")


@pytest.mark.parametrize(
    ("hedge_mode", "side", "sent"),
    [
        pytest.param(False, BOTH, None, id="one-way: no positionSide"),
        pytest.param(True, LONG, "LONG", id="hedge: positionSide LONG"),
        pytest.param(True, PositionSide.SHORT, "SHORT", id="hedge: positionSide SHORT"),
    ],
)
def test_entry_names_its_position_side_only_in_hedge_mode(
    hedge_mode: bool, side: PositionSide, sent: str | None
) -> None:
    """An entry never reduces: reduceOnly is never sent; positionSide only in hedge mode."""
    # Act
    params = dict(rq.new_entry(replace(ENTRY, position_side=side), hedge_mode).params)

    # Assert
    assert params.get("positionSide") == sent
    assert "reduceOnly" not in params


# --- protections and closes ------------------------------------------------------------------


def test_stop_loss_is_a_conditional_stop_market_on_the_mark_price() -> None:
    """SL: /fapi/v1/algoOrder, CONDITIONAL STOP_MARKET, MARK_PRICE, reduce-only, clientAlgoId."""
    # Act
    request = rq.new_protection(SL, hedge_mode=False)

    # Assert
    assert request.text == (
        "POST /fapi/v1/algoOrder algoType=CONDITIONAL&symbol=BTCUSDT&side=SELL&type=STOP_MARKET"
        "&quantity=1&triggerPrice=8500.0&workingType=MARK_PRICE&reduceOnly=true&clientAlgoId=bcabc123-sl1"
    )


def test_take_profit_is_take_profit_market() -> None:
    """TP: TAKE_PROFIT_MARKET, its own clientAlgoId."""
    params = dict(rq.new_protection(TP, hedge_mode=False).params)
    assert (params["type"], params["clientAlgoId"]) == ("TAKE_PROFIT_MARKET", "bcabc123-tp1")


def test_close_is_a_reduce_only_market_order() -> None:
    """Close in one-way mode: MARKET, reduceOnly=true, its own client id, an ACK answer."""
    assert rq.close(CLOSE, hedge_mode=False).text == (
        "POST /fapi/v1/order symbol=BTCUSDT&side=SELL&type=MARKET&quantity=1&reduceOnly=true"
        "&newClientOrderId=bcabc123-x1&newOrderRespType=ACK"
    )


@pytest.mark.parametrize("cmd", [pytest.param(SL, id="SL"), pytest.param(TP, id="TP"), pytest.param(CLOSE, id="close")])
@pytest.mark.parametrize(
    ("hedge_mode", "side", "reduce_only", "position_side"),
    [pytest.param(False, BOTH, "true", None, id="one-way"), pytest.param(True, LONG, None, "LONG", id="hedge")],
)
def test_what_reduces_is_reduce_only_in_one_way_mode_and_position_sided_in_hedge_mode(
    cmd: cm.PlaceProtection | cm.ClosePosition, hedge_mode: bool, side: PositionSide,
    reduce_only: str | None, position_side: str | None,
) -> None:
    """Hedge mode forbids reduceOnly (positionSide does its job); one-way mode has no positionSide."""
    # Act
    request = rq.for_command(replace(cmd, position_side=side), hedge_mode)

    # Assert
    assert request is not None
    params = dict(request.params)
    assert (params.get("reduceOnly"), params.get("positionSide")) == (reduce_only, position_side)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(lambda: rq.new_entry(ENTRY, hedge_mode=True),
                     "new order bcabc123-e: hedge mode needs positionSide LONG or SHORT", id="hedge with BOTH"),
        pytest.param(lambda: rq.new_protection(replace(SL, position_side=LONG), hedge_mode=False),
                     "new algo order bcabc123-sl1: one-way mode has no LONG position side", id="one-way with LONG"),
        pytest.param(lambda: rq.close(replace(CLOSE, position_side=LONG), hedge_mode=False),
                     "close order bcabc123-x1: one-way mode has no LONG position side", id="close one-way with LONG"),
        pytest.param(lambda: rq.new_entry(replace(ENTRY, price=None), hedge_mode=False),
                     "new order bcabc123-e: a LIMIT order needs a price", id="LIMIT without price"),
        pytest.param(lambda: rq.new_protection(replace(SL, leg=Leg.ENTRY), hedge_mode=False),
                     "new algo order bcabc123-sl1: leg ENTRY is not a protection", id="entry leg as protection"),
    ],
)
def test_a_request_binance_would_refuse_is_refused_before_it_exists(
    build: Callable[[], rq.Request], message: str
) -> None:
    """A mismatched side (-4061) or a LIMIT without price: Rejected, with the facts, nothing built."""
    # Act
    with pytest.raises(Rejected) as info:
        build()

    # Assert
    assert info.value.message == message


# --- reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "endpoint", "query"),
    [
        pytest.param(rq.open_orders(), api.OPEN_ORDERS, "", id="open orders, every symbol (weight 40)"),
        pytest.param(rq.open_orders("BTCUSDT"), api.OPEN_ORDERS_OF, "symbol=BTCUSDT", id="open orders of one"),
        pytest.param(rq.open_algo_orders(), api.OPEN_ALGOS, "", id="open algo orders, every symbol"),
        pytest.param(rq.open_algo_orders("BTCUSDT"), api.OPEN_ALGOS_OF, "symbol=BTCUSDT", id="algo orders of one"),
        pytest.param(rq.position_risk(), api.POSITION_RISK, "", id="position risk: every symbol"),
        pytest.param(rq.mark_price("BTCUSDT"), api.MARK_PRICE, "symbol=BTCUSDT", id="mark price"),
        pytest.param(rq.query_algo(ClientId("c1")), api.QUERY_ALGO, "clientAlgoId=c1", id="algo: no symbol"),
        pytest.param(rq.cancel_algo(ClientId("c1")), api.CANCEL_ALGO, "clientAlgoId=c1", id="cancel algo"),
        pytest.param(rq.user_trades("BTCUSDT", 7), api.USER_TRADES, "symbol=BTCUSDT&orderId=7", id="user trades"),
    ],
)
def test_each_read_hits_its_endpoint_with_its_parameters(
    request_: rq.Request, endpoint: api.Endpoint, query: str
) -> None:
    """The endpoint (and so its weight) follows from whether a symbol is given."""
    assert (request_.endpoint, request_.query) == (endpoint, query)


@pytest.mark.parametrize(
    "cmd",
    [
        pytest.param(cm.PersistPending(pending(Status.SUBMITTING)), id="persist"),
        pytest.param(cm.ArchivePending(pending(Status.SUBMITTING), "done"), id="archive"),
        pytest.param(cm.ScheduleCheck(PID, Millis(0)), id="schedule a check"),
        pytest.param(cm.Alert(PID, "look"), id="alert"),
    ],
)
def test_local_actions_are_no_request(cmd: cm.Command) -> None:
    """Journal, archive, timers and alerts never reach the exchange."""
    assert rq.for_command(cmd, hedge_mode=False) is None


# --- what is shown is what is sent ------------------------------------------------------------

# The documented answer of each endpoint a command is sent to.
ANSWERS = {
    ("POST", "/fapi/v1/order"): "new_order_response.json",
    ("POST", "/fapi/v1/algoOrder"): "algo_order_response.json",
    ("DELETE", "/fapi/v1/order"): "cancel_order_response.json",
    ("DELETE", "/fapi/v1/algoOrder"): "cancel_algo_order_response.json",
    ("GET", "/fapi/v1/order"): "query_order_response.json",
    ("GET", "/fapi/v1/algoOrder"): "query_algo_order_response.json",
    ("GET", "/fapi/v3/positionRisk"): "position_risk_v3_response.json",
}
SIGNING = frozenset({"recvWindow", "timestamp", "signature"})


def commands(hedge_mode: bool) -> dict[str, cm.Command]:
    """Each command the executor sends, as in one-way mode (BOTH) or hedge mode (LONG)."""
    side = LONG if hedge_mode else BOTH
    cid = ClientId("bcabc123-e")
    return {
        "limit entry": replace(ENTRY, position_side=side),
        "market entry": replace(MARKET_ENTRY, position_side=side),
        "stop-loss": replace(SL, position_side=side),
        "take-profit": replace(TP, position_side=side),
        "close": replace(CLOSE, position_side=side),
        "cancel entry": cm.CancelEntry(PID, "BTCUSDT", cid),
        "cancel protection": cm.CancelProtection(PID, ClientId("bcabc123-sl1")),
        "query entry": cm.QueryEntry(PID, "BTCUSDT", cid),
        "query close": cm.QueryClose(PID, "BTCUSDT", ClientId("bcabc123-x1")),
        "query protection": cm.QueryProtection(PID, ClientId("bcabc123-tp1")),
        "query position": cm.QueryPosition(PID, "BTCUSDT", side),
    }


KINDS = list(commands(hedge_mode=False))


def execute(cmd: cm.Command, hedge_mode: bool) -> list[httpx.Request]:
    """Run ``cmd`` as the runtime does (executor.SENDS) on a real BinanceRest; what it sent."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=fixture(ANSWERS[request.method, request.url.path]))

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            rest = BinanceRest(BASE, KEY, SECRET, client=client, hedge_mode=hedge_mode)
            await SENDS[type(cmd)](rest, cmd)

    asyncio.run(run())
    return sent


def unsigned(request: httpx.Request) -> str:
    """The recorded query without what signing appends, otherwise byte for byte."""
    parts = request.url.query.decode().split("&")
    return "&".join(p for p in parts if p.partition("=")[0] not in SIGNING)


@pytest.mark.parametrize("hedge_mode", [False, True], ids=["one-way", "hedge"])
@pytest.mark.parametrize("kind", KINDS)
def test_what_is_shown_is_what_is_sent(kind: str, hedge_mode: bool) -> None:
    """The dry-run's line for a command is the request its execution sends, signing aside."""
    # Arrange
    cmd = commands(hedge_mode)[kind]
    shown = rq.for_command(cmd, hedge_mode)
    assert shown is not None

    # Act
    sent = execute(cmd, hedge_mode)

    # Assert
    assert len(sent) == 1
    assert (sent[0].method, sent[0].url.path, unsigned(sent[0])) == (
        shown.endpoint.method, shown.endpoint.path, shown.query)
    assert describe(cmd, hedge_mode=hedge_mode) == shown.text


def test_every_command_the_executor_sends_is_covered() -> None:
    """A new command kind in the executor needs a row above (and a request in for_command)."""
    covered = {type(cmd) for cmd in commands(hedge_mode=False).values()}
    assert covered == set(SENDS)
