"""`bot paper serve|price|orders|faults`: serving, and against a running venue or one started for the
command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from bot_cli.cli import paper
from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError
from bot_cli.paper.server import PaperHandle, is_listening, start_in_process


def root_app() -> typer.Typer:
    """The paper sub-app under a root like the real one (the lead registers it in bot_cli.cli)."""
    root = typer.Typer()

    @root.callback()
    def _global(
        ctx: typer.Context, state_dir: Path = Path("state"), config: Path | None = None
    ) -> None:
        ctx.obj = AppContext(state_dir, config)

    root.add_typer(paper.app, name="paper")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(
        f'[paper]\nhost = "127.0.0.1"\nport = {port}\nvolatility = 0.0\n', encoding="utf-8"
    )
    return path


def invoke(tmp_path: Path, port: int, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    base = [
        "--state-dir",
        str(tmp_path / "state"),
        "--config",
        str(config(tmp_path, port)),
        "paper",
    ]
    result = runner.invoke(root_app(), [*base, *args], catch_exceptions=True)
    if isinstance(result.exception, BotError):
        return 1, result.stdout, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@contextlib.contextmanager
def venue_in_thread(state_dir: Path, port: int) -> Iterator[PaperHandle]:
    """A running venue on ``port`` in its own thread and event loop (like `bot paper serve`)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, PaperHandle] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        box["handle"] = loop.run_until_complete(
            start_in_process(state_dir, port=port, volatility=0.0)
        )
        ready.set()
        loop.run_forever()
        loop.run_until_complete(box["handle"].stop())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(20), "the venue thread did not start"
    try:
        yield box["handle"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)
        loop.close()


def test_price_and_orders_start_a_venue_for_the_command_when_none_runs(tmp_path: Path) -> None:
    """No venue listening: `price` moves the price in the state dir; `orders --json` shows it."""
    # Arrange
    port = free_port()

    # Act
    code_price, out_price, _ = invoke(tmp_path, port, "price", "ethusdt", "2500.5")
    code_orders, out_orders, _ = invoke(tmp_path, port, "orders", "--json")

    # Assert
    assert (code_price, out_price.strip()) == (0, "ETHUSDT now 2500.50")
    state = json.loads(out_orders)
    assert code_orders == 0
    assert state["prices"]["ETHUSDT"] == "2500.50"
    assert (tmp_path / "state" / "paper" / "exchange.json").exists()


def test_commands_talk_to_the_running_venue(tmp_path: Path) -> None:
    """With a venue listening, faults and prices are set on it and seen by the next command."""
    # Arrange
    port = free_port()

    # Act
    with venue_in_thread(tmp_path / "state", port) as handle:
        code_add, out_add, _ = invoke(
            tmp_path, port, "faults", "lost_response:order:once", "late_visibility:2"
        )
        code_show, out_show, _ = invoke(tmp_path, port, "faults")
        code_clear, out_clear, _ = invoke(tmp_path, port, "faults", "--clear")
        invoke(tmp_path, port, "price", "BTCUSDT", "90000")
        code_table, out_table, _ = invoke(tmp_path, port, "orders")
        live_price = handle.exchange.snapshot()["prices"]["BTCUSDT"]

    # Assert
    assert code_add == code_show == code_clear == code_table == 0
    assert "faults on: lost_response:order:once, late_visibility:2" in out_add
    assert "lost_response:order:once" in out_show
    assert "no faults on" in out_clear
    assert live_price == "90000.00"
    assert "90000.00" in out_table


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    """A price that is not a number and an unknown fault are refused with a sentence, exit 1."""
    # Arrange
    port = free_port()

    # Act
    code_price, _, err_price = invoke(tmp_path, port, "price", "BTCUSDT", "lots")
    code_fault, _, err_fault = invoke(tmp_path, port, "faults", "bogus")

    # Assert
    assert code_price == 1
    assert "not a number" in err_price
    assert code_fault == 1
    assert "unknown fault" in err_fault


def test_price_and_faults_print_one_json_document_with_json(tmp_path: Path) -> None:
    """--json: price and faults print one JSON document on stdout (running venue)."""
    # Arrange
    port = free_port()

    # Act
    with venue_in_thread(tmp_path / "state", port):
        _, out_price, _ = invoke(tmp_path, port, "price", "btcusdt", "90000", "--json")
        _, out_add, _ = invoke(
            tmp_path, port, "faults", "--json", "lost_response:order:once", "drop_stream"
        )
        _, out_show, err_show = invoke(tmp_path, port, "faults", "--json")

    # Assert
    assert json.loads(out_price) == {"symbol": "BTCUSDT", "price": "90000.00"}
    assert json.loads(out_add) == {"faults": ["lost_response:order:once"], "ran": ["drop_stream"]}
    assert json.loads(out_show) == {"faults": ["lost_response:order:once"], "ran": []}
    assert err_show == ""  # a running venue was used: nothing to say


def test_faults_set_with_no_venue_running_are_saved_and_said_so(tmp_path: Path) -> None:
    """No venue: the command opens the state itself (one stderr line); the switch is saved."""
    # Arrange
    port = free_port()

    # Act
    code_add, out_add, err_add = invoke(tmp_path, port, "faults", "--json", "unknown_503:order")
    with venue_in_thread(tmp_path / "state", port) as handle:
        live = handle.exchange.faults.specs()

    # Assert
    assert code_add == 0
    assert json.loads(out_add)["faults"] == ["unknown_503:order"]
    assert err_add.count("\n") == 1
    assert "started the paper venue in this process for this command" in err_add
    assert "faults are saved" in err_add
    assert f"none answers on 127.0.0.1:{port}" in err_add
    assert live == ["unknown_503:order"]


@pytest.mark.e2e
@pytest.mark.parametrize("flags", [(), ("--access-log",)], ids=["quiet", "access-log"])
def test_serve_prints_a_line_per_request_only_with_access_log(tmp_path: Path, flags: tuple[str, ...]) -> None:
    """`bot paper serve` says that it started; a line per request only with --access-log."""
    # Arrange
    port = free_port()
    command = [sys.executable, "-m", "bot_cli", "--state-dir", str(tmp_path / "state"),
               "--config", str(config(tmp_path, port)), "paper", "serve", *flags]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # Act
    try:
        deadline = time.monotonic() + 20
        while not is_listening("127.0.0.1", port):
            assert proc.poll() is None, "bot paper serve exited at start"
            assert time.monotonic() < deadline, "bot paper serve did not start listening"
            time.sleep(0.05)
        answer = httpx.get(f"http://127.0.0.1:{port}/fapi/v1/time", timeout=5)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)

    # Assert
    assert answer.status_code == 200
    assert f"paper venue on http://127.0.0.1:{port}" in output
    assert ("GET /fapi/v1/time" in output) is bool(flags)
