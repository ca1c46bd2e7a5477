"""The REST API in-memory (httpx.ASGITransport): authentication, Binance's answer shapes,
listenKey semantics, request weight, the admin API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.paper.app import create_app
from bot_cli.paper.auth import check_signature
from bot_cli.paper.rules import BookError
from bot_cli.paper.service import LISTEN_KEY_TTL_MS, PaperExchange
from tests.paper import ENTRY, KEY_HEADER, SL, Clock, fixture, signed


BTC = {"symbol": "BTCUSDT"}
TRAILING_ONLY = {"activatePrice", "priceRate"}  # fixture keys of TRAILING_STOP_MARKET orders only


@contextlib.asynccontextmanager
async def venue(
    tmp_path: Path, clock: Clock
) -> AsyncIterator[tuple[httpx.AsyncClient, PaperExchange]]:
    exchange = PaperExchange(tmp_path, clock=clock, volatility=0.0)
    exchange.open()
    try:
        transport = httpx.ASGITransport(app=create_app(exchange))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://paper", headers=KEY_HEADER
        ) as client:
            yield client, exchange
    finally:
        exchange.close()


def call(tmp_path: Path, steps: Any, clock: Clock | None = None) -> Any:
    """Run ``steps(client, exchange, clock)`` against a fresh venue."""
    clock = clock or Clock()

    async def main() -> Any:
        async with venue(tmp_path, clock) as (client, exchange):
            return await steps(client, exchange, clock)

    return asyncio.run(main())




# --- authentication ---------------------------------------------------------------------------


def test_the_official_signature_vectors_verify() -> None:
    """Both published HMAC vectors (query only; mixed query + body) pass the server-side check."""
    # Arrange
    vectors = fixture("hmac_signature_vectors")
    one, mixed = vectors["vectors"]

    # Act / Assert (no exception)
    check_signature(f"{one['payload']}&signature={one['signature']}", "", vectors["secretKey"])
    check_signature(
        "", f"{one['payload']}&signature={one['signature'].upper()}", vectors["secretKey"]
    )
    check_signature(
        mixed["queryString"],
        f"{mixed['requestBody']}&signature={mixed['signature']}",
        vectors["secretKey"],
    )
    with pytest.raises(BookError) as err:
        check_signature(
            f"{one['payload']}&signature={mixed['signature']}", "", vectors["secretKey"]
        )
    assert err.value.code == -1022


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda q, h: (q[:-1] + ("0" if q[-1] != "0" else "1"), h), 400, -1022),  # bad signature
        (lambda q, h: (q, {"X-MBX-APIKEY": "someone-else"}), 401, -2015),  # wrong key
        (lambda q, h: (q, {"X-MBX-APIKEY": ""}), 401, -2014),  # no key
        (lambda q, h: (q.rsplit("&signature=", 1)[0], h), 400, -1102),  # no signature
    ],
)
def test_bad_credentials_are_refused_and_nothing_executes(
    tmp_path: Path, mutate: Callable[[str, dict[str, str]], tuple[str, dict[str, str]]], status: int, code: int
) -> None:
    """-1022 bad signature, -2015 wrong key, -2014 no key, -1102 no signature; no order placed."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> Any:
        query, headers = mutate(signed(ENTRY, clock()), KEY_HEADER)
        response = await client.post(f"/fapi/v1/order?{query}", headers=headers)
        return response, ex.book.open_orders()

    # Act
    response, open_orders = call(tmp_path, steps)

    # Assert
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert open_orders == []


@pytest.mark.parametrize(
    ("skew", "window", "ok"),
    [
        (-4999, None, True),
        (-5001, None, False),
        (-9000, 10000, True),
        (999, None, True),
        (1000, None, False),
    ],
)
def test_the_timestamp_must_be_inside_the_recv_window(tmp_path: Path, skew: int, window: int | None, ok: bool) -> None:
    """timestamp < server + 1000 and server - timestamp <= recvWindow (default 5000), else -1021."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> httpx.Response:
        params = {"recvWindow": window} if window else {}
        return await client.get(f"/fapi/v1/openOrders?{signed(params, clock() + skew)}")

    # Act
    response = call(tmp_path, steps)

    # Assert
    assert response.status_code == (200 if ok else 400)
    assert ok or response.json()["code"] == -1021


def test_parameters_in_the_body_are_signed_too(tmp_path: Path) -> None:
    """A form body carrying every parameter, signature last, is accepted (totalParams = body)."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> httpx.Response:
        return await client.post(
            "/fapi/v1/order",
            content=signed(ENTRY, clock()),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    # Act
    response = call(tmp_path, steps)

    # Assert
    assert response.status_code == 200
    assert response.json()["clientOrderId"] == "e1"


# --- answer shapes ----------------------------------------------------------------------------


def test_new_query_cancel_order_answers_have_the_fixture_key_sets(tmp_path: Path) -> None:
    """New order (2026: no avgPrice/cumQuote), query (with them) and cancel match the fixtures."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        t = clock()
        new = await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        query = await client.get(
            f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'origClientOrderId': 'e1'}, clock())}"
        )
        opened = await client.get(f"/fapi/v1/openOrders?{signed({}, clock())}")
        cancel = await client.delete(
            f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'orderId': new.json()['orderId']}, t)}"
        )
        return [new.json(), query.json(), opened.json()[0], cancel.json()]

    # Act
    new, query, opened, cancel = call(tmp_path, steps)

    # Assert
    assert set(new) == set(fixture("new_order_response"))
    assert set(query) == set(fixture("query_order_response")) - TRAILING_ONLY
    assert set(opened) == set(fixture("open_orders_response")[0]) - TRAILING_ONLY
    assert set(cancel) == set(fixture("cancel_order_response")) - TRAILING_ONLY
    assert (new["status"], query["status"], cancel["status"]) == ("NEW", "NEW", "CANCELED")
    assert isinstance(new["orderId"], int)
    assert new["origQty"] == "0.010"
    assert new["price"] == "96000.00"


def test_algo_order_answers_have_the_fixture_key_sets(tmp_path: Path) -> None:
    """Algo new/query/open/cancel answers match the fixtures; cancel's code is the STRING "200"."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        new = await client.post(f"/fapi/v1/algoOrder?{signed(SL, clock())}")
        query = await client.get(
            f"/fapi/v1/algoOrder?{signed({'clientAlgoId': 'e1-sl1'}, clock())}"
        )
        opened = await client.get(f"/fapi/v1/openAlgoOrders?{signed({}, clock())}")
        cancel = await client.delete(
            f"/fapi/v1/algoOrder?{signed({'algoId': new.json()['algoId']}, clock())}"
        )
        return [new.json(), query.json(), opened.json()[0], cancel.json()]

    # Act
    new, query, opened, cancel = call(tmp_path, steps)

    # Assert
    assert set(new) == set(fixture("algo_order_response"))
    assert set(query) == set(fixture("query_algo_order_response"))
    assert set(opened) == set(fixture("open_algo_orders_response")[0])
    assert cancel == {
        "algoId": new["algoId"],
        "clientAlgoId": "e1-sl1",
        "code": "200",
        "msg": "success",
    }
    assert (query["actualOrderId"], query["algoStatus"], new["triggerPrice"]) == (
        "",
        "NEW",
        "90000.00",
    )


def test_account_answers_have_the_fixture_key_sets(tmp_path: Path) -> None:
    """positionRisk v2/v3, userTrades and exchangeInfo symbols have Binance's keys."""
    # Arrange
    market = {**ENTRY, "type": "MARKET", "newClientOrderId": "m1"}
    del market["price"], market["timeInForce"]

    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        t = clock()
        new = await client.post(f"/fapi/v1/order?{signed(market, clock())}")
        v3 = await client.get(f"/fapi/v3/positionRisk?{signed({}, clock())}")
        v2 = await client.get(f"/fapi/v2/positionRisk?{signed({'symbol': 'BTCUSDT'}, clock())}")
        trades = await client.get(f"/fapi/v1/userTrades?{signed({**BTC, 'orderId': new.json()['orderId']}, t)}")
        info = await client.get("/fapi/v1/exchangeInfo")
        account = await client.get(f"/fapi/v3/account?{signed({}, clock())}")
        return [v3.json(), v2.json(), trades.json(), info.json(), account.json()]

    # Act
    v3, v2, trades, info, account = call(tmp_path, steps)

    # Assert
    assert [set(r) for r in v3] == [set(fixture("position_risk_v3_response")[0])]
    assert v3[0]["positionAmt"] == "0.010"
    assert [set(r) for r in v2] == [set(fixture("position_risk_v2_response")[0])]
    assert [set(t) for t in trades] == [set(fixture("account_trade_list_response")[0])]
    assert trades[0]["qty"] == "0.010"
    assert trades[0]["buyer"] is True
    symbol = info["symbols"][0]
    assert set(fixture("exchange_info_symbol")) - {"OrderType", "filters"} <= set(symbol)
    assert {f["filterType"] for f in symbol["filters"]} == {
        "PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL", "MAX_NUM_ORDERS", "PERCENT_PRICE",
    }  # fmt: skip
    assert {r["rateLimitType"] for r in info["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS"}
    assert account["assets"][0]["asset"] == "USDT"
    assert account["positions"][0]["positionAmt"] == "0.010"


def test_errors_are_code_and_msg_with_binance_statuses(tmp_path: Path) -> None:
    """-2013 query, -2011 cancel, -4120 conditional on /order, -2021 crossed trigger: 400."""

    # Arrange
    async def steps(
        client: httpx.AsyncClient, ex: PaperExchange, clock: Clock
    ) -> list[httpx.Response]:
        t = clock()
        return [
            await client.get(
                f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'origClientOrderId': 'x'}, t)}"
            ),
            await client.delete(f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'orderId': 1}, t)}"),
            await client.post(f"/fapi/v1/order?{signed({**ENTRY, 'type': 'STOP_MARKET'}, t)}"),
            await client.post(
                f"/fapi/v1/algoOrder?{signed({**SL, 'triggerPrice': '98000.00'}, t)}"
            ),
            await client.get(f"/fapi/v1/algoOrder?{signed({'algoId': 5}, t)}"),
        ]

    # Act
    answers = call(tmp_path, steps)

    # Assert
    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (400, -2013),
        (400, -2011),
        (400, -4120),
        (400, -2021),
        (400, -2013),
    ]
    assert all(set(r.json()) == {"code", "msg"} for r in answers)


# --- listenKey --------------------------------------------------------------------------------


def test_listen_key_is_shared_kept_alive_and_recreated_after_expiry(tmp_path: Path) -> None:
    """POST returns the active key; PUT extends it; after 60 min PUT is -1125, POST a new key."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        first = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        second = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        clock.advance(LISTEN_KEY_TTL_MS - 1)
        kept = await client.put("/fapi/v1/listenKey")
        clock.advance(LISTEN_KEY_TTL_MS - 1)
        still = await client.put("/fapi/v1/listenKey")
        closed = await client.delete("/fapi/v1/listenKey")  # harmless: the key is shared
        clock.advance(LISTEN_KEY_TTL_MS)
        expired = await client.put("/fapi/v1/listenKey")
        third = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        no_key = await client.post("/fapi/v1/listenKey", headers={"X-MBX-APIKEY": ""})
        return [first, second, kept, still, closed, expired, third, no_key]

    # Act
    first, second, kept, still, closed, expired, third, no_key = call(tmp_path, steps)

    # Assert
    assert first == second
    assert len(first) == 64
    assert kept.json() == {"listenKey": first}
    assert still.status_code == 200
    assert closed.status_code == 200
    assert (expired.status_code, expired.json()["code"]) == (400, -1125)
    assert third != first
    assert (no_key.status_code, no_key.json()["code"]) == (401, -2014)


# --- weight, admin ----------------------------------------------------------------------------


def test_used_weight_is_counted_per_minute(tmp_path: Path) -> None:
    """X-MBX-USED-WEIGHT-1M adds the endpoint weights and restarts with the next minute."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[str]:
        clock.ms = clock.ms - clock.ms % 60_000 + 1000
        seen = [(await client.get("/fapi/v1/time")).headers["X-MBX-USED-WEIGHT-1M"]]
        seen.append(
            (await client.get(f"/fapi/v1/positionSide/dual?{signed({}, clock())}")).headers[
                "X-MBX-USED-WEIGHT-1M"
            ]
        )
        seen.append(
            (await client.get(f"/fapi/v1/openOrders?{signed({}, clock())}")).headers[
                "X-MBX-USED-WEIGHT-1M"
            ]
        )
        order = await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        seen += [order.headers["X-MBX-USED-WEIGHT-1M"], order.headers["X-MBX-ORDER-COUNT-1M"]]
        clock.advance(60_000)
        seen.append((await client.get("/fapi/v1/time")).headers["X-MBX-USED-WEIGHT-1M"])
        return seen

    # Act
    seen = call(tmp_path, steps)

    # Assert
    assert seen == ["1", "31", "71", "71", "1", "1"]


def test_admin_api_sets_prices_and_shows_the_books(tmp_path: Path) -> None:
    """POST /paper/price moves the price; GET /paper/state shows both books and positions."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        await client.post(f"/fapi/v1/algoOrder?{signed({**SL, 'reduceOnly': 'true'}, clock())}")
        moved = await client.post("/paper/price", json={"symbol": "BTCUSDT", "price": "95000"})
        clock.advance(2000)
        advanced = await client.post("/paper/advance")
        state = await client.get("/paper/state")
        bad = await client.post("/paper/price", json={"symbol": "BTCUSDT"})
        return [moved.json(), advanced.json(), state.json(), bad.status_code]

    # Act
    moved, advanced, state, bad = call(tmp_path, steps)

    # Assert
    assert moved == {"symbol": "BTCUSDT", "price": "95000.00"}
    assert advanced["time"] == state["time"]
    assert state["prices"]["BTCUSDT"] == "95000.00"
    assert state["openOrders"] == []
    assert [o["clientOrderId"] for o in state["recentOrders"]] == ["e1"]
    assert [a["clientAlgoId"] for a in state["openAlgoOrders"]] == ["e1-sl1"]
    assert [p["positionAmt"] for p in state["positions"]] == ["0.010"]
    assert bad == 400
