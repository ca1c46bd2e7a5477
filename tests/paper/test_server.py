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
from bot_cli.paper.matching import STEP_MS
from bot_cli.paper.persist import PaperLockHeld
from bot_cli.paper.server import PaperStartError, is_listening, start_in_process
from tests.paper import CLOSE_ALL_SL, ENTRY, KEY_HEADER, Clock, signed


SEED, VOLATILITY = 11, 0.002
QUIET_MS, CROSS_BY_MS = 4000, 7000  # the kill must land in the quiet part (loose: CI shares 2 cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_in_process_listens_and_stop_releases_everything(tmp_path: Path) -> None:
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


def test_a_busy_port_or_a_held_state_dir_is_a_clear_error(tmp_path: Path) -> None:
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


async def session(tmp_path: Path, clock: Clock, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """Start the venue on the state in ``tmp_path``, make the signed requests, stop it."""
    handle = await start_in_process(tmp_path, clock=clock)
    try:
        async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
            return [(await client.request(m, f"{p}?{signed(q, clock())}")).json() for m, p, q in requests]
    finally:
        await handle.stop()


def test_restart_catches_up_what_happened_while_down(tmp_path: Path) -> None:
    """Entry + SL over HTTP, venue stopped, an hour passes, venue started: filled and triggered."""
    # Arrange
    clock = Clock()
    entry = {**ENTRY, "newClientOrderId": "e"}
    placed = [("POST", "/fapi/v1/order", entry), ("POST", "/fapi/v1/algoOrder", CLOSE_ALL_SL)]
    asyncio.run(session(tmp_path, clock, placed))

    # Act
    clock.advance(3_600_000)
    order, algo, positions = asyncio.run(session(tmp_path, clock, [
        ("GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "e"}),
        ("GET", "/fapi/v1/algoOrder", {"clientAlgoId": "sl"}),
        ("GET", "/fapi/v3/positionRisk", {}),
    ]))  # fmt: skip

    # Assert
    assert (order["status"], order["executedQty"]) == ("FILLED", "0.010")
    assert algo["algoStatus"] == "FINISHED"
    assert algo["actualOrderId"] != ""
    assert positions == []  # flat again: v3 lists only symbols with a position or open orders


# --- kill -9 of a real venue process --------------------------------------------------------

SERVE = (
    "import sys; from pathlib import Path; from bot_cli.paper.server import serve; "
    f"serve(Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]), seed={SEED}, volatility={VOLATILITY})"
)


def spawn(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    with open(state_dir.parent / "venue.log", "ab") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, "-c", SERVE, str(state_dir), str(port)],
            stdout=log, stderr=log, cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not is_listening("127.0.0.1", port):
        assert proc.poll() is None, "the venue process died at start (see venue.log)"
        assert time.monotonic() < deadline, "the venue did not start listening"
        time.sleep(0.05)


def crossing_plan(state_dir: Path, now: int) -> tuple[str, str, Decimal] | None:
    """A (symbol, side, limit) no step touches up to QUIET_MS after ``now``, then >= 3 steps cross by CROSS_BY_MS.

    The price path is a pure function of time and of the anchors in the state file, so the test
    can see the venue's future; the venue fills on its 100 ms grid (``matching.STEP_MS``), so the
    plan reads the path there: 3 crossing steps fill the order completely (40%, 40%, 20%).
    """
    data = json.loads((state_dir / "paper" / "exchange.json").read_text())
    path = PricePath(SEED, VOLATILITY, {s: Anchor(a["t0_ms"], Decimal(a["p0"])) for s, a in data["anchors"].items()})
    quiet = range(now // STEP_MS * STEP_MS - 500, now + QUIET_MS + 1, STEP_MS)
    crossing = range(quiet[-1] + STEP_MS, now + CROSS_BY_MS + 1, STEP_MS)
    for symbol in SYMBOLS:
        soon = [path.price_at(symbol, t) for t in quiet]
        later = sorted(path.price_at(symbol, t) for t in crossing)
        if later[2] < min(soon):
            return symbol, "BUY", later[2]
        if later[-3] > max(soon):
            return symbol, "SELL", later[-3]
    return None


QTY = {"BTCUSDT": "0.002", "ETHUSDT": "0.010", "SOLUSDT": "1", "DOGEUSDT": "100", "BNBUSDT": "0.05", "XRPUSDT": "10.0"}


def place_then_kill(port: int, proc: subprocess.Popen[bytes], order: dict[str, str], now: int) -> tuple[Any, int]:
    """POST the order (signed at ``now``), then kill -9 the venue at once: (its answer, when it was dead)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY_HEADER) as client:
        ack = client.post(f"/fapi/v1/order?{signed(order, now)}").json()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return ack, int(time.time() * 1000)


def query_order(port: int, symbol: str, client_id: str) -> Any:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=KEY_HEADER) as client:
        query = {"symbol": symbol, "origClientOrderId": client_id}
        return client.get(f"/fapi/v1/order?{signed(query, int(time.time() * 1000))}").json()


@pytest.mark.e2e
def test_an_order_acked_before_kill_9_fills_while_the_venue_is_down(tmp_path: Path) -> None:
    """Ack -> kill -9 at once -> the path crosses while the process is dead -> restart: FILLED."""
    # Arrange
    state_dir, port = tmp_path / "state", free_port()
    proc = spawn(state_dir, port)
    try:
        wait_listening(port, proc)
        now = int(time.time() * 1000)
        plan = crossing_plan(state_dir, now)
        assert plan is not None, "no symbol's path crosses in the next seconds (seed/volatility too tame)"
        symbol, side, limit = plan
        order = {**ENTRY, "symbol": symbol, "side": side, "quantity": QTY[symbol], "price": str(limit)}

        # Act
        ack, killed_at = place_then_kill(port, proc, order, now)
        while int(time.time() * 1000) < now + CROSS_BY_MS + 500:  # the crossing happens meanwhile
            time.sleep(0.1)
        proc = spawn(state_dir, port)
        wait_listening(port, proc)
        found = query_order(port, symbol, ENTRY["newClientOrderId"])
    finally:
        proc.kill()
        proc.wait(10)

    # Assert
    assert ack["status"] == "NEW"
    assert (found["status"], found["executedQty"]) == ("FILLED", order["quantity"]), found
    assert killed_at < now + QUIET_MS  # the venue was dead before the path could cross
    assert killed_at < found["updateTime"] <= now + CROSS_BY_MS  # so it filled while it was dead
