"""Running the venue: in-process start/stop, restart with catch-up, kill -9 of a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.paper.market import SYMBOLS, Anchor, PricePath
from bot_cli.paper.persist import PaperLockHeld
from bot_cli.paper.server import PaperStartError, is_listening, start_in_process
from tests.paper import KEY_HEADER, Clock, signed


SEED, VOLATILITY = 11, 0.002
QUIET_MS, CROSS_BY_MS = 4000, 7000  # the kill must land in the quiet part (loose: CI shares 2 cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_in_process_listens_and_stop_releases_everything(tmp_path):
    """After start the port answers; after stop it does not, and the state dir can be reused."""

    # Arrange
    async def main() -> tuple[bool, bool, bool]:
        handle = await start_in_process(tmp_path)
        up = is_listening("127.0.0.1", handle.port)
        async with httpx.AsyncClient() as client:
            answered = (await client.get(f"{handle.rest_url}/fapi/v1/time")).status_code == 200
        await handle.stop()
        again = await start_in_process(tmp_path)  # the lock was released
        await again.stop()
        return up, answered, is_listening("127.0.0.1", handle.port)

    # Act
    up, answered, still_up = asyncio.run(main())

    # Assert
    assert (up, answered, still_up) == (True, True, False)


def test_a_busy_port_or_a_held_state_dir_is_a_clear_error(tmp_path):
    """Port in use -> PaperStartError; a second venue on one state dir -> PaperLockHeld."""

    # Arrange
    async def main() -> list[Exception]:
        handle = await start_in_process(tmp_path / "a")
        errors: list[Exception] = []
        for state_dir, port in ((tmp_path / "b", handle.port), (tmp_path / "a", 0)):
            try:
                other = await start_in_process(state_dir, port=port)
                await other.stop()
            except Exception as err:  # noqa: BLE001 - the type is what the test checks
                errors.append(err)
        await handle.stop()
        return errors

    # Act
    errors = asyncio.run(main())

    # Assert
    assert [type(e) for e in errors] == [PaperStartError, PaperLockHeld]
    assert "cannot listen" in str(errors[0])


def test_restart_catches_up_what_happened_while_down(tmp_path):
    """Entry + SL over HTTP, venue stopped, an hour passes, venue started: filled and triggered."""
    # Arrange
    clock = Clock()
    entry = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "96000.00",
        "newClientOrderId": "e",
    }
    sl = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "triggerPrice": "94000.00",
        "closePosition": "true",
        "clientAlgoId": "sl",
    }

    async def session(requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
        handle = await start_in_process(tmp_path, clock=clock)
        try:
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
                return [
                    (await client.request(m, f"{p}?{signed(q, clock())}")).json()
                    for m, p, q in requests
                ]
        finally:
            await handle.stop()

    # Act
    asyncio.run(session([("POST", "/fapi/v1/order", entry), ("POST", "/fapi/v1/algoOrder", sl)]))
    clock.advance(3_600_000)
    order, algo, positions = asyncio.run(
        session(
            [
                ("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "e"}),
                ("GET", "/fapi/v1/algoOrder", {"clientAlgoId": "sl"}),
                ("GET", "/fapi/v3/positionRisk", {}),
            ]
        )
    )

    # Assert
    assert (order["status"], order["executedQty"]) == ("FILLED", "0.010")
    assert algo["algoStatus"] == "FINISHED" and algo["actualOrderId"] != ""
    assert positions == []  # flat again: v3 lists only symbols with a position or open orders


# --- kill -9 of a real venue process --------------------------------------------------------

SERVE = (
    "import sys; from pathlib import Path; from bot_cli.paper.server import serve; "
    f"serve(Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), seed={SEED}, volatility={VOLATILITY})"
)


def spawn(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with open(
        state_dir.parent / "venue.log", "ab"
    ) as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-c", SERVE, str(state_dir), str(port)],
            stdout=log,
            stderr=log,
            cwd=Path(__file__).resolve().parents[2],
        )


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not is_listening("127.0.0.1", port):
        assert proc.poll() is None, "the venue process died at start (see venue.log)"
        assert time.monotonic() < deadline, "the venue did not start listening"
        time.sleep(0.05)


def crossing_plan(state_dir: Path, now: int) -> tuple[str, str, Decimal] | None:
    """A (symbol, side, limit) the path will not touch for QUIET_MS, then cross on >= 3 steps by CROSS_BY_MS.

    The price path is a pure function of time and of the anchors in the state file, so the test
    can see the venue's future: 3 crossing steps fill the order completely (40%, 40%, 20%).
    """
    data = json.loads((state_dir / "paper" / "exchange.json").read_text())
    path = PricePath(
        SEED,
        VOLATILITY,
        {s: Anchor(a["t0_ms"], Decimal(a["p0"])) for s, a in data["anchors"].items()},
    )
    for symbol in SYMBOLS:
        soon = [path.price_at(symbol, now + ms) for ms in range(-500, QUIET_MS + 1, 100)]
        later = sorted(
            path.price_at(symbol, now + ms) for ms in range(QUIET_MS + 100, CROSS_BY_MS + 1, 100)
        )
        if later[2] < min(soon):
            return symbol, "BUY", later[2]
        if later[-3] > max(soon):
            return symbol, "SELL", later[-3]
    return None


QTY = {"BTCUSDT": "0.002", "ETHUSDT": "0.010", "SOLUSDT": "1", "DOGEUSDT": "100", "BNBUSDT": "0.05", "XRPUSDT": "10.0"}


@pytest.mark.e2e
def test_an_order_acked_before_kill_9_fills_while_the_venue_is_down(tmp_path):
    """Ack -> kill -9 at once -> the path crosses while the process is dead -> restart: FILLED."""
    # Arrange
    state_dir, port = tmp_path / "state", free_port()
    proc = spawn(state_dir, port)
    try:
        wait_listening(port, proc)
        now = int(time.time() * 1000)
        plan = crossing_plan(state_dir, now)
        assert plan is not None, (
            "no symbol's path crosses in the next seconds (seed/volatility too tame)"
        )
        symbol, side, limit = plan
        params = {
            "symbol": symbol,
            "side": side,
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": QTY[symbol],
            "price": str(limit),
            "newClientOrderId": "entry-1",
        }

        # Act
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY_HEADER) as client:
            ack = client.post(f"/fapi/v1/order?{signed(params, now)}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = int(time.time() * 1000)
        while int(time.time() * 1000) < now + CROSS_BY_MS + 500:  # the crossing happens meanwhile
            time.sleep(0.1)
        proc = spawn(state_dir, port)
        wait_listening(port, proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY_HEADER) as client:
            query = {"symbol": symbol, "origClientOrderId": "entry-1"}
            found = client.get(f"/fapi/v1/order?{signed(query, int(time.time() * 1000))}").json()
    finally:
        proc.kill()
        proc.wait(10)

    # Assert
    assert ack.status_code == 200 and ack.json()["status"] == "NEW"
    assert (found["status"], found["executedQty"]) == ("FILLED", params["quantity"]), found
    assert killed_at < now + QUIET_MS  # the venue was dead before the path could cross
    assert killed_at < found["updateTime"] <= now + CROSS_BY_MS  # so it filled while it was dead
