"""BinanceRest against respx: signing, request shapes, and every error class mapped at the edge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    Leg,
    OrderReport,
    OrderStatus,
    OrderType,
    PendingId,
    PositionSide,
    Side,
)
from bot_cli.exchange import endpoints
from bot_cli.exchange.endpoints import Endpoint
from bot_cli.exchange.rest import BinanceRest
from bot_cli.exchange.signing import sign
from bot_cli.exchange.wire import UserTrade
from bot_cli.venue import (
    AuthFailed,
    Duplicate,
    NotFound,
    OutcomeUnknown,
    Positions,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
    WouldTrigger,
)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "binance"
VECTORS = json.loads((FIXTURES / "hmac_signature_vectors.json").read_text())
KEY, SECRET = VECTORS["apiKey"], VECTORS["secretKey"]
BASE = "https://fapi.test"
NOW = 1591702613943  # the official vector's timestamp
PID = PendingId("bc0000000000000")

ENTRY = PlaceEntry(PID, ClientId("bcabc123-e"), "BTCUSDT", Side.BUY, OrderType.LIMIT,
                   D(1), D(9000), PositionSide.BOTH)
MARKET_ENTRY = PlaceEntry(PID, ClientId("bcabc123-e"), "BTCUSDT", Side.BUY, OrderType.MARKET,
                          D("0.010"), None, PositionSide.BOTH)
SL = PlaceProtection(PID, ClientId("bcabc123-sl1"), Leg.SL, "BTCUSDT", Side.SELL,
                     D(1), D("8500.0"), PositionSide.BOTH)
TP = PlaceProtection(PID, ClientId("bcabc123-tp1"), Leg.TP, "BTCUSDT", Side.SELL,
                     D(1), D("9900.0"), PositionSide.BOTH)
CLOSE = ClosePosition(PID, ClientId("bcabc123-x1"), "BTCUSDT", Side.SELL, D(1),
                      PositionSide.BOTH)


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


ORDER_ACK = fixture("new_order_response.json")
ALGO_ACK = fixture("algo_order_response.json")


def error(status: int, code: int, msg: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg}, headers=headers)


@dataclass
class World:
    """A respx router and a settable clock (BinanceRest never sleeps: nothing to inject)."""

    mock: respx.MockRouter
    now: int = NOW
    made: list[BinanceRest] = field(default_factory=list)

    def rest(self, **kw: object) -> BinanceRest:
        clock = lambda: self.now  # noqa: E731
        r = BinanceRest(BASE, KEY, SECRET, clock_ms=clock, **kw)  # type: ignore[arg-type]
        self.made.append(r)
        return r


@pytest.fixture
def world() -> Iterator[World]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        w = World(mock)
        yield w
        for r in w.made:
            asyncio.run(r.aclose())


T = TypeVar("T")
E = TypeVar("E", bound=VenueError)
Call = Callable[[BinanceRest], Coroutine[Any, Any, object]]  # one request of a parametrized test


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def raises(exc_type: type[E], coro: Coroutine[Any, Any, object]) -> E:
    with pytest.raises(exc_type) as info:
        run(coro)
    return info.value


def sent(route: respx.Route, i: int = -1) -> dict[str, str]:
    return dict(parse_qsl(route.calls[i].request.url.query.decode()))


def query(route: respx.Route, i: int = -1) -> str:
    return str(route.calls[i].request.url.query.decode())


# --- signing ---------------------------------------------------------------------------


def test_signed_query_reproduces_the_official_vector(world: World) -> None:
    """With the docs' clock, params and key, the query is the published payload + signature."""
    params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1"),
              ("price", "9000"), ("timeInForce", "GTC")]
    v1 = VECTORS["vectors"][0]
    assert world.rest().signed_query(params) == f"{v1['payload']}&signature={v1['signature']}"


def test_place_entry_sends_exactly_the_signed_query_and_no_body(world: World) -> None:
    """All params in the query, recvWindow+timestamp appended, signature last, key header."""
    route = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    run(world.rest().place_entry(ENTRY))
    payload = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        "&newClientOrderId=bcabc123-e&newOrderRespType=ACK&recvWindow=5000&timestamp=1591702613943"
    )
    request = route.calls.last.request
    assert query(route) == f"{payload}&signature={sign(SECRET, payload)}"
    assert request.headers["X-MBX-APIKEY"] == KEY
    assert request.content == b""


def test_place_entry_returns_the_parsed_ack(world: World) -> None:
    """The ACK answer becomes an OrderReport."""
    world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    report = run(world.rest().place_entry(ENTRY))
    assert (report.order_id, report.status, report.avg_price) == (22542179, OrderStatus.NEW, None)


def test_market_entry_sends_no_price_and_no_time_in_force(world: World) -> None:
    """MARKET needs only the quantity."""
    route = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    run(world.rest().place_entry(MARKET_ENTRY))
    params = sent(route)
    assert (params["type"], params["quantity"]) == ("MARKET", "0.010")
    assert "price" not in params
    assert "timeInForce" not in params
    assert "positionSide" not in params
    assert "reduceOnly" not in params


def test_sync_time_offsets_later_timestamps(world: World) -> None:
    """sync_time sets the offset from /fapi/v1/time; signed requests use clock + offset."""
    world.mock.get("/fapi/v1/time").respond(200, json={"serverTime": NOW + 1234})
    route = world.mock.get("/fapi/v1/order").respond(200, json=fixture("query_order_response.json"))
    rest = world.rest()

    async def scenario() -> None:
        await rest.sync_time()
        await rest.query_order("BTCUSDT", ClientId("abc"))

    run(scenario())
    assert rest.time_offset_ms == 1234
    assert sent(route)["timestamp"] == str(NOW + 1234)


# --- request shapes --------------------------------------------------------------------


def test_place_protection_is_a_conditional_algo_order_never_a_plain_order(world: World) -> None:
    """SL: /fapi/v1/algoOrder, CONDITIONAL STOP_MARKET, triggerPrice, clientAlgoId, reduceOnly."""
    algo = world.mock.post("/fapi/v1/algoOrder").respond(json=ALGO_ACK)
    plain = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    report = run(world.rest().place_protection(SL))
    assert sent(algo) == {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "quantity": "1", "triggerPrice": "8500.0", "workingType": "MARK_PRICE",
        "reduceOnly": "true", "clientAlgoId": "bcabc123-sl1", "recvWindow": "5000",
        "timestamp": str(NOW), "signature": sent(algo)["signature"],
    }
    assert "stopPrice" not in sent(algo)
    assert "newClientOrderId" not in sent(algo)
    assert plain.call_count == 0
    assert report.status is AlgoStatus.NEW


def test_take_profit_is_take_profit_market(world: World) -> None:
    """TP is TAKE_PROFIT_MARKET."""
    algo = world.mock.post("/fapi/v1/algoOrder").respond(json=ALGO_ACK)
    run(world.rest().place_protection(TP))
    assert sent(algo)["type"] == "TAKE_PROFIT_MARKET"
    assert sent(algo)["clientAlgoId"] == "bcabc123-tp1"


def test_hedge_mode_sends_position_side_and_never_reduce_only(world: World) -> None:
    """In hedge mode positionSide is sent on entry, protection and close; reduceOnly never."""
    order = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    algo = world.mock.post("/fapi/v1/algoOrder").respond(json=ALGO_ACK)
    rest = world.rest(hedge_mode=True)
    long = PositionSide.LONG

    async def scenario() -> None:
        await rest.place_entry(replace(ENTRY, position_side=long))
        await rest.place_protection(replace(SL, position_side=long))
        await rest.close_position(replace(CLOSE, position_side=long))

    run(scenario())
    for params in (sent(order, 0), sent(algo), sent(order, 1)):
        assert params["positionSide"] == "LONG"
        assert "reduceOnly" not in params


def test_close_position_is_a_reduce_only_market_order_in_one_way_mode(world: World) -> None:
    """close_position: MARKET, reduceOnly=true, its own client id."""
    route = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    run(world.rest().close_position(CLOSE))
    params = sent(route)
    assert (params["type"], params["side"], params["reduceOnly"]) == ("MARKET", "SELL", "true")
    assert params["newClientOrderId"] == "bcabc123-x1"
    assert "positionSide" not in params


@pytest.mark.parametrize(
    ("hedge", "side"), [(True, PositionSide.BOTH), (False, PositionSide.LONG)],
    ids=["hedge with BOTH", "one-way with LONG"],
)
def test_position_side_that_does_not_fit_the_mode_is_refused_before_sending(
    world: World, hedge: bool, side: PositionSide
) -> None:
    """A mismatched position side would be -4061: refuse locally, send nothing."""
    route = world.mock.post("/fapi/v1/algoOrder").respond(json=ALGO_ACK)
    cmd = replace(SL, position_side=side)
    raises(Rejected, world.rest(hedge_mode=hedge).place_protection(cmd))
    assert route.call_count == 0


def test_limit_entry_without_price_is_refused_before_sending(world: World) -> None:
    """A LIMIT entry needs a price."""
    route = world.mock.post("/fapi/v1/order").respond(json=ORDER_ACK)
    raises(Rejected, world.rest().place_entry(replace(ENTRY, price=None)))
    assert route.call_count == 0


def test_reads_hit_their_endpoints_without_symbol_and_count_weight(world: World) -> None:
    """openOrders/openAlgoOrders without symbol (weight 40 each), positions via v3."""
    orders = world.mock.get("/fapi/v1/openOrders").respond(
        200, json=fixture("open_orders_response.json"))
    algos = world.mock.get("/fapi/v1/openAlgoOrders").respond(
        200, json=fixture("open_algo_orders_response.json"))
    risk = world.mock.get("/fapi/v3/positionRisk").respond(
        200, json=fixture("position_risk_v3_response.json"))
    rest = world.rest()

    async def scenario() -> tuple[list[OrderReport], list[AlgoReport], Positions]:
        return await rest.open_orders(), await rest.open_algo_orders(), await rest.positions()

    open_orders, open_algos, positions = run(scenario())
    assert "symbol" not in sent(orders)
    assert "symbol" not in sent(algos)
    assert [o.order_id for o in open_orders] == [1917641]
    assert [a.algo_id for a in open_algos] == [2148627]
    assert positions == {("ADAUSDT", PositionSide.BOTH): D(30)}
    assert risk.call_count == 1
    assert (rest.weight_spent, rest.calls) == (85, 3)


def test_query_order_and_query_algo_use_client_ids(world: World) -> None:
    """GET /order by origClientOrderId; GET /algoOrder by clientAlgoId and no symbol."""
    order = world.mock.get("/fapi/v1/order").respond(200, json=fixture("query_order_response.json"))
    algo = world.mock.get("/fapi/v1/algoOrder").respond(
        200, json=fixture("query_algo_order_response.json"))
    rest = world.rest()

    async def scenario() -> tuple[OrderReport, AlgoReport]:
        return await rest.query_order("BTCUSDT", ClientId("abc")), await rest.query_algo(
            ClientId("6B2I9XVcJpCjqPAJ4YoFX7"))

    report, algo_report = run(scenario())
    assert (sent(order)["symbol"], sent(order)["origClientOrderId"]) == ("BTCUSDT", "abc")
    assert sent(algo)["clientAlgoId"] == "6B2I9XVcJpCjqPAJ4YoFX7"
    assert "symbol" not in sent(algo)
    assert (report.order_id, algo_report.status) == (1573346959, AlgoStatus.CANCELED)


def test_cancel_protection_accepts_the_string_200(world: World) -> None:
    """DELETE /fapi/v1/algoOrder by clientAlgoId; its code is the STRING "200"."""
    route = world.mock.delete("/fapi/v1/algoOrder").respond(
        200, json=fixture("cancel_algo_order_response.json"))
    assert run(world.rest().cancel_protection(ClientId("6B2I9XVcJpCjqPAJ4YoFX7"))) is None
    assert sent(route)["clientAlgoId"] == "6B2I9XVcJpCjqPAJ4YoFX7"


@pytest.mark.parametrize("code", [-2011, -2013])
@pytest.mark.parametrize(
    ("path", "call"),
    [("/fapi/v1/algoOrder", lambda r: r.cancel_protection(ClientId("x"))),
     ("/fapi/v1/order", lambda r: r.cancel_order("BTCUSDT", ClientId("x")))],
    ids=["algo", "order"],
)
def test_cancel_of_an_order_no_longer_open_is_not_found(world: World, code: int, path: str, call: Call) -> None:
    """-2011 ("Unknown order sent.") / -2013 on either cancel -> NotFound, sent once."""
    route = world.mock.delete(path).mock(return_value=error(400, code, "Unknown order sent."))
    assert raises(NotFound, call(world.rest())).code == code
    assert route.call_count == 1


CANCELED = fixture("cancel_order_response.json")


def test_cancel_order_deletes_by_client_id(world: World) -> None:
    """DELETE /fapi/v1/order with symbol + origClientOrderId, signed, no orderId."""
    route = world.mock.delete("/fapi/v1/order").respond(200, json=CANCELED)
    run(world.rest().cancel_order("BTCUSDT", ClientId("myOrder1")))
    params = sent(route)
    assert (params["symbol"], params["origClientOrderId"]) == ("BTCUSDT", "myOrder1")
    assert "orderId" not in params
    payload, signature = query(route).rsplit("&signature=", 1)
    assert signature == sign(SECRET, payload)


@pytest.mark.parametrize(("executed", "filled"), [("0", D(0)), ("4", D(4))],
                         ids=["unfilled", "partly filled"])
def test_cancel_order_returns_the_final_fill(world: World, executed: str, filled: D) -> None:
    """The cancel answer is an OrderReport: CANCELED, executedQty as filled, no avgPrice."""
    answer = {**CANCELED, "executedQty": executed}  # type: ignore[dict-item]
    world.mock.delete("/fapi/v1/order").respond(200, json=answer)
    report = run(world.rest().cancel_order("BTCUSDT", ClientId("myOrder1")))
    assert (report.status, report.filled_qty, report.quantity) == (
        OrderStatus.CANCELED, filled, D(11))
    assert (report.order_id, report.client_id, report.avg_price) == (283194212, "myOrder1", None)


# Binance's "Mark Price" documentation example (GET /fapi/v1/premiumIndex?symbol=BTCUSDT).
PREMIUM = {
    "symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815", "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000", "nextFundingTime": 1597392000000, "time": 1597370495002,
}


def test_mark_price_is_a_public_weight_one_read(world: World) -> None:
    """premiumIndex by symbol: no key, no signature, weight 1; markPrice as a Decimal."""
    route = world.mock.get("/fapi/v1/premiumIndex").respond(200, json=PREMIUM)
    rest = world.rest()
    price = run(rest.mark_price("BTCUSDT"))
    request = route.calls.last.request
    assert price == D("11793.63104562")
    assert request.url.query == b"symbol=BTCUSDT"
    assert "X-MBX-APIKEY" not in request.headers
    assert rest.weight_spent == 1


@pytest.mark.parametrize(
    "answer",
    [[PREMIUM], {**PREMIUM, "symbol": "ETHUSDT"}, {**PREMIUM, "markPrice": "0.00000000"},
     {k: v for k, v in PREMIUM.items() if k != "markPrice"}],
    ids=["a list", "another symbol", "zero", "no markPrice"],
)
def test_mark_price_answer_we_cannot_use_is_unknown(world: World, answer: httpx.Response) -> None:
    """An answer that is not this symbol's positive mark price is never taken as one."""
    world.mock.get("/fapi/v1/premiumIndex").respond(200, json=answer)
    raises(OutcomeUnknown, world.rest().mark_price("BTCUSDT"))


def test_mark_price_of_an_unknown_symbol_is_rejected(world: World) -> None:
    """-1121 Invalid symbol -> Rejected (our request is wrong)."""
    world.mock.get("/fapi/v1/premiumIndex").mock(return_value=error(400, -1121, "Invalid symbol."))
    assert raises(Rejected, world.rest().mark_price("NOPEUSDT")).code == -1121


def test_exchange_info_is_unsigned_and_keyless(world: World) -> None:
    """exchangeInfo is public: no signature, no timestamp, no API key."""
    route = world.mock.get("/fapi/v1/exchangeInfo").respond(
        200, json={"rateLimits": RATE_LIMITS, "symbols": [fixture("exchange_info_symbol.json")]})
    filters = run(world.rest().exchange_info())
    request = route.calls.last.request
    assert request.url.query == b""
    assert "X-MBX-APIKEY" not in request.headers
    assert filters["BLZUSDT"].min_notional == D("5.0")


# exchangeInfo.rateLimits as the docs' example has them (reference §3.1, §7).
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
]


def test_the_weight_limit_is_read_from_exchange_info(world: World) -> None:
    """load_limits takes the minute's REQUEST_WEIGHT limit from exchangeInfo.rateLimits."""
    lower = [{**RATE_LIMITS[0], "limit": 1200}, *RATE_LIMITS[1:]]
    world.mock.get("/fapi/v1/exchangeInfo").respond(200, json={"rateLimits": lower, "symbols": []})
    rest = world.rest()
    assert rest.weight.limit is None  # nothing hard-coded: unknown until read

    limits = run(rest.load_limits())

    assert rest.weight.limit == 1200
    assert [(x.kind, x.interval_s, x.limit) for x in limits] == [
        ("REQUEST_WEIGHT", 60, 1200), ("ORDERS", 60, 1200), ("ORDERS", 10, 300),
    ]


def test_reads_are_throttled_on_the_limit_exchange_info_gave(world: World) -> None:
    """With a 1200 limit read from exchangeInfo, 1100 used refuses a read (90% is 1080)."""
    world.mock.get("/fapi/v1/exchangeInfo").respond(
        200, json={"rateLimits": [{**RATE_LIMITS[0], "limit": 1200}], "symbols": []})
    route = world.mock.get("/fapi/v1/order").mock(return_value=weight_answer(1100))
    rest = world.rest()
    run(rest.load_limits())
    run(rest.query_order("BTCUSDT", ClientId("abc")))

    err = raises(RateLimited, rest.query_order("BTCUSDT", ClientId("abc")))

    assert "1100 of 1200" in err.message
    assert route.call_count == 1


def test_open_books_of_one_symbol_cost_one_weight_each(world: World) -> None:
    """openOrders/openAlgoOrders with a symbol: weight 1 each, the symbol in the signed query."""
    orders = world.mock.get("/fapi/v1/openOrders").respond(200, json=[])
    algos = world.mock.get("/fapi/v1/openAlgoOrders").respond(200, json=[])
    rest = world.rest()

    async def scenario() -> None:
        await rest.open_orders("BTCUSDT")
        await rest.open_algo_orders("BTCUSDT")

    run(scenario())

    assert sent(orders)["symbol"] == "BTCUSDT"
    assert sent(algos)["symbol"] == "BTCUSDT"
    assert rest.weight_spent == 2


def test_position_mode_and_user_trades(world: World) -> None:
    """positionSide/dual -> hedge flag; userTrades by symbol and orderId."""
    world.mock.get("/fapi/v1/positionSide/dual").respond(200, json={"dualSidePosition": True})
    trades = world.mock.get("/fapi/v1/userTrades").respond(
        200, json=fixture("account_trade_list_response.json"))
    rest = world.rest()

    async def scenario() -> tuple[bool, list[UserTrade]]:
        return await rest.position_mode(), await rest.user_trades("BTCUSDT", 25851813)

    hedge, fills = run(scenario())
    assert hedge is True
    assert fills == [(25851813, D("0.002"), D("7819.01"))]
    assert (sent(trades)["symbol"], sent(trades)["orderId"]) == ("BTCUSDT", "25851813")


def test_listen_key_endpoints_carry_the_key_but_no_signature(world: World) -> None:
    """POST/PUT listenKey are USER_STREAM: API key header only."""
    new = world.mock.post("/fapi/v1/listenKey").respond(200, json={"listenKey": "lk"})
    keep = world.mock.put("/fapi/v1/listenKey").respond(200, json={})
    rest = world.rest()

    async def scenario() -> str:
        key = await rest.new_listen_key()
        await rest.keepalive_listen_key()
        return key

    assert run(scenario()) == "lk"
    for route in (new, keep):
        assert route.calls.last.request.url.query == b""
        assert route.calls.last.request.headers["X-MBX-APIKEY"] == KEY


def test_keepalive_of_an_expired_listen_key_is_not_found(world: World) -> None:
    """-1125 on PUT listenKey -> NotFound: create a new key."""
    answer = error(400, -1125, "This listenKey does not exist.")
    world.mock.put("/fapi/v1/listenKey").mock(return_value=answer)
    assert raises(NotFound, world.rest().keepalive_listen_key()).code == -1125


def test_no_listen_key_delete_exists() -> None:
    """DELETE /fapi/v1/listenKey would kill every consumer of the shared key: never implemented."""
    table = [v for v in vars(endpoints).values() if isinstance(v, Endpoint)]
    assert table
    assert not any(
        e.method == "DELETE" and "listenKey" in e.path for e in table
    )
    assert not [n for n in dir(BinanceRest) if "listen" in n and ("delete" in n or "close" in n)]


def test_injected_client_is_not_closed(world: World) -> None:
    """aclose closes only a client BinanceRest created itself."""
    async def scenario() -> bool:
        client = httpx.AsyncClient()
        await BinanceRest(BASE, KEY, SECRET, client=client).aclose()
        closed = client.is_closed
        await client.aclose()
        return closed

    assert run(scenario()) is False


# --- unknown outcomes: never resent ----------------------------------------------------


def test_post_timing_out_after_the_exchange_accepted_it_is_unknown_and_not_resent(world: World) -> None:
    """The order landed but the answer was lost: OutcomeUnknown, exactly one send."""
    book: list[dict[str, str]] = []

    def accept_then_time_out(request: httpx.Request) -> httpx.Response:
        book.append(dict(parse_qsl(request.url.query.decode())))
        raise httpx.ReadTimeout("timed out", request=request)

    route = world.mock.post("/fapi/v1/order").mock(side_effect=accept_then_time_out)
    err = raises(OutcomeUnknown, world.rest().place_entry(ENTRY))
    assert route.call_count == 1
    assert len(book) == 1
    assert "bcabc123-e" in err.message


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError],
)
@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/fapi/v1/order", lambda r: r.place_entry(ENTRY)),
        ("POST", "/fapi/v1/algoOrder", lambda r: r.place_protection(SL)),
        ("POST", "/fapi/v1/order", lambda r: r.close_position(CLOSE)),
        ("DELETE", "/fapi/v1/algoOrder", lambda r: r.cancel_protection(ClientId("x"))),
        ("DELETE", "/fapi/v1/order", lambda r: r.cancel_order("BTCUSDT", ClientId("x"))),
    ],
    ids=["entry", "protection", "close", "cancel protection", "cancel order"],
)
def test_lost_answers_of_writes_are_unknown_after_one_send(
    world: World, exc: type[Exception], method: str, path: str, call: Call
) -> None:
    """Read/write timeouts and dropped connections on POST/DELETE: unknown, no resend."""
    route = world.mock.route(method=method, path=path).mock(side_effect=exc("lost"))
    raises(OutcomeUnknown, call(world.rest()))
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"code": -1000, "msg": "Unknown error, please check your request or try again."}),
        (400, {"code": -1007, "msg": "Timeout waiting for response from backend server."}),
        (400, {"code": -1006, "msg": "An unexpected response was received from the message bus."}),
        (408, None),
        (500, {"code": -1001, "msg": "Internal error"}),
        (400, {"code": -9999, "msg": "a code nobody documented"}),
    ],
    ids=["503 unknown error", "-1007", "-1006", "408", "5xx other", "unlisted code"],
)
def test_unknown_answers_to_a_post_are_unknown_and_not_resent(world: World, status: int, body: object) -> None:
    """Binance's "status unknown" answers raise OutcomeUnknown after exactly one send."""
    route = world.mock.post("/fapi/v1/order").respond(status, json=body)
    raises(OutcomeUnknown, world.rest().place_entry(ENTRY))
    assert route.call_count == 1


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, text="<html>ok</html>"),
     httpx.Response(200, json={"orderId": 1, "symbol": "BTCUSDT"})],
    ids=["not json", "missing fields"],
)
def test_accepted_but_unreadable_answer_is_unknown(world: World, response: httpx.Response) -> None:
    """A 2xx we cannot read may still be a placed order: OutcomeUnknown."""
    world.mock.post("/fapi/v1/order").mock(return_value=response)
    raises(OutcomeUnknown, world.rest().place_entry(ENTRY))


def test_get_is_retried_once_on_a_transport_error(world: World) -> None:
    """A read may be retried: one timeout, then the answer."""
    route = world.mock.get("/fapi/v1/order").mock(side_effect=[
        httpx.ReadTimeout("lost"),
        httpx.Response(200, json=fixture("query_order_response.json")),
    ])
    report = run(world.rest().query_order("BTCUSDT", ClientId("abc")))
    assert route.call_count == 2
    assert report.order_id == 1573346959


def test_get_failing_twice_is_unknown(world: World) -> None:
    """Two transport failures on a read: OutcomeUnknown, no third try."""
    route = world.mock.get("/fapi/v1/algoOrder").mock(side_effect=httpx.ReadTimeout("lost"))
    raises(OutcomeUnknown, world.rest().query_algo(ClientId("x")))
    assert route.call_count == 2


# --- definite answers ------------------------------------------------------------------


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/fapi/v1/order", lambda r: r.place_entry(ENTRY)),
        ("POST", "/fapi/v1/algoOrder", lambda r: r.place_protection(SL)),
        ("DELETE", "/fapi/v1/order", lambda r: r.cancel_order("BTCUSDT", ClientId("x"))),
    ],
    ids=["entry", "protection", "cancel"],
)
def test_connect_failure_is_unavailable_not_a_refusal(
    world: World, exc: type[Exception], method: str, path: str, call: Call
) -> None:
    """Never connected, never sent: Unavailable (again in 1 s); not Rejected, not unknown."""
    route = world.mock.route(method=method, path=path).mock(side_effect=exc("refused"))
    err = raises(Unavailable, call(world.rest()))
    assert type(err) is Unavailable
    assert (err.code, err.retry_after) == (0, 1.0)
    assert "unreachable" in err.message
    assert route.call_count == 1


def test_connect_failure_on_a_read_is_retried_once_then_unavailable(world: World) -> None:
    """A GET gets its second try; two refused connections are still Unavailable."""
    route = world.mock.get("/fapi/v1/order").mock(side_effect=httpx.ConnectError("refused"))
    raises(Unavailable, world.rest().query_order("BTCUSDT", ClientId("abc")))
    assert route.call_count == 2


def test_a_protocol_httpx_cannot_speak_is_rejected_not_unavailable(world: World) -> None:
    """UnsupportedProtocol is a configuration error: not sent, and no retry will fix it."""
    world.mock.post("/fapi/v1/order").mock(side_effect=httpx.UnsupportedProtocol("ftp"))
    err = raises(Rejected, world.rest().place_entry(ENTRY))
    assert type(err) is Rejected


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (httpx.Response(503, json={"code": -1001, "msg": "Service Unavailable."}), -1001),
        (httpx.Response(503, text="Service Unavailable."), 0),
        (error(503, -1008, "Request throttled by system-level protection."), -1008),
        (error(400, -1008, "Request throttled by system-level protection."), -1008),
        (error(503, -1001, "Internal error; unable to process your request. Please try again."),
         -1001),
    ],
    ids=["503 json", "503 text", "-1008 on 503", "-1008 on 400", "503 internal error"],
)
def test_transient_failures_are_unavailable_not_rejected(world: World, response: httpx.Response, code: int) -> None:
    """503 "Service Unavailable.", -1008, 503 "Internal error...": not executed, try again."""
    route = world.mock.post("/fapi/v1/order").mock(return_value=response)
    err = raises(Unavailable, world.rest().place_entry(ENTRY))
    assert type(err) is Unavailable
    assert not isinstance(err, Rejected)
    assert (err.code, err.retry_after) == (code, 1.0)
    assert route.call_count == 1  # the adapter does not resend: the caller decides when


def test_unavailable_takes_retry_after_from_the_header(world: World) -> None:
    """A Retry-After header on a 503 "Service Unavailable." sets retry_after."""
    world.mock.post("/fapi/v1/algoOrder").mock(
        return_value=error(503, -1001, "Service Unavailable.", **{"Retry-After": "3"}))
    err = raises(Unavailable, world.rest().place_protection(SL))
    assert err.retry_after == 3.0


def test_query_of_a_missing_order_is_not_found(world: World) -> None:
    """-2013 on GET /order -> NotFound carrying the code."""
    world.mock.get("/fapi/v1/order").mock(return_value=error(400, -2013, "Order does not exist."))
    err = raises(NotFound, world.rest().query_order("BTCUSDT", ClientId("abc")))
    assert err.code == -2013


def test_duplicate_client_id_is_duplicate(world: World) -> None:
    """-4116 -> Duplicate: an open order already carries the id."""
    answer = error(400, -4116, "clientOrderId is duplicated.")
    world.mock.post("/fapi/v1/order").mock(return_value=answer)
    err = raises(Duplicate, world.rest().place_entry(ENTRY))
    assert err.message == "new order bcabc123-e: HTTP 400 code -4116: clientOrderId is duplicated."


@pytest.mark.parametrize("code", [-2021, -4142])
def test_crossed_trigger_is_would_trigger(world: World, code: int) -> None:
    """-2021 and -4142 on algoOrder -> WouldTrigger (a Rejected)."""
    world.mock.post("/fapi/v1/algoOrder").mock(return_value=error(400, code, "would trigger"))
    err = raises(WouldTrigger, world.rest().place_protection(SL))
    assert err.code == code
    assert isinstance(err, Rejected)


@pytest.mark.parametrize(
    "response",
    [error(401, -2015, "Invalid API-key, IP, or permissions for action."),
     error(400, -1022, "Signature for this request is not valid.")],
    ids=["-2015", "-1022"],
)
def test_refused_keys_are_auth_failed(world: World, response: httpx.Response) -> None:
    """Keys or signature refused -> AuthFailed."""
    world.mock.get("/fapi/v3/positionRisk").mock(return_value=response)
    raises(AuthFailed, world.rest().positions())


# --- clock skew ------------------------------------------------------------------------


def test_clock_skew_resyncs_and_resends_once_with_a_new_timestamp_and_the_same_id(world: World) -> None:
    """-1021: sync time, resend once: new timestamp, same newClientOrderId, valid signature."""
    time_route = world.mock.get("/fapi/v1/time").respond(200, json={"serverTime": NOW + 2500})
    order = world.mock.post("/fapi/v1/order").mock(side_effect=[
        error(400, -1021, "Timestamp for this request is outside of the recvWindow."),
        httpx.Response(200, json=ORDER_ACK),
    ])
    rest = world.rest()
    run(rest.place_entry(ENTRY))
    first, second = sent(order, 0), sent(order, 1)
    assert time_route.call_count == 1
    assert order.call_count == 2
    assert (first["timestamp"], second["timestamp"]) == (str(NOW), str(NOW + 2500))
    assert first["newClientOrderId"] == second["newClientOrderId"] == "bcabc123-e"
    for i in (0, 1):
        payload, signature = query(order, i).rsplit("&signature=", 1)
        assert signature == sign(SECRET, payload)


def test_an_unknown_outcome_after_a_resync_carries_the_resend_s_time_and_window(world: World) -> None:
    """The deadline of a send is its own signing time + the recvWindow it carried, not the
    decision's: the error names when the (re)send was signed, on the local clock."""
    world.mock.get("/fapi/v1/time").respond(200, json={"serverTime": NOW})
    world.mock.post("/fapi/v1/order").mock(side_effect=[
        error(400, -1021, "Timestamp for this request is outside of the recvWindow."),
        httpx.ReadTimeout("lost"),
    ])
    rest = world.rest(recv_window_ms=7000)

    async def place_later() -> None:
        world.now = NOW + 3000  # the resync and resend happen after the first send
        await rest.place_entry(ENTRY)

    err = raises(OutcomeUnknown, place_later())
    assert (err.sent_at_ms, err.recv_window_ms) == (NOW + 3000, 7000)


def test_clock_skew_twice_is_rejected_without_a_third_send(world: World) -> None:
    """A second -1021 is a definite reject (not executed); no further resend."""
    world.mock.get("/fapi/v1/time").respond(200, json={"serverTime": NOW})
    order = world.mock.post("/fapi/v1/order").mock(
        return_value=error(400, -1021, "Timestamp for this request was 1000ms ahead."))
    err = raises(Rejected, world.rest().place_entry(ENTRY))
    assert err.code == -1021
    assert order.call_count == 2


def test_clock_skew_with_a_failing_resync_is_still_a_definite_reject(world: World) -> None:
    """-1021 means not executed even when the time resync then fails: Rejected(-1021), no resend."""
    world.mock.get("/fapi/v1/time").mock(side_effect=httpx.ReadTimeout("lost"))
    order = world.mock.post("/fapi/v1/order").mock(
        return_value=error(400, -1021, "Timestamp for this request is outside of the recvWindow."))
    err = raises(Rejected, world.rest().place_entry(ENTRY))
    assert type(err) is Rejected
    assert err.code == -1021
    assert order.call_count == 1


# --- rate limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "retry_after"), [({"Retry-After": "7"}, 7.0), ({}, 60.0)],
    ids=["with Retry-After", "without"],
)
def test_429_is_rate_limited_with_retry_after(world: World, headers: dict[str, str], retry_after: float) -> None:
    """429 -> RateLimited; Retry-After if sent, else 60 s."""
    world.mock.get("/fapi/v1/openOrders").mock(
        return_value=error(429, -1003, "Too many requests.", **headers))
    err = raises(RateLimited, world.rest().open_orders())
    assert err.retry_after == retry_after


def test_after_a_429_no_read_goes_out_before_its_retry_after_but_orders_do(world: World) -> None:
    """A 429 on one read holds every read of this client until its Retry-After (going on past
    429s earns a 418 ban), whichever task asks; a protective send is not held."""
    positions = world.mock.get("/fapi/v3/positionRisk").mock(side_effect=[
        error(429, -1003, "Too many requests.", **{"Retry-After": "2"}),
        httpx.Response(200, json=[]),
    ])
    algo = world.mock.post("/fapi/v1/algoOrder").respond(200, json=fixture("algo_order_response.json"))
    rest = world.rest()
    raises(RateLimited, rest.positions())

    world.now += 1_500
    held = raises(RateLimited, rest.query_order("BTCUSDT", ClientId("abc")))
    run(rest.place_protection(SL))
    world.now += 600
    run(rest.positions())

    assert held.retry_after == pytest.approx(0.5)
    assert (positions.call_count, algo.call_count) == (2, 1)


def test_418_ban_refuses_later_calls_without_sending_until_it_ends(world: World) -> None:
    """After a 418 nothing is sent until the ban is over."""
    route = world.mock.get("/fapi/v1/openOrders").mock(side_effect=[
        error(418, -1003, "Way too many requests; IP banned.", **{"Retry-After": "120"}),
        httpx.Response(200, json=[]),
    ])
    rest = world.rest()
    assert raises(RateLimited, rest.open_orders()).retry_after == 120
    world.now += 60_000
    later = raises(RateLimited, rest.open_orders())
    assert later.retry_after == 60
    assert route.call_count == 1
    assert rest.calls == 1
    world.now += 61_000
    assert run(rest.open_orders()) == []
    assert route.call_count == 2


def test_418_without_retry_after_uses_the_banned_until_time(world: World) -> None:
    """"IP banned until <ms>" in the message sets the ban length."""
    world.mock.get("/fapi/v1/openOrders").mock(return_value=error(
        418, -1003, f"Way too many requests; IP banned until {NOW + 300_000}."))
    assert raises(RateLimited, world.rest().open_orders()).retry_after == 300


def test_used_weight_is_read_from_the_header(world: World) -> None:
    """X-MBX-USED-WEIGHT-1M is exposed as used_weight."""
    world.mock.get("/fapi/v1/order").respond(
        200, json=fixture("query_order_response.json"), headers={"X-MBX-USED-WEIGHT-1M": "123"})
    rest = world.rest()
    run(rest.query_order("BTCUSDT", ClientId("abc")))
    assert (rest.used_weight, rest.weight_spent, rest.calls) == (123, 1, 1)


def weight_answer(used: int) -> httpx.Response:
    return httpx.Response(200, json=fixture("query_order_response.json"),
                          headers={"X-MBX-USED-WEIGHT-1M": str(used)})


def test_a_read_near_the_weight_limit_is_refused_at_once_and_not_sent(world: World) -> None:
    """At 90% of 2400 a read raises RateLimited (retry at the next minute) without waiting."""
    route = world.mock.get("/fapi/v1/order").mock(return_value=weight_answer(2200))
    rest = world.rest(weight_limit=2400)

    async def scenario() -> tuple[VenueError, float]:
        await rest.query_order("BTCUSDT", ClientId("abc"))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RateLimited) as info:
            await rest.query_order("BTCUSDT", ClientId("abc"))
        return info.value, loop.time() - started

    err, waited_s = run(scenario())
    assert err.retry_after == (60_000 - NOW % 60_000) / 1000  # type: ignore[attr-defined]
    assert waited_s < 5  # the old throttle slept ~46 s here
    assert isinstance(err, Unavailable)
    assert "not sent" in err.message
    assert route.call_count == 1
    assert rest.calls == 1


def test_a_read_whose_own_weight_would_cross_the_line_is_refused(world: World) -> None:
    """2150 used: a weight-1 query still goes, a weight-40 openOrders does not."""
    world.mock.get("/fapi/v1/order").mock(return_value=weight_answer(2150))
    open_orders = world.mock.get("/fapi/v1/openOrders").respond(200, json=[])
    rest = world.rest(weight_limit=2400)

    async def scenario() -> None:
        await rest.query_order("BTCUSDT", ClientId("abc"))
        await rest.query_order("BTCUSDT", ClientId("abc"))
        await rest.open_orders()

    with pytest.raises(RateLimited):
        run(scenario())
    assert open_orders.call_count == 0
    assert rest.calls == 2


def test_weight_counted_in_a_past_minute_does_not_refuse(world: World) -> None:
    """The 1-minute weight window rolls over: the next minute's read is sent."""
    route = world.mock.get("/fapi/v1/order").mock(return_value=weight_answer(2300))
    rest = world.rest(weight_limit=2400)

    async def scenario() -> None:
        await rest.query_order("BTCUSDT", ClientId("abc"))
        world.now += 60_000
        await rest.query_order("BTCUSDT", ClientId("abc"))

    run(scenario())
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("method", "path", "answer", "call"),
    [
        ("POST", "/fapi/v1/order", ORDER_ACK, lambda r: r.place_entry(ENTRY)),
        ("POST", "/fapi/v1/algoOrder", ALGO_ACK, lambda r: r.place_protection(SL)),
        ("POST", "/fapi/v1/order", ORDER_ACK, lambda r: r.close_position(CLOSE)),
        ("DELETE", "/fapi/v1/algoOrder", fixture("cancel_algo_order_response.json"),
         lambda r: r.cancel_protection(ClientId("6B2I9XVcJpCjqPAJ4YoFX7"))),
        ("DELETE", "/fapi/v1/order", fixture("cancel_order_response.json"),
         lambda r: r.cancel_order("BTCUSDT", ClientId("myOrder1"))),
    ],
    ids=["entry", "protection", "close", "cancel protection", "cancel order"],
)
def test_order_sends_and_cancels_are_never_throttled(
    world: World, method: str, path: str, answer: httpx.Response, call: Call
) -> None:
    """With the minute's weight all used, reads are refused but orders and cancels are sent."""
    world.mock.get("/fapi/v1/order").mock(return_value=weight_answer(2400))
    route = world.mock.route(method=method, path=path).respond(200, json=answer)
    rest = world.rest(weight_limit=2400)

    async def scenario() -> None:
        await rest.query_order("BTCUSDT", ClientId("abc"))
        await call(rest)
        with pytest.raises(RateLimited):
            await rest.query_order("BTCUSDT", ClientId("abc"))

    run(scenario())
    assert route.call_count == 1


# --- no secrets in messages ------------------------------------------------------------


FAILURES = [
    ("connect error", httpx.ConnectError("refused"), Unavailable),
    ("503 unavailable", error(503, -1001, "Service Unavailable."), Unavailable),
    ("read timeout", httpx.ReadTimeout("lost"), OutcomeUnknown),
    ("503 unknown", error(503, -1000, "Unknown error, please check your request"), OutcomeUnknown),
    ("-2010", error(400, -2010, "Order would immediately match."), Rejected),
    ("429", error(429, -1003, "Too many requests."), RateLimited),
    ("418", error(418, -1003, "banned"), RateLimited),
    ("-1022", error(400, -1022, "Signature for this request is not valid."), AuthFailed),
    ("unreadable 200", httpx.Response(200, text="garbage"), OutcomeUnknown),
]


@pytest.mark.parametrize(("name", "answer", "cls"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failure_messages_hold_no_key_secret_or_signature(
    world: World, name: str, answer: httpx.Response, cls: type[VenueError]
) -> None:
    """Whatever fails, the error names the order but never the key, secret or signature."""
    route = world.mock.post("/fapi/v1/algoOrder")
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    err = raises(cls, world.rest().place_protection(SL))
    signature = sent(route)["signature"]
    for text in (str(err), repr(err), err.message):
        assert KEY not in text
        assert SECRET not in text
        assert signature not in text
    assert err.__cause__ is None
    assert err.__context__ is None
    assert "bcabc123-sl1" in err.message


def test_an_answer_echoing_the_request_is_redacted(world: World) -> None:
    """A proxy page echoing the URL and key gets both redacted out of the message."""
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text=f"bad gateway for {request.url} key {KEY} secret {SECRET}")

    route = world.mock.post("/fapi/v1/order").mock(side_effect=echo)
    err = raises(OutcomeUnknown, world.rest().place_entry(ENTRY))
    signature = sent(route)["signature"]
    assert KEY not in err.message
    assert SECRET not in err.message
    assert signature not in err.message
    assert "<redacted>" in err.message
