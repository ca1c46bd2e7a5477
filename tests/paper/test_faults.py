"""Fault switches: their syntax, and each one's behaviour on a real uvicorn (ephemeral port)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from bot_cli.paper.faults import FaultError, parse
from bot_cli.paper.server import PaperHandle, start_in_process
from bot_cli.paper.service import wall_ms
from bot_cli.paper.wal import durable_state
from tests.paper import ENTRY, KEY_HEADER, SL, Clock, poll, signed


NO_LIMIT = {"price": "", "timeInForce": ""}  # a MARKET order has neither
Steps = Callable[[PaperHandle, httpx.AsyncClient], Awaitable[Any]]


def run(tmp_path: Path, faults: list[str], steps: Steps, clock: Clock | None = None) -> Any:
    async def main() -> Any:
        handle = await start_in_process(tmp_path, volatility=0.0, faults=faults, clock=clock or wall_ms)
        try:
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
                return await steps(handle, client)
        finally:
            await handle.stop()

    return asyncio.run(main())


def query(order_id: str, t: int) -> str:
    return f"/fapi/v1/order?{signed({'symbol': 'BTCUSDT', 'origClientOrderId': order_id}, t)}"


# --- syntax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "endpoint", "methods", "once", "seconds"),
    [
        ("lost_response:order", "lost_response", "order", {"POST", "PUT", "DELETE"}, False, 0),
        ("lost_response:order:once", "lost_response", "order", {"POST", "PUT", "DELETE"}, True, 0),
        ("unknown_503:algoOrder@DELETE", "unknown_503", "algoOrder", {"DELETE"}, False, 0),
        ("timeout_1007", "timeout_1007", "*", {"POST", "PUT", "DELETE"}, False, 0),
        (
            "rate_limit_429:algoOrder",
            "rate_limit_429",
            "algoOrder",
            {"GET", "POST", "PUT", "DELETE"},
            False,
            0,
        ),
        ("lost_response:*@ANY", "lost_response", "*", {"GET", "POST", "PUT", "DELETE"}, False, 0),
        ("late_visibility:5", "late_visibility", "*", set(), False, 5.0),
        ("late_visibility", "late_visibility", "*", set(), False, 5.0),
        ("drop_stream", "drop_stream", "*", set(), True, 0),
        ("drop_stream:30", "drop_stream", "*", set(), False, 30.0),
        ("expire_listen_key", "expire_listen_key", "*", set(), True, 0),
        ("slow_response:order", "slow_response", "order", {"POST", "PUT", "DELETE"}, False, 30.0),
        ("slow_response:algoOrder@DELETE:2.5", "slow_response", "algoOrder", {"DELETE"}, False, 2.5),
    ],
)
def test_specs_parse(spec: str, kind: str, endpoint: str, methods: set[str], once: bool, seconds: float) -> None:
    """KIND[:ARG][:once], with @METHOD on response faults."""
    # Act
    fault = parse(spec)

    # Assert
    assert (fault.kind, fault.endpoint, set(fault.methods), fault.once, fault.seconds) == (
        kind,
        endpoint,
        methods,
        once,
        seconds,
    )


@pytest.mark.parametrize(
    ("spec", "nth", "once"),
    [
        ("slow_response:algoOrder@POST#3:20", 3, False),
        ("slow_response:order:once", 1, True),
        ("slow_response:order:5:once", 1, True),
        ("slow_response:*", 0, False),
    ],
)
def test_slow_response_targets_the_nth_request(spec: str, nth: int, once: bool) -> None:
    """#N picks the Nth matching request; :once is #1; neither holds every one."""
    # Act
    fault = parse(spec)

    # Assert
    assert (fault.nth, fault.once) == (nth, once)


@pytest.mark.parametrize(
    "spec",
    [
        "nonsense",
        "slow_response:order#0",
        "slow_response:order#x",
        "slow_response:order:1:2",
        "lost_response:order@PATCH",
        "late_visibility:soon",
        "drop_stream:-1",
        "expire_listen_key:3",
        "lost_response:a:b:c",
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec: str) -> None:
    """A spec that does not parse raises FaultError naming the problem."""
    # Act
    with pytest.raises(FaultError) as err:
        parse(spec)

    # Assert
    assert spec.split(":")[0] in str(err.value) or "fault" in str(err.value)


# --- behaviour --------------------------------------------------------------------------------


def test_lost_response_executes_then_drops_the_connection(tmp_path: Path) -> None:
    """The client sees a transport error, yet the order is live and persisted; :once fires once."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        t = handle.exchange.now()
        with pytest.raises(httpx.TransportError) as err:
            await client.post(f"/fapi/v1/order?{signed(ENTRY, t)}")
        found = await client.get(query("e1", t))
        again = await client.post(
            f"/fapi/v1/order?{signed({**ENTRY, 'newClientOrderId': 'e2'}, t)}"
        )
        on_disk = durable_state(tmp_path)
        return err.value, found, again, on_disk

    # Act
    err, found, again, on_disk = run(tmp_path, ["lost_response:order:once"], steps)

    # Assert
    assert isinstance(err, httpx.RemoteProtocolError)
    assert found.status_code == 200
    assert found.json()["status"] == "NEW"
    assert again.status_code == 200
    assert {o["client_id"] for o in on_disk["orders"]} == {"e1", "e2"}


@pytest.mark.parametrize(
    ("spec", "status", "code"),
    [
        ("unknown_503:algoOrder", 503, -1000),
        ("timeout_1007:algoOrder", 408, -1007),
    ],
)
def test_unknown_outcome_faults_execute_then_answer_an_error(tmp_path: Path, spec: str, status: int, code: int) -> None:
    """503 "Unknown error..." / -1007 come AFTER the algo order was placed: a query finds it."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        t = handle.exchange.now()
        await client.post(f"/fapi/v1/order?{signed({**ENTRY, 'type': 'MARKET', **NO_LIMIT}, t)}")
        answer = await client.post(f"/fapi/v1/algoOrder?{signed(SL, t)}")
        found = await client.get(f"/fapi/v1/algoOrder?{signed({'clientAlgoId': 'e1-sl1'}, t)}")
        return answer, found

    # Act
    answer, found = run(tmp_path, [spec], steps)

    # Assert
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert (
        status != 503
        or answer.json()["msg"] == "Unknown error, please check your request or try again later."
    )
    assert found.json()["algoStatus"] == "NEW"


def test_rate_limit_refuses_without_executing(tmp_path: Path) -> None:
    """429 -1003 and the algo order does NOT exist; other endpoints are unaffected."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        t = handle.exchange.now()
        answer = await client.post(f"/fapi/v1/algoOrder?{signed(SL, t)}")
        found = await client.get(f"/fapi/v1/algoOrder?{signed({'clientAlgoId': 'e1-sl1'}, t)}")
        order = await client.post(f"/fapi/v1/order?{signed(ENTRY, t)}")
        return answer, found, order

    # Act
    answer, found, order = run(tmp_path, ["rate_limit_429:algoOrder"], steps)

    # Assert
    assert (answer.status_code, answer.json()["code"]) == (429, -1003)
    assert (found.status_code, found.json()["code"]) == (429, -1003)  # persistent: GETs too
    assert order.status_code == 200


def test_late_visibility_hides_new_orders_for_n_seconds(tmp_path: Path) -> None:
    """-2013 on query and absent from openOrders until N seconds after creation, then visible."""
    # Arrange
    clock = Clock()

    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        placed = await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
        hidden = await client.get(query("e1", clock()))
        listed = await client.get(f"/fapi/v1/openOrders?{signed({}, clock())}")
        clock.advance(5000)
        shown = await client.get(query("e1", clock()))
        return placed, hidden, listed.json(), shown

    # Act
    placed, hidden, listed, shown = run(tmp_path, ["late_visibility:5"], steps, clock)

    # Assert
    assert placed.status_code == 200
    assert (hidden.status_code, hidden.json()["code"]) == (400, -2013)
    assert listed == []
    assert shown.status_code == 200
    assert shown.json()["clientOrderId"] == "e1"


def test_faults_are_switched_on_and_off_by_the_admin_api(tmp_path: Path) -> None:
    """POST /paper/faults adds and clears; a persistent fault keeps firing until cleared."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        t = handle.exchange.now()
        added = (await client.post("/paper/faults", json={"add": ["unknown_503:order"]})).json()
        first = await client.post(f"/fapi/v1/order?{signed(ENTRY, t)}")
        second = await client.post(
            f"/fapi/v1/order?{signed({**ENTRY, 'newClientOrderId': 'e2'}, t)}"
        )
        cleared = (await client.post("/paper/faults", json={"clear": True})).json()
        third = await client.post(
            f"/fapi/v1/order?{signed({**ENTRY, 'newClientOrderId': 'e3'}, t)}"
        )
        bad = await client.post("/paper/faults", json={"add": ["bogus"]})
        return added, first.status_code, second.status_code, cleared, third.status_code, bad

    # Act
    added, first, second, cleared, third, bad = run(tmp_path, [], steps)

    # Assert
    assert added["faults"] == ["unknown_503:order"]
    assert (first, second, third) == (503, 503, 200)
    assert cleared["faults"] == []
    assert bad.status_code == 400
    assert "unknown fault" in bad.json()["error"]


def test_drop_stream_closes_sockets_now_and_periodically(tmp_path: Path) -> None:
    """drop_stream closes the socket at once; drop_stream:0.2 keeps closing new ones."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        closed = []
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await poll(lambda: handle.exchange.hub.count() == 1)
            ran = (await client.post("/paper/faults", json={"add": ["drop_stream"]})).json()["ran"]
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            closed.append(ran)
        await client.post("/paper/faults", json={"add": ["drop_stream:0.2"]})
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            closed.append("periodic")
        return closed

    # Act
    closed = run(tmp_path, [], steps)

    # Assert
    assert closed == [["drop_stream"], "periodic"]


def test_expire_listen_key_fault_expires_the_key_now(tmp_path: Path) -> None:
    """The socket gets listenKeyExpired and closes; PUT is -1125; POST gives a new key."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        key = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        async with websockets.connect(f"{handle.ws_url}/ws/{key}") as ws:
            await poll(lambda: handle.exchange.hub.count() == 1)
            await client.post("/paper/faults", json={"add": ["expire_listen_key"]})
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        put = await client.put("/fapi/v1/listenKey")
        new = (await client.post("/fapi/v1/listenKey")).json()["listenKey"]
        return key, event, put.json(), new

    # Act
    key, event, put, new = run(tmp_path, [], steps)

    # Assert
    assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
    assert isinstance(event["E"], int)  # the SDK model's type
    assert put["code"] == -1125
    assert new != key


def test_slow_response_executes_then_holds_only_the_nth_answer(tmp_path: Path) -> None:
    """#2: the first order answers at once; the second is live and persisted while its answer is
    held, and the switch is gone from the list as soon as the hold starts; later ones are quick."""

    # Arrange
    async def steps(handle: PaperHandle, client: httpx.AsyncClient) -> Any:
        t = handle.exchange.now()
        await client.post("/paper/faults", json={"add": ["slow_response:order@POST#2:1.5"]})
        first = await client.post(f"/fapi/v1/order?{signed(ENTRY, t)}")
        e2 = {**ENTRY, "newClientOrderId": "e2"}
        held = asyncio.create_task(client.post(f"/fapi/v1/order?{signed(e2, t)}"))
        await poll(lambda: handle.exchange.faults.specs() == [], what="the hold to start")
        found = await client.get(query("e2", t))
        on_disk = durable_state(tmp_path)
        waiting = not held.done()
        second = await asyncio.wait_for(held, 5)
        third = await client.post(f"/fapi/v1/order?{signed({**ENTRY, 'newClientOrderId': 'e3'}, t)}")
        return first, found, on_disk, waiting, second, third

    # Act
    first, found, on_disk, waiting, second, third = run(tmp_path, [], steps)

    # Assert
    assert first.status_code == 200
    assert waiting
    assert found.status_code == 200
    assert found.json()["status"] == "NEW"
    assert {o["client_id"] for o in on_disk["orders"]} == {"e1", "e2"}
    assert second.status_code == 200
    assert second.json()["clientOrderId"] == "e2"
    assert third.status_code == 200
