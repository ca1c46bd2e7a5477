"""Wire parsing over every recorded payload in tests/fixtures/binance/, and its refusals."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import pytest

from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    OrderReport,
    OrderStatus,
    PositionSide,
)
from bot_cli.exchange import wire
from bot_cli.exchange.wire import (
    AccountUpdate,
    AlgoUpdate,
    ApiError,
    Ignored,
    ListenKeyExpired,
    OrderUpdate,
    UserTrade,
    WireError,
    parse_stream_message,
)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "binance"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- user stream ------------------------------------------------------------------------


def test_order_trade_update_new() -> None:
    """The docs' ORDER_TRADE_UPDATE example: a NEW order, nothing filled, avg price None."""
    msg = parse_stream_message(raw("order_trade_update_new.json"))
    assert msg == OrderUpdate(
        event_time=1568879465651,
        report=OrderReport(
            symbol="BTCUSDT", client_id=ClientId("TEST"), order_id=8886774,
            status=OrderStatus.NEW, filled_qty=D(0), avg_price=None, quantity=D("0.001"),
        ),
        last_qty=D(0), last_price=D(0), execution_type="NEW",
    )


def test_order_trade_update_filled() -> None:
    """A full fill: cumulative z as filled quantity, ap as average price, l/L of this fill."""
    msg = parse_stream_message(raw("order_trade_update_filled.json"))
    assert msg == OrderUpdate(
        event_time=1568879465751,
        report=OrderReport(
            symbol="BTCUSDT", client_id=ClientId("bot-e-000123"), order_id=8886775,
            status=OrderStatus.FILLED, filled_qty=D("0.010"), avg_price=D("7100.00"),
            quantity=D("0.010"),
        ),
        last_qty=D("0.010"), last_price=D("7100.00"), execution_type="TRADE",
    )


def test_order_trade_update_without_commission_fields() -> None:
    """N and n are not pushed when there is no commission: still parses."""
    event = load("order_trade_update_filled.json")
    del event["o"]["N"], event["o"]["n"]
    assert parse_stream_message(json.dumps(event)) == parse_stream_message(
        raw("order_trade_update_filled.json")
    )


def test_algo_update_canceled() -> None:
    """The docs' ALGO_UPDATE example; E is the event time, rm the reason, ai "" -> None."""
    msg = parse_stream_message(raw("algo_update_canceled.json"))
    assert msg == AlgoUpdate(
        event_time=1750515742303,
        report=AlgoReport(
            symbol="BNBUSDT", client_id=ClientId("Q5xaq5EGKgXXa0fD7fs0Ip"), algo_id=2148719,
            status=AlgoStatus.CANCELED, trigger_price=D(750), quantity=D("0.01"),
            actual_order_id=None, executed_qty=D(0),
        ),
        reason="Reduce Only reject",
    )


def test_algo_update_triggered_live_capture_in_stream_wrapper() -> None:
    """A live capture wrapped as {"stream", "data"}: ai is a STRING order id -> int."""
    msg = parse_stream_message(raw("algo_update_triggered_live.json"))
    assert msg == AlgoUpdate(
        event_time=1765431097037,
        report=AlgoReport(
            symbol="DOGEUSDT", client_id=ClientId("O-20251211-053131-ZYWR-000-9"),
            algo_id=1000000033225453, status=AlgoStatus.TRIGGERED, trigger_price=D("0.13855"),
            quantity=D(38), actual_order_id=88937381063, executed_qty=D(0),
        ),
        reason="",
    )


@pytest.mark.parametrize("ai", ["", "0"])
def test_algo_update_empty_or_zero_actual_order_id_is_none(ai: str) -> None:
    """ai "" (before trigger) or "0" means no matching-engine order yet."""
    event = load("algo_update_triggered_live.json")
    event["data"]["o"]["ai"] = ai
    msg = parse_stream_message(json.dumps(event))
    assert isinstance(msg, AlgoUpdate)
    assert msg.report.actual_order_id is None


def test_account_update_positions_per_symbol_and_side() -> None:
    """ACCOUNT_UPDATE -> signed amount per (symbol, position side)."""
    msg = parse_stream_message(raw("account_update.json"))
    assert msg == AccountUpdate(
        event_time=1564745798939,
        positions={
            ("BTCUSDT", PositionSide.BOTH): D(0),
            ("BTCUSDT", PositionSide.LONG): D(20),
            ("BTCUSDT", PositionSide.SHORT): D(-10),
        },
    )


def test_account_update_without_positions() -> None:
    """A FUNDING_FEE update on a cross position has no P: no positions changed."""
    event = load("account_update.json")
    del event["a"]["P"]
    assert parse_stream_message(json.dumps(event)) == AccountUpdate(1564745798939, {})


@pytest.mark.parametrize("event_time", ["1576653824250", 1576653824250], ids=["string", "int"])
def test_listen_key_expired_with_event_time_as_string_or_int(event_time: str | int) -> None:
    """listenKeyExpired.E arrives as a string in live traffic, an int in the 2026 SDK."""
    frame = json.dumps({"e": "listenKeyExpired", "E": event_time, "listenKey": "k"})
    assert parse_stream_message(frame) == ListenKeyExpired(1576653824250)


def test_bytes_frames_are_accepted() -> None:
    """websockets may hand over bytes."""
    assert parse_stream_message(raw("account_update.json").encode()) == parse_stream_message(
        raw("account_update.json")
    )


def test_other_events_are_ignored_by_name() -> None:
    """Events we do not act on come back as Ignored(event type)."""
    frame = json.dumps({"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "T": 1, "ac": {}})
    assert parse_stream_message(frame) == Ignored("ACCOUNT_CONFIG_UPDATE")


def test_subscribe_response_is_ignored() -> None:
    """The answer to a SUBSCRIBE request is not an event."""
    assert parse_stream_message('{"result": null, "id": 1}') == Ignored("response")


def _without(name: str, path: tuple[str, ...], key: str) -> str:
    event = copy.deepcopy(load(name))
    node = event
    for step in path:
        node = node[step]
    del node[key]
    return json.dumps(event)


@pytest.mark.parametrize(
    ("name", "path", "key"),
    [
        ("order_trade_update_filled.json", ("o",), "z"),
        ("order_trade_update_filled.json", ("o",), "X"),
        ("order_trade_update_filled.json", ("o",), "ap"),
        ("order_trade_update_filled.json", (), "E"),
        ("algo_update_canceled.json", ("o",), "caid"),
        ("algo_update_canceled.json", ("o",), "tp"),
        ("account_update.json", (), "a"),
    ],
    ids=["z", "X", "ap", "E", "caid", "tp", "a"],
)
def test_missing_required_stream_field_names_the_field(name: str, path: tuple[str, ...], key: str) -> None:
    """A missing field raises WireError naming it, never a default."""
    with pytest.raises(WireError, match=f"missing field '{key}'"):
        parse_stream_message(_without(name, path, key))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("z", "abc", "field 'z' is not a number"),
        ("z", "NaN", "field 'z' is not a finite number"),
        ("z", True, "field 'z' is not a number"),
        ("i", "12x", "field 'i' is not an integer"),
        ("X", "HALF_DONE", "field 'X' has unknown value 'HALF_DONE'"),
        ("c", 7, "field 'c' is not a string"),
    ],
    ids=["text number", "NaN", "bool number", "bad int", "unknown status", "non-string id"],
)
def test_bad_stream_values_are_refused(key: str, value: object, match: str) -> None:
    """Wrong types and unknown enum values raise WireError naming the field."""
    event = load("order_trade_update_filled.json")
    event["o"][key] = value
    with pytest.raises(WireError, match=match):
        parse_stream_message(json.dumps(event))


@pytest.mark.parametrize(
    "frame", ["not json", "[1, 2]", '{"E": 1}', '{"stream": "k", "data": [1]}'],
    ids=["not json", "a list", "no event type", "wrapped non-object"],
)
def test_malformed_frames_are_refused(frame: str) -> None:
    """Frames that are not event objects raise WireError."""
    with pytest.raises(WireError):
        parse_stream_message(frame)


# --- REST ------------------------------------------------------------------------------


def test_query_order() -> None:
    """GET /fapi/v1/order: avgPrice "0.00000" of an unfilled order -> None."""
    assert wire.parse_order(load("query_order_response.json")) == OrderReport(
        symbol="BTCUSDT", client_id=ClientId("abc"), order_id=1573346959,
        status=OrderStatus.NEW, filled_qty=D(0), avg_price=None, quantity=D("0.40"),
    )


def test_new_order_without_avg_price() -> None:
    """The 2026 new-order answer has no avgPrice: None, not an error."""
    assert wire.parse_order(load("new_order_response.json")) == OrderReport(
        symbol="BTCUSDT", client_id=ClientId("testOrder"), order_id=22542179,
        status=OrderStatus.NEW, filled_qty=D(0), avg_price=None, quantity=D(10),
    )


def test_order_with_avg_price() -> None:
    """A filled order's avgPrice is kept as a Decimal."""
    order = load("query_order_response.json") | {"status": "FILLED", "executedQty": "0.40",
                                                 "avgPrice": "9300.50"}
    report = wire.parse_order(order)
    assert (report.status, report.filled_qty, report.avg_price) == (
        OrderStatus.FILLED, D("0.40"), D("9300.50"),
    )


def test_cancel_order() -> None:
    """DELETE /fapi/v1/order answer (no avgPrice)."""
    report = wire.parse_order(load("cancel_order_response.json"))
    assert (report.order_id, report.status, report.client_id) == (
        283194212, OrderStatus.CANCELED, "myOrder1",
    )


# Binance's "Mark Price" documentation example (no recorded fixture of it yet).
PREMIUM_INDEX = {
    "symbol": "BTCUSDT", "markPrice": "11793.63104562", "indexPrice": "11781.80495970",
    "estimatedSettlePrice": "11781.16138815", "lastFundingRate": "0.00038246",
    "interestRate": "0.00010000", "nextFundingTime": 1597392000000, "time": 1597370495002,
}


def test_premium_index() -> None:
    """GET /fapi/v1/premiumIndex?symbol= -> the symbol's mark price as a Decimal."""
    assert wire.parse_premium_index(cast(wire.RestPremiumIndex, PREMIUM_INDEX)) == wire.MarkPrice(
        "BTCUSDT", D("11793.63104562"), 1597370495002
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [({"markPrice": "0"}, "not positive"), ({"markPrice": "-1"}, "not positive"),
     ({"markPrice": "NaN"}, "not a finite number"), ({"markPrice": None}, "not a number")],
    ids=["zero", "negative", "NaN", "null"],
)
def test_premium_index_without_a_usable_price_is_refused(change: dict[str, object], match: str) -> None:
    """A mark price that is not a positive number raises WireError, never a default."""
    with pytest.raises(WireError, match=match):
        wire.parse_premium_index(cast(wire.RestPremiumIndex, {**PREMIUM_INDEX, **change}))


def test_open_orders() -> None:
    """GET /fapi/v1/openOrders -> one report per order."""
    assert wire.parse_orders(load("open_orders_response.json")) == [
        OrderReport("BTCUSDT", ClientId("abc"), 1917641, OrderStatus.NEW, D(0), None, D("0.40"))
    ]


@pytest.mark.parametrize(
    ("key", "match"), [("executedQty", "'executedQty'"), ("status", "'status'"),
                       ("orderId", "'orderId'")],
)
def test_order_missing_field_is_refused(key: str, match: str) -> None:
    """A REST order without a required field raises WireError naming it."""
    order = load("query_order_response.json")
    del order[key]
    with pytest.raises(WireError, match=match):
        wire.parse_order(order)


def test_algo_order_response() -> None:
    """POST /fapi/v1/algoOrder answer: no actualOrderId yet -> None."""
    assert wire.parse_algo(load("algo_order_response.json")) == AlgoReport(
        symbol="BNBUSDT", client_id=ClientId("6B2I9XVcJpCjqPAJ4YoFX7"), algo_id=2146760,
        status=AlgoStatus.NEW, trigger_price=D("750.000"), quantity=D("0.01"),
        actual_order_id=None,
    )


def test_query_algo_order() -> None:
    """GET /fapi/v1/algoOrder: actualOrderId "" -> None."""
    report = wire.parse_algo(load("query_algo_order_response.json"))
    assert (report.status, report.actual_order_id, report.algo_id) == (
        AlgoStatus.CANCELED, None, 2146760,
    )


def test_triggered_algo_order_actual_order_id_string_becomes_int() -> None:
    """actualOrderId is a string once triggered."""
    order = load("query_algo_order_response.json") | {"algoStatus": "TRIGGERED",
                                                      "actualOrderId": "88937381063"}
    assert wire.parse_algo(order).actual_order_id == 88937381063


def test_open_algo_orders() -> None:
    """GET /fapi/v1/openAlgoOrders -> one report per algo order."""
    assert wire.parse_algos(load("open_algo_orders_response.json")) == [
        AlgoReport("BNBUSDT", ClientId("MRumok0dkhrP4kCm12AHaB"), 2148627, AlgoStatus.NEW,
                   D("750.000"), D("0.01"), None)
    ]


def test_cancel_algo_order_string_code() -> None:
    """DELETE /fapi/v1/algoOrder answers code "200" as a STRING."""
    answer = load("cancel_algo_order_response.json")
    assert wire.parse_cancel_algo(answer) == "6B2I9XVcJpCjqPAJ4YoFX7"


def test_cancel_algo_order_number_code() -> None:
    """The number 200 is accepted too."""
    answer = load("cancel_algo_order_response.json") | {"code": 200}
    assert wire.parse_cancel_algo(answer) == "6B2I9XVcJpCjqPAJ4YoFX7"


def test_cancel_algo_order_other_code_is_not_a_confirmation() -> None:
    """Any other code is not a confirmed cancel."""
    with pytest.raises(WireError, match="not 200"):
        wire.parse_cancel_algo(load("cancel_algo_order_response.json") | {"code": "400"})


def test_position_risk_v2() -> None:
    """positionRisk v2 lists flat symbols too."""
    assert wire.parse_position_risk(load("position_risk_v2_response.json")) == {
        ("BTCUSDT", PositionSide.BOTH): D(0)
    }


def test_position_risk_v3() -> None:
    """positionRisk v3 (what rest.positions() calls)."""
    assert wire.parse_position_risk(load("position_risk_v3_response.json")) == {
        ("ADAUSDT", PositionSide.BOTH): D(30)
    }


def test_exchange_info_symbol_filters() -> None:
    """exchangeInfo -> the four filters we use, as Decimals."""
    filters = wire.parse_exchange_info({"symbols": [load("exchange_info_symbol.json")]})
    f = filters["BLZUSDT"]
    assert (f.tick_size, f.min_price, f.max_price) == (D("0.0001"), D("0.0001"), D(300))
    assert (f.step_size, f.min_qty, f.max_qty) == (D(1), D(1), D(10000000))
    assert (f.market_step_size, f.market_min_qty, f.market_max_qty) == (D(1), D(1), D(590119))
    assert f.min_notional == D("5.0")


def test_exchange_info_missing_filter_is_refused() -> None:
    """A symbol without MARKET_LOT_SIZE raises WireError naming the filter."""
    symbol = load("exchange_info_symbol.json")
    symbol["filters"] = [f for f in symbol["filters"] if f["filterType"] != "MARKET_LOT_SIZE"]
    with pytest.raises(WireError, match="MARKET_LOT_SIZE"):
        wire.parse_exchange_info({"symbols": [symbol]})


def test_user_trades() -> None:
    """GET /fapi/v1/userTrades -> (order id, qty, price) per trade."""
    trades = wire.parse_user_trades(load("account_trade_list_response.json"))
    assert trades == [UserTrade(25851813, D("0.002"), D("7819.01"))]
    assert trades == [(25851813, D("0.002"), D("7819.01"))]


def test_batch_orders_element_is_order_or_error() -> None:
    """batchOrders answers positionally: an order, then a {code, msg} error."""
    first, second = wire.parse_batch_orders(load("batch_orders_response.json"))
    assert isinstance(first, OrderReport)
    assert (first.order_id, first.status) == (22542179, OrderStatus.NEW)
    assert first.client_id == "testOrder"
    assert second == ApiError(-2022, "ReduceOnly Order is rejected.")


def test_small_answers() -> None:
    """Server time, position mode and listenKey answers."""
    assert wire.parse_server_time({"serverTime": 1499827319559}) == 1499827319559
    assert wire.parse_position_mode({"dualSidePosition": True}) is True
    assert wire.parse_listen_key({"listenKey": "abc"}) == "abc"


def test_position_mode_must_be_a_boolean() -> None:
    """"true" as a string is not a boolean: refused rather than guessed."""
    with pytest.raises(WireError, match="dualSidePosition"):
        wire.parse_position_mode({"dualSidePosition": "true"})


def test_a_list_where_an_object_is_expected_is_refused() -> None:
    """Shape errors are WireErrors too."""
    with pytest.raises(WireError, match="expected an object"):
        wire.parse_order([])  # type: ignore[arg-type]


# --- every fixture is covered ----------------------------------------------------------

PARSERS: dict[str, Callable[[Any], object]] = {
    "account_trade_list_response.json": wire.parse_user_trades,
    "account_update.json": lambda d: parse_stream_message(json.dumps(d)),
    "algo_order_response.json": wire.parse_algo,
    "algo_update_canceled.json": lambda d: parse_stream_message(json.dumps(d)),
    "algo_update_triggered_live.json": lambda d: parse_stream_message(json.dumps(d)),
    "batch_orders_response.json": wire.parse_batch_orders,
    "cancel_algo_order_response.json": wire.parse_cancel_algo,
    "cancel_order_response.json": wire.parse_order,
    "exchange_info_symbol.json": wire.parse_symbol_filters,
    "new_order_response.json": wire.parse_order,
    "open_algo_orders_response.json": wire.parse_algos,
    "open_orders_response.json": wire.parse_orders,
    "order_trade_update_filled.json": lambda d: parse_stream_message(json.dumps(d)),
    "order_trade_update_new.json": lambda d: parse_stream_message(json.dumps(d)),
    "position_risk_v2_response.json": wire.parse_position_risk,
    "position_risk_v3_response.json": wire.parse_position_risk,
    "query_algo_order_response.json": wire.parse_algo,
    "query_order_response.json": wire.parse_order,
}


def test_every_fixture_has_a_parser() -> None:
    """Each payload fixture (all but the HMAC vectors) is parsed by some test."""
    names = {p.name for p in FIXTURES.glob("*.json")} - {"hmac_signature_vectors.json"}
    assert names == set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_fixture_parses_and_stream_events_are_not_ignored(name: str) -> None:
    """Every fixture parses; none of the stream fixtures falls through to Ignored."""
    assert not isinstance(PARSERS[name](load(name)), Ignored)
