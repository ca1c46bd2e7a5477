"""`bot run` as a process: one daemon per state dir, a clean exit on SIGTERM, and a venue
that is down at start waited for, not an exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot_cli.state_store import DaemonLock, PendingEntryStore, lock_holder


pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    (tmp / "bot.toml").write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\n")
    env = {**os.environ, "BOT_CONFIG": str(tmp / "bot.toml"), "BOT_STATE_DIR": str(tmp / "state"),
           "BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64}
    log = tmp / f"run{len(list(tmp.glob('run*.log')))}.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "bot_cli", "run", "--no-live", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], limit_s: float = 20) -> None:
    end = time.monotonic() + limit_s
    while text not in log.read_text():
        if proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"no {text!r} in the daemon's log:\n{log.read_text()}")
        time.sleep(0.05)


def test_sigterm_shuts_down_cleanly_and_releases_the_lock(tmp_path: Path) -> None:
    """SIGTERM: exit 0, the lock is free again, the journal reads without warnings."""
    proc, log = start(tmp_path)
    try:
        wait_for(log, "reconciled (stream connected)", proc)
        assert lock_holder(tmp_path / "state") == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    text = log.read_text()
    assert "shutting down" in text
    assert "Traceback" not in text
    assert lock_holder(tmp_path / "state") is None
    with PendingEntryStore(tmp_path / "state") as store:
        store.load_all()
        assert store.warnings == []


def test_a_second_daemon_on_the_same_state_dir_names_the_first(tmp_path: Path) -> None:
    """A second `bot run` exits 1 naming the holder's pid; the first keeps running."""
    first, log = start(tmp_path)
    try:
        wait_for(log, "reconciled (stream connected)", first)
        env = {**os.environ, "BOT_CONFIG": str(tmp_path / "bot.toml"), "BOT_STATE_DIR": str(tmp_path / "state")}
        second = subprocess.run([sys.executable, "-m", "bot_cli", "run", "--no-live"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(20)


def test_refused_keys_are_one_line_and_never_printed(tmp_path: Path) -> None:
    """The binance venue with keys the exchange refuses: exit 1, one line, no key or secret anywhere."""
    port = free_port()
    state = tmp_path / "state"
    (tmp_path / "bot.toml").write_text(
        f"[venue]\nkind = 'binance'\nrest_url = 'http://127.0.0.1:{port}'\nws_url = 'ws://127.0.0.1:{port}/private'\n"
        f"[paper]\nport = {port}\n"
    )
    env = {**os.environ, "BOT_CONFIG": str(tmp_path / "bot.toml"), "BOT_STATE_DIR": str(state),
           "BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64}
    with (tmp_path / "paper.log").open("wb") as out:  # a stand-in exchange that knows other keys
        venue = subprocess.Popen([sys.executable, "-m", "bot_cli", "--state-dir", str(tmp_path / "venue"),
                                  "paper", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(tmp_path / "paper.log", "paper venue on", venue)
        run = subprocess.run([sys.executable, "-m", "bot_cli", "run", "--no-live"], env=env,
                             capture_output=True, text=True, timeout=60)
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.wait(20)
    assert run.returncode == 1
    assert "cannot talk to the binance testnet venue" in run.stderr
    assert "Traceback" not in run.stderr
    written = [p.read_text(errors="replace") for p in state.rglob("*") if p.is_file()]
    for text in (run.stdout, run.stderr, *written):
        assert "k" * 16 not in text
        assert "s" * 16 not in text


def env_for(tmp: Path) -> dict[str, str]:
    return {**os.environ, "BOT_CONFIG": str(tmp / "bot.toml"), "BOT_STATE_DIR": str(tmp / "state")}


def wait_file(path: Path, proc: subprocess.Popen[bytes], log: Path, limit_s: float = 30) -> None:
    end = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"no {path} from the daemon; its log:\n{log.read_text()}")
        time.sleep(0.05)


def unreachable_config(tmp: Path) -> int:
    """A config whose venue is a URL on a free port: nothing answers until a venue is started there."""
    port = free_port()
    (tmp / "bot.toml").write_text(
        f"[venue]\nrest_url = 'http://127.0.0.1:{port}'\nws_url = 'ws://127.0.0.1:{port}/private'\n"
        f"position_mode = 'one-way'\n[paper]\nport = {port}\nvolatility = 0.0\n"
    )
    return port


def test_run_waits_for_a_venue_that_is_down_at_start(tmp_path: Path) -> None:
    """The venue down at start: bot run logs each try (JSON, event venue_unreachable) and keeps
    trying with backoff; once `bot paper serve` answers there it reconciles and is ready."""
    unreachable_config(tmp_path)
    ready = tmp_path / "ready.json"
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "bot_cli", "run", "--no-live", "--log-format", "json",
                                "--ready-file", str(ready)], env=env_for(tmp_path), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    venue = None
    try:
        wait_for(log, "trying again in", run)
        assert not ready.exists()
        with (tmp_path / "venue.log").open("wb") as out:
            venue = subprocess.Popen([sys.executable, "-m", "bot_cli", "--state-dir", str(tmp_path / "venue"),
                                      "paper", "serve"], env=env_for(tmp_path), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        wait_file(ready, run, log)
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0
    finally:
        run.kill()
        if venue is not None:
            venue.send_signal(signal.SIGTERM)
            venue.wait(20)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    tries = [d for d in lines if d.get("event") == "venue_unreachable"]
    assert tries
    assert all(d["level"] == "WARNING" and "cannot reach the paper venue" in d["msg"] for d in tries)
    assert any(d.get("event") == "reconciled" for d in lines)


def test_sigterm_ends_the_wait_for_the_venue_at_once(tmp_path: Path) -> None:
    """SIGTERM while waiting for the venue: exit 0 within a second, the lock released."""
    unreachable_config(tmp_path)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "bot_cli", "run", "--no-live"], env=env_for(tmp_path),
                               stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(log, "trying again in", run)
        run.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert run.wait(10) == 0
        assert time.monotonic() - started < 1.5
    finally:
        run.kill()
    assert "Traceback" not in log.read_text()
    assert lock_holder(tmp_path / "state") is None


def test_a_run_that_finds_the_lock_held_says_at_once_whom_it_waits_for(tmp_path: Path) -> None:
    """A short command holds the state dir: bot run names its pid at once, then starts when
    it lets go."""
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\n")
    ready, log = tmp_path / "ready.json", tmp_path / "run.log"
    with DaemonLock(tmp_path / "state"):
        with log.open("wb") as out:
            run = subprocess.Popen([sys.executable, "-m", "bot_cli", "run", "--no-live", "--ready-file", str(ready)],
                                   env=env_for(tmp_path), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for(log, f"waiting up to 10s for pid {os.getpid()}", run, limit_s=5)
        except BaseException:
            run.kill()
            raise
    try:
        wait_file(ready, run, log)
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0
    finally:
        run.kill()
