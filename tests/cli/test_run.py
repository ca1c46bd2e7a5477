"""`bot run` as a process: one daemon per state dir, a clean exit on SIGTERM, and a venue
that is down at start waited for, not an exit.

The daemon runs with `--log-format json`: the tests wait for and assert on its log records'
fields (event, why, attempt, holder_pid, ...), never on the wording of a line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot_cli.state_store import DaemonLock, PendingEntryStore, lock_holder


pytestmark = pytest.mark.e2e

Record = dict[str, Any]
RUN = [sys.executable, "-m", "bot_cli", "run", "--no-live", "--log-format", "json"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "BOT_CONFIG": str(tmp / "bot.toml"), "BOT_STATE_DIR": str(tmp / "state"), **extra}


KEYS = {"BOT_API_KEY": "k" * 64, "BOT_API_SECRET": "s" * 64}


def start(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    (tmp / "bot.toml").write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\n")
    return spawn(tmp, *args)


def spawn(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / f"run{len(list(tmp.glob('run*.log')))}.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([*RUN, *args], env=env_for(tmp, **KEYS), stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def records(log: Path) -> list[Record]:
    """The daemon's JSON log records (a line that is not one, e.g. a traceback, is skipped)."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def event(name: str, **fields: object) -> Callable[[Record], bool]:
    """A record of event `name` whose fields have the given values."""
    return lambda r: r.get("event") == name and all(r.get(k) == v for k, v in fields.items())


def wait_for(log: Path, match: Callable[[Record], bool], proc: subprocess.Popen[bytes], limit_s: float = 20) -> Record:
    """The first record that matches, once the daemon has logged it."""
    end = time.monotonic() + limit_s
    while True:
        found = next((r for r in records(log) if match(r)), None)
        if found is not None:
            return found
        if proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"no such record in the daemon's log:\n{log.read_text()}")
        time.sleep(0.05)


def wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 20) -> None:
    end = time.monotonic() + limit_s
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"nothing answers on port {port}")
        time.sleep(0.05)


def serve_paper(tmp: Path) -> subprocess.Popen[bytes]:
    """`bot paper serve` on its own state dir, at the port bot.toml names."""
    with (tmp / "venue.log").open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "bot_cli", "--state-dir", str(tmp / "venue"), "paper", "serve"],
                                env=env_for(tmp, **KEYS), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)


def test_sigterm_shuts_down_cleanly_and_releases_the_lock(tmp_path: Path) -> None:
    """SIGTERM: exit 0, the lock is free again, the journal reads without warnings."""
    proc, log = start(tmp_path)
    try:
        wait_for(log, event("reconciled", why="stream connected"), proc)
        assert lock_holder(tmp_path / "state") == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    assert any(event("shutting_down")(r) for r in records(log))
    assert [r for r in records(log) if r["level"] in ("ERROR", "CRITICAL")] == []
    assert lock_holder(tmp_path / "state") is None
    with PendingEntryStore(tmp_path / "state") as store:
        store.load_all()
        assert store.warnings == []


def test_a_start_on_an_empty_journal_reads_no_open_book(tmp_path: Path) -> None:
    """Nothing in the journal: the start's reconcile costs no request weight and no REST call."""
    proc, log = start(tmp_path)
    try:
        found = wait_for(log, event("reconciled", why="stream connected"), proc)
    finally:
        stop(proc)
    assert (found["pending"], found["calls"], found["weight"]) == (0, 0, 0)


def test_a_second_daemon_on_the_same_state_dir_names_the_first(tmp_path: Path) -> None:
    """A second `bot run` exits 1 naming the holder's pid; the first keeps running."""
    first, log = start(tmp_path)
    try:
        wait_for(log, event("reconciled", why="stream connected"), first)
        second = subprocess.run([*RUN], env=env_for(tmp_path), capture_output=True, text=True, timeout=30, check=False)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
    finally:
        stop(first)


def test_refused_keys_are_one_line_and_never_printed(tmp_path: Path) -> None:
    """The binance venue with keys the exchange refuses: exit 1, one error line, no key or secret anywhere."""
    port = free_port()
    state = tmp_path / "state"
    (tmp_path / "bot.toml").write_text(
        f"[venue]\nkind = 'binance'\nrest_url = 'http://127.0.0.1:{port}'\nws_url = 'ws://127.0.0.1:{port}/private'\n"
        f"[paper]\nport = {port}\n"
    )
    venue = serve_paper(tmp_path)  # a stand-in exchange that knows other keys
    try:
        wait_port(port, venue)
        run = subprocess.run([*RUN], env=env_for(tmp_path, **KEYS), capture_output=True, text=True, timeout=60,
                             check=False)  # fmt: skip
    finally:
        stop(venue)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "Traceback" not in run.stderr
    written = [p.read_text(errors="replace") for p in state.rglob("*") if p.is_file()]
    for text in (run.stdout, run.stderr, *written):
        assert "k" * 16 not in text
        assert "s" * 16 not in text


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
    """The venue down at start: bot run logs each try (event venue_unreachable, its attempt and
    wait) and keeps trying with backoff; once `bot paper serve` answers there it reconciles."""
    port = unreachable_config(tmp_path)
    ready = tmp_path / "ready.json"
    run, log = spawn(tmp_path, "--ready-file", str(ready))
    venue = None
    try:
        wait_for(log, event("venue_unreachable"), run)
        assert not ready.exists()
        venue = serve_paper(tmp_path)
        wait_port(port, venue)
        wait_file(ready, run, log)
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0
    finally:
        run.kill()
        if venue is not None:
            stop(venue)
    tries = [r for r in records(log) if event("venue_unreachable")(r)]
    assert [r["level"] for r in tries] == ["WARNING"] * len(tries)
    assert [r["attempt"] for r in tries] == list(range(1, len(tries) + 1))
    assert all(r["retry_in_s"] > 0 for r in tries)
    assert any(event("reconciled")(r) for r in records(log))


def test_sigterm_ends_the_wait_for_the_venue_at_once(tmp_path: Path) -> None:
    """SIGTERM while waiting for the venue: exit 0 within a second, the lock released."""
    unreachable_config(tmp_path)
    run, log = spawn(tmp_path)
    try:
        wait_for(log, event("venue_unreachable"), run)
        run.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert run.wait(10) == 0
        assert time.monotonic() - started < 1.5
    finally:
        run.kill()
    assert any(event("stopped_waiting")(r) for r in records(log))
    assert "Traceback" not in log.read_text()
    assert lock_holder(tmp_path / "state") is None


def test_a_run_that_finds_the_lock_held_says_at_once_whom_it_waits_for(tmp_path: Path) -> None:
    """A short command holds the state dir: bot run names its pid at once, then starts when
    it lets go."""
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\n")
    ready = tmp_path / "ready.json"
    with DaemonLock(tmp_path / "state"):
        run, log = spawn(tmp_path, "--ready-file", str(ready))
        try:
            wait_for(log, event("lock_wait", holder_pid=os.getpid()), run, limit_s=5)
        except BaseException:
            run.kill()
            raise
    try:
        wait_file(ready, run, log)
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0
    finally:
        run.kill()
