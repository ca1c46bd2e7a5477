"""Config: TOML into frozen dataclasses; every error names the key and the file.

`bot config check` says whether a set-up is ready; --online asks a `bot paper serve` here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.config import Config, credentials, load_config
from bot_cli.core.model import TriggerPolicy
from bot_cli.errors import ConfigError
from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return path


def test_no_file_means_the_paper_venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without bot.toml the defaults run on the embedded paper venue."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.venue.kind == "paper"
    assert cfg.rest_url() == "http://127.0.0.1:18765"


def test_the_example_file_is_valid_and_documents_every_key() -> None:
    """bot.toml.example loads, and every key of every section appears in it."""
    example = Path(__file__).parents[2] / "bot.toml.example"
    cfg = load_config(example)
    text = example.read_text()
    for section in ("venue", "protection", "paper", "demo", "notify", "inbox"):
        for key in type(getattr(cfg, section)).__dataclass_fields__:
            assert f"\n{key} = " in text, f"{section}.{key} is not documented in bot.toml.example"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[venue]\nkind = 'kraken'\n", "venue.kind = 'kraken' is not one of paper, binance"),
        ("[venue]\nrecv_windw_ms = 5000\n", "unknown key venue.recv_windw_ms"),
        ("[venu]\n", "unknown section [venu]"),
        ("[venue]\nrecv_window_ms = '5000'\n", "venue.recv_window_ms must be int, got str"),
        ("[protection]\non_immediate_trigger = 'ignore'\n", "not one of close, alert"),
        ("[venue]\nkind = 'binance'\nnetwork = 'live'\n", "set venue.allow_live = true"),
        ("[venue]\nrecv_window_ms = 0\n", "between 1 and 60000"),
        ("[venue\n", "is not valid TOML"),
        ("[paper]\nport = 70000\n", "paper.port = 70000 is not a TCP port (1 to 65535)"),
        ("[inbox]\nport = 0\n", "inbox.port = 0 is not a TCP port"),
    ],
    ids=["bad choice", "typo in a key", "typo in a section", "wrong type", "bad policy", "live without opt-in",
         "recv window out of range", "broken TOML", "paper port out of range", "inbox port zero"],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    """A bad config is one clear error naming what is wrong and where."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    """--config pointing nowhere is refused, not silently replaced by defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_live_trading_needs_the_explicit_opt_in(tmp_path: Path) -> None:
    """network = live with allow_live = true loads, with Binance's live URLs."""
    cfg = load_config(write(tmp_path, "[venue]\nkind = 'binance'\nnetwork = 'live'\nallow_live = true\n"))
    assert cfg.rest_url() == "https://fapi.binance.com"
    assert cfg.ws_url() == "wss://fstream.binance.com/private"


def test_policy_comes_from_the_protection_section(tmp_path: Path) -> None:
    """on_immediate_trigger and the timing knobs reach the engine's Policy."""
    cfg = load_config(write(tmp_path, "[protection]\non_immediate_trigger = 'alert'\nrecheck_ms = 750\n"))
    assert cfg.policy.on_immediate_trigger is TriggerPolicy.ALERT
    assert cfg.policy.recheck_ms == 750


def test_credentials_come_from_the_environment_and_never_print() -> None:
    """Keys are read from BOT_API_KEY/BOT_API_SECRET; their repr hides both."""
    creds = credentials({"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64})
    assert creds.api_key == "k" * 64
    assert "k" * 8 not in repr(creds)
    assert "s" * 8 not in repr(creds)
    with pytest.raises(ConfigError, match="BOT_API_KEY and BOT_API_SECRET"):
        credentials({})


# --- bot config check -------------------------------------------------------------------------


def check(tmp_path: Path, text: str | None, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    """`bot config check --json ARGS` with ``text`` as the config (None: no file)."""
    argv = ["--state-dir", str(tmp_path / "state")]
    if text is not None:
        argv += ["--config", str(write(tmp_path, text))]
    unset = dict.fromkeys(("BOT_API_KEY", "BOT_API_SECRET", "BOT_CONFIG", "BOT_TELEGRAM_TOKEN", "BOT_INBOX_SECRET"))
    runner = CliRunner(env={**unset, **env})
    result = runner.invoke(app, [*argv, "config", "check", "--json", *args])
    doc = json.loads(result.stdout)
    return result.exit_code, {c["name"]: c for c in doc["checks"]}, result.stderr


def test_check_passes_a_good_config(tmp_path: Path) -> None:
    """A valid paper config: every check ok, exit 0, nothing on stderr."""
    code, checks, err = check(tmp_path, "[venue]\nposition_mode = 'one-way'\n")
    assert (code, err) == (0, "")
    assert {n: c["result"] for n, c in checks.items()} == {"config": "ok", "keys": "ok", "state dir": "ok"}


@pytest.mark.parametrize(
    ("text", "env", "failed", "detail"),
    [("[venue]\nkind = 'kraken'\n", {}, "config", "is not one of paper, binance"),
     ("[venue]\nkind = 'binance'\n", {}, "keys", "BOT_API_KEY and BOT_API_SECRET not set"),
     ("[venue]\nkind = 'binance'\n", {"BOT_API_KEY": "k"}, "keys", "BOT_API_SECRET not set"),
     ("[notify]\ntelegram_chat_id = '-100'\n", {}, "notify", "BOT_TELEGRAM_TOKEN is not set"),
     ("[inbox]\nenabled = true\n", {}, "inbox", "BOT_INBOX_SECRET is not set")],
    ids=["bad value", "no keys", "no secret", "telegram without its token", "inbox without its secret"],
)  # fmt: skip
def test_check_fails_a_bad_config(tmp_path: Path, text: str, env: dict[str, str], failed: str, detail: str) -> None:
    """What is wrong is a FAIL row naming it; exit 1 with one line on stderr."""
    code, checks, err = check(tmp_path, text, **env)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert failed in err
    assert checks[failed]["result"] == "fail"
    assert detail in checks[failed]["detail"]


def test_check_reports_a_state_dir_that_cannot_work(tmp_path: Path) -> None:
    """A state dir that is a file is a FAIL row (config check is not stopped by it)."""
    (tmp_path / "state").write_text("")
    code, checks, _ = check(tmp_path, None)
    assert code == 1
    assert "not a directory" in checks["state dir"]["detail"]


def test_check_shows_what_it_found_and_never_the_keys(tmp_path: Path) -> None:
    """The table names the file and the venue; the keys' values appear nowhere."""
    path = write(tmp_path, "[venue]\nkind = 'binance'\n")
    runner = CliRunner(env={"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64})
    result = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == 0
    assert "binance testnet" in result.stdout
    assert str(path) in result.stdout
    assert "k" * 8 not in result.output
    assert "s" * 8 not in result.output


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`bot paper serve` on a free port, in its own process; yields the port."""
    with paper_serve(tmp_path_factory.mktemp("venue")) as port:
        yield port


@contextlib.contextmanager
def paper_serve(root: Path) -> Iterator[int]:
    """`bot paper serve` in ``root`` on a free port (never 18765), prices standing still; its port."""
    port = free_port()
    (root / "bot.toml").write_text(f"[paper]\nport = {port}\nvolatility = 0.0\n")
    env = {**os.environ, "BOT_CONFIG": str(root / "bot.toml")}
    with (root / "venue.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot_cli", "--state-dir", str(root / "state"), "paper", "serve"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until(lambda: answers(port, proc), f"the paper venue on {port}")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "bot paper serve exited"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/fapi/v1/time", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 20) -> None:
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binance_at(port: int, mode: str = "auto") -> str:
    """The binance venue kind, pointed at a local paper venue."""
    base = f"127.0.0.1:{port}"
    return (f"[venue]\nkind = 'binance'\nrest_url = 'http://{base}'\nws_url = 'ws://{base}/private'\n"
            f"position_mode = '{mode}'\n")


@pytest.mark.e2e
def test_online_check_of_a_running_venue(tmp_path: Path, venue: int) -> None:
    """--online against a live venue: clock, position mode, permissions, user stream all ok."""
    code, checks, err = check(tmp_path, f"[paper]\nport = {venue}\n", "--online")
    assert (code, err) == (0, "")
    for name in ("clock", "position mode", "permissions", "user stream"):
        assert checks[name]["result"] == "ok", checks[name]
    assert checks["position mode"]["detail"] == "one-way (config: auto)"


@pytest.mark.e2e
def test_online_check_catches_a_position_mode_the_account_does_not_have(tmp_path: Path, venue: int) -> None:
    """Config hedge, account one-way: a FAIL row saying what to set; exit 1."""
    code, checks, _ = check(tmp_path, f"[venue]\nposition_mode = 'hedge'\n[paper]\nport = {venue}\n", "--online")
    assert code == 1
    assert checks["position mode"]["result"] == "fail"
    assert 'set venue.position_mode = "one-way" or "auto"' in checks["position mode"]["detail"]


@pytest.mark.e2e
def test_online_check_with_keys(tmp_path: Path, venue: int) -> None:
    """The binance kind with keys the venue knows passes; with keys it refuses, the venue row fails."""
    good = {"BOT_API_KEY": PAPER_API_KEY, "BOT_API_SECRET": PAPER_API_SECRET}
    code, checks, _ = check(tmp_path, binance_at(venue), "--online", **good)
    assert code == 0
    assert checks["user stream"]["result"] == "ok"
    code, checks, _ = check(tmp_path, binance_at(venue), "--online", BOT_API_KEY="k" * 64, BOT_API_SECRET="s" * 64)
    assert code == 1
    assert checks["venue"]["result"] == "fail"
    assert "k" * 8 not in checks["venue"]["detail"]


@pytest.mark.e2e
def test_online_check_with_no_venue(tmp_path: Path) -> None:
    """No paper venue running: a warning (bot run starts one), exit 0; a binance URL that
    nothing answers: a FAIL row."""
    port = free_port()
    code, checks, _ = check(tmp_path, f"[paper]\nport = {port}\n", "--online")
    assert code == 0
    assert checks["venue"]["result"] == "warn"
    assert "`bot run` starts one" in checks["venue"]["detail"]
    code, checks, _ = check(tmp_path, binance_at(port), "--online", BOT_API_KEY="k", BOT_API_SECRET="s")
    assert code == 1
    assert f"cannot reach the binance testnet venue at http://127.0.0.1:{port}" in checks["venue"]["detail"]
