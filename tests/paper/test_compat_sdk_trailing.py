"""Binance's official SDK against the venue's trailing stops and its 2026 RESULT answer: the REST
answers (new, query, open and all algo orders) and the ALGO_UPDATE events parse strictly into the
SDK's models (key sets both ways, see ``compat``); refusals arrive as the SDK's errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets


pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.rest_api import models
from binance_sdk_derivatives_trading_usds_futures.websocket_streams import models as stream_models

from bot_cli.paper.server import PaperHandle
from tests.paper import T0, Clock, poll
from tests.paper.compat import COMPAT, venue_thread
from tests.paper.test_compat_sdk import Sdk, assert_no_mismatch, mismatches_since
from tests.paper.test_compat_sdk_streams import EVENT_ABSENT, EVENT_EXTRA, EVENT_MODELS, post, run, sdk_streams


BTC = "BTCUSDT"
CONDITIONAL = models.NewAlgoOrderAlgoTypeEnum.CONDITIONAL
SELL, BUY = models.NewAlgoOrderSideEnum.SELL, models.NewAlgoOrderSideEnum.BUY
TRAILING = models.NewAlgoOrderTypeEnum.TRAILING_STOP_MARKET


@pytest.fixture
def sdk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Sdk]:
    caplog.set_level(logging.WARNING)
    with venue_thread(tmp_path, volatility=0.0) as handle:  # BTCUSDT stays at 97000.00
        yield Sdk(handle.rest_url)
    relaxed = [r.getMessage() for r in caplog.records if "response" in r.getMessage()]
    assert not relaxed, relaxed  # the SDK fell back to relaxed typing or to the raw payload


def new_trailing(sdk: Sdk, name: str, **params: Any) -> Any:
    base = {"algo_type": CONDITIONAL, "symbol": BTC, "side": SELL, "type": TRAILING, "quantity": 0.01}
    return sdk.call(name, lambda r: r.new_algo_order(**{**base, **params}))


def test_the_result_answer_is_the_sdk_model_exactly(sdk: Sdk) -> None:
    """newOrderRespType=RESULT: every key of NewOrderResponse, none other (no avgPrice, no
    cumQuote since 2026-07), and the MARKET order's final FILLED state."""
    # Arrange
    before = len(COMPAT.mismatches)

    # Act
    result = sdk.call("order MARKET RESULT", lambda r: r.new_order(
        symbol=BTC, side=models.NewOrderSideEnum.BUY, type=models.NewOrderTypeEnum.MARKET, quantity=0.01,
        new_order_resp_type=models.NewOrderNewOrderRespTypeEnum.RESULT,
    ))  # fmt: skip

    # Assert
    assert_no_mismatch(mismatches_since(before))
    fields = models.NewOrderResponse.model_fields
    assert set(sdk.raw) == {f.alias or name for name, f in fields.items() if name != "additional_properties"}
    assert (result.status, result.executed_qty, result.cum_qty) == ("FILLED", "0.010", "0.010")


def test_trailing_answers_parse_strictly(sdk: Sdk) -> None:
    """New (with and without activatePrice), query, open, all, cancel: each fits its SDK model;
    the POST answer carries activatePrice and callbackRate."""
    # Arrange
    before = len(COMPAT.mismatches)

    # Act
    sent = new_trailing(sdk, "algoOrder TRAILING", callback_rate=1.5, activate_price=98000,
                        working_type=models.NewAlgoOrderWorkingTypeEnum.MARK_PRICE,
                        client_algo_id="sdk-tr1")  # fmt: skip
    default = new_trailing(sdk, "algoOrder TRAILING (no activatePrice)", side=BUY, callback_rate=20,
                           client_algo_id="sdk-tr2")  # fmt: skip
    query = sdk.call("GET algoOrder TRAILING", lambda r: r.query_algo_order(client_algo_id="sdk-tr1"))
    listed = sdk.call("openAlgoOrders TRAILING", lambda r: r.current_all_algo_open_orders(symbol=BTC))
    every = sdk.call("allAlgoOrders TRAILING", lambda r: r.query_all_algo_orders(BTC))
    cancelled = sdk.call("DELETE algoOrder TRAILING", lambda r: r.cancel_algo_order(client_algo_id="sdk-tr1"))

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert (sent.order_type, sent.activate_price, sent.callback_rate, sent.trigger_price) == (
        "TRAILING_STOP_MARKET", "98000.00", "1.5", "0",
    )  # fmt: skip
    assert (sent.working_type, default.activate_price, default.callback_rate) == ("MARK_PRICE", "97000.00", "20.0")
    assert (query.order_type, query.algo_status) == ("TRAILING_STOP_MARKET", "NEW")
    assert [a.client_algo_id for a in listed] == [a.client_algo_id for a in every] == ["sdk-tr1", "sdk-tr2"]
    assert cancelled.client_algo_id == "sdk-tr1"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"callback_rate": 20.1}, -1130),
        ({"callback_rate": 0.09}, -1130),
        ({}, -1102),  # no callbackRate
        ({"callback_rate": 1, "activate_price": 96000}, -2021),  # a SELL's, below the price
        ({"callback_rate": 1, "side": BUY, "activate_price": 98000}, -2021),  # a BUY's, above it
        ({"callback_rate": 1, "trigger_price": 96000}, -1106),
    ],
)
def test_refusals_reach_the_sdk_as_binance_errors(sdk: Sdk, params: dict[str, Any], code: int) -> None:
    """Each refusal is an HTTP 400 with Binance's code, raised by the SDK as BadRequestError."""
    # Act
    with pytest.raises(BadRequestError) as refused:
        new_trailing(sdk, "algoOrder TRAILING (refused)", **params)

    # Assert
    assert refused.value.status_code == code


def test_algo_updates_of_a_trailing_stop_parse_with_ia(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Placed with an activatePrice (NEW, ia false), activated (NEW, ia true), fired on the
    pull-back (TRIGGERED, FINISHED): each event parsed by the SDK's user-data client, and the raw
    ALGO_UPDATEs fit its model with ``ia`` present."""
    # Arrange
    caplog.set_level(logging.WARNING)
    clock = Clock(T0)
    parsed: list[Any] = []
    raw: list[dict[str, Any]] = []

    async def steps(handle: PaperHandle, client: httpx.AsyncClient, clock: Clock) -> Any:
        key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        connection = await sdk_streams(handle).create_connection()
        (await connection.user_data(key)).on("message", parsed.append)
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await poll(lambda: handle.exchange.hub.count() == 2, what="both user sockets")
            await post(client, clock, "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET", quantity="0.010")
            await post(client, clock, "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol=BTC, side="SELL",
                       type="TRAILING_STOP_MARKET", quantity="0.010", reduceOnly="true", callbackRate="1",
                       activatePrice="98000.00", workingType="MARK_PRICE", clientAlgoId="tr")  # fmt: skip
            for price in (Decimal(98500), Decimal("97515.00")):  # activates; 1 % off 98500: fires
                handle.exchange.set_price(BTC, price)
                clock.advance(1000)
            await poll(lambda: len(parsed) >= 10, what="ten events parsed by the SDK")
            raw.extend([json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(10)])
        await connection.close_connection(close_session=True)

    # Act
    run(tmp_path, steps, clock)

    # Assert
    algo = [o for p in parsed
            if isinstance(p.actual_instance, stream_models.AlgoUpdate) and (o := p.actual_instance.o)]  # fmt: skip
    assert [(o.X, o.ia, o.o) for o in algo] == [
        ("NEW", False, "TRAILING_STOP_MARKET"), ("NEW", True, "TRAILING_STOP_MARKET"),
        ("TRIGGERED", True, "TRAILING_STOP_MARKET"), ("FINISHED", True, "TRAILING_STOP_MARKET"),
    ]  # fmt: skip
    assert algo[-1].ap == "97515.00"
    for event in raw:
        absent = EVENT_ABSENT - {"ia"} if event["e"] == "ALGO_UPDATE" else EVENT_ABSENT
        found = COMPAT.check(f"user stream {event['e']} (trailing)", EVENT_MODELS[event["e"]], event,
                             absent=absent, extra=EVENT_EXTRA)  # fmt: skip
        assert not found, "\n".join(map(str, found))
    assert [r.getMessage() for r in caplog.records if "parse" in r.getMessage().lower()] == []
