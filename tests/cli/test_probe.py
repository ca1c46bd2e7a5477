"""`bot probe` refuses, sending nothing, where an experiment would be unsafe or meaningless:
a live account without --allow-live, an unknown probe, a symbol the bot or someone else uses,
a state dir a daemon holds. (What each probe finds on the paper venue: tests/e2e/test_deadman.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.state_store import DaemonLock
from tests.e2e.harness import BOT, cluster_at


LIVE = '[venue]\nkind = "binance"\nnetwork = "live"\nallow_live = true\n'


def probe(tmp_path: Path, config: str, *args: str) -> tuple[int, str]:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(config, encoding="utf-8")
    keys = {"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64}
    result = CliRunner(env=keys).invoke(app, ["--state-dir", str(tmp_path / "state"), "--config", str(cfg),
                                               "probe", *args])  # fmt: skip
    return result.exit_code, result.output


def test_a_live_account_is_probed_only_with_allow_live(tmp_path: Path) -> None:
    code, said = probe(tmp_path, LIVE, "deadman")

    assert code == 1
    assert "this config trades real money: `bot probe` places small orders on it only with --allow-live" in said
    assert not (tmp_path / "state").exists()


def test_a_live_account_asks_first_and_a_no_sends_nothing(tmp_path: Path) -> None:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(LIVE, encoding="utf-8")
    keys = {"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64}

    result = CliRunner(env=keys).invoke(app, ["--state-dir", str(tmp_path / "state"), "--config", str(cfg), "probe",
                                              "--allow-live"], input="n\n")  # fmt: skip

    assert result.exit_code == 1
    assert "on the LIVE account" in result.output
    assert not (tmp_path / "state").exists()


def test_an_unknown_probe_is_named(tmp_path: Path) -> None:
    code, said = probe(tmp_path, "", "deadman", "countdown")

    assert code == 1
    assert "unknown probe countdown; known: deadman, gte-gtc, stop-before-position" in said


@pytest.mark.e2e
def test_a_symbol_with_orders_that_are_not_the_bots_and_a_daemon_holding_the_state_dir_are_refused(
    tmp_path: Path,
) -> None:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        c.set_price("BTCUSDT", "97000")
        c.by_hand("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.002",
                  price="80000", timeInForce="GTC", newClientOrderId="by-hand-1")  # fmt: skip

        busy = subprocess.run([BOT, "probe", "deadman"], env=c.env, cwd=c.root, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        with DaemonLock(c.state_dir):
            held = subprocess.run([BOT, "probe", "deadman", "--symbol", "ETHUSDT"], env=c.env, cwd=c.root,
                                  capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

        assert busy.returncode == 1
        assert busy.stderr.strip() == ("error: BTCUSDT has 1 open regular order(s): the probe's countdown would cancel"
                                       " them; probe another symbol (--symbol)")  # fmt: skip
        assert held.returncode == 1
        assert "stop it before probing" in held.stderr
        assert [o["clientOrderId"] for o in c.state()["openOrders"]] == ["by-hand-1"]
        assert c.state()["openAlgoOrders"] == []
