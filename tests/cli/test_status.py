"""`bot status`: the daemon from the lock and its heartbeat, the entries and the exposure, and the
exit codes a monitor reads (0 healthy, 10 no daemon, 11 stale, 12 needs a person).

Most cases write the heartbeat file directly and hold the lock with a small process of their own;
one runs a real `bot run` against `bot paper serve`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.core.engine import open_entry, step
from bot_cli.core.events import EntryAccepted, EntryFilled
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.ops.status import ATTENTION, HEALTHY, NO_DAEMON, STALE, Beat, classify
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


runner = CliRunner()
NOW = 1_764_000_000_000
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"),
                 Decimal("63000.0"), Decimal("66000.0"))
STALE_MS = 15_000


def bot(state: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--state-dir", str(state), "status", *args])
    return result.exit_code, result.stdout, result.stderr


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def beat(pid: int, *, age_s: float = 1.0, entries: dict[str, int] | None = None,
         exposure: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A heartbeat as the daemon writes it (runtime/heartbeat.py), written ``age_s`` ago."""
    written = now_ms() - int(age_s * 1000)
    return {
        "pid": pid, "venue": "paper", "started_at": written - 3_600_000, "written_at": written,
        "stream": {"connected": True, "since": written - 60_000}, "last_event_at": written - 5_000,
        "last_reconcile": {"at": written - 60_000, "why": "stream connected", "entries": 1, "acted": 0,
                           "calls": 2, "needs_attention": 0},
        "entries": {"PROTECTED": 1} if entries is None else entries,
        "exposure": [covered_exposure()] if exposure is None else exposure,
    }


def covered_exposure(sl: str = "0.010") -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "side": "BUY", "position_side": "BOTH", "share": "0.010",
            "stop_loss": sl, "take_profit": "0.010", "entries": 1, "covered": Decimal(sl) >= Decimal("0.010")}


def write_beat(state: Path, payload: dict[str, Any]) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "heartbeat.json").write_text(json.dumps(payload))


HOLD = """
import os, sys, time
from bot_cli.state_store import DaemonLock
with DaemonLock(sys.argv[1]):
    print(os.getpid(), flush=True)
    time.sleep(120)
"""

# The lock's holder forks and exits without releasing: the child keeps the flock, the lock
# file names the dead parent ("pid dead while the lock says held").
ORPHAN = """
import os, sys, time
from bot_cli.state_store import DaemonLock
lock = DaemonLock(sys.argv[1]).__enter__()
child = os.fork()
if child == 0:  # let go of the caller's pipes, keep the lock
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    time.sleep(120)
    os._exit(0)
print(os.getpid(), child, flush=True)
os._exit(0)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[int]:
    """A process holding the state dir's lock; its pid."""
    state = tmp_path / "state"
    with subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            yield int(proc.stdout.readline())
        finally:
            proc.kill()


def save_entries(state: Path, *, filled: bool) -> str:
    """One entry in the journal: OPEN, or filled with its legs still being sent (uncovered)."""
    pid = "bc0aaaaaaaaaaaaa"
    p, _ = open_entry(pid, SPEC, NOW, 5000)  # type: ignore[arg-type]
    p, _ = step(p, EntryAccepted(p.pending_id, 1), NOW + 1)
    if filled:
        p, _ = step(p, EntryFilled(p.pending_id, 1, Decimal("0.010"), Decimal("64000.0")), NOW + 2)
    with PendingEntryStore(state) as store:
        store.save(pid, encode(p))
    return pid


# -- the daemon's state, decided from the lock and the heartbeat ----------------------------


def b(pid: int, age_ms: int) -> Beat:
    return Beat(pid, NOW - age_ms, NOW - 3_600_000, {})


@pytest.mark.parametrize(("holder_pid", "heartbeat", "alive", "code", "words"), [
    pytest.param(None, None, True, NO_DAEMON, "no daemon is running on this state dir", id="lock free, no heartbeat"),
    pytest.param(None, b(7, 60_000), True, STALE, "did not stop cleanly", id="lock free, heartbeat left by a kill"),
    pytest.param(7, None, True, NO_DAEMON, "process 7 holds the state dir", id="a one-shot command holds it"),
    pytest.param(7, b(8, 1000), True, NO_DAEMON, "process 7 holds", id="the heartbeat is another process's"),
    pytest.param(7, b(7, 1000), True, HEALTHY, "", id="fresh heartbeat from the holder"),
    pytest.param(7, b(7, STALE_MS + 1), True, STALE, "heartbeat 15s ago", id="heartbeat older than 3 beats"),
    pytest.param(7, b(7, 1000), False, STALE, "pid 7 that is not alive", id="the lock's pid is dead"),
    pytest.param(0, None, True, STALE, "a process that wrote no pid", id="the lock holds no pid"),
])
def test_the_daemon_state_table(holder_pid: int | None, heartbeat: Beat | None, alive: bool, code: int,
                                words: str) -> None:
    """Each combination of lock holder, heartbeat and liveness gives one state and one line."""
    d = classify(holder_pid, heartbeat, NOW, lambda _: alive, STALE_MS)
    assert d.code == code
    assert words in d.note


# -- through the command line -----------------------------------------------------------


def test_a_healthy_daemon_exits_0_and_names_its_pid(tmp_path: Path, holder: int) -> None:
    """Fresh heartbeat from the lock's holder: exit 0; the pid, how to stop it, stream, reconcile."""
    state = tmp_path / "state"
    write_beat(state, beat(holder))
    code, out, err = bot(state)
    assert (code, err) == (0, "")
    assert f"daemon: running, pid {holder} (stop it with `kill {holder}`), up 60m, venue paper" in out
    assert "stream: connected since" in out
    assert "(61s ago)" in out
    assert "last reconcile:" in out
    assert "(stream connected): 1 entries, 0 acted on, 2 calls" in out
    assert "entries: 1 PROTECTED (from the daemon)" in out
    assert "BTCUSDT" in out
    assert "yes" in out.splitlines()[-1]


def test_json_carries_the_daemon_and_the_exit_code(tmp_path: Path, holder: int) -> None:
    """--json: the daemon's fields, where the entries come from, the problems and the exit code."""
    write_beat(tmp_path / "state", beat(holder))
    code, out, _ = bot(tmp_path / "state", "--json")
    doc = json.loads(out)
    assert code == doc["exit_code"] == 0
    assert doc["daemon"]["state"] == "running"
    assert doc["daemon"]["pid"] == holder
    assert doc["daemon"]["venue"] == "paper"
    assert doc["daemon"]["stream"]["connected"] is True
    assert 3599 < doc["daemon"]["uptime_seconds"] < 3700
    assert doc["source"] == "heartbeat"
    assert doc["entries"] == {"PROTECTED": 1}
    assert doc["problems"] == []


def test_a_stale_heartbeat_exits_11(tmp_path: Path, holder: int) -> None:
    """The holder's heartbeat is 20 s old: exit 11, one line saying it may be hung and its pid."""
    state = tmp_path / "state"
    write_beat(state, beat(holder, age_s=20))
    code, out, err = bot(state)
    assert code == STALE == 11
    assert err == (f"warning: the daemon (pid {holder}) last wrote its heartbeat 20s ago: it may be hung;"
                   f" `kill {holder}` and start `bot run`\n")
    assert "daemon: stale" in out


def test_a_lock_held_for_a_dead_pid_exits_11(tmp_path: Path) -> None:
    """The lock file names a pid that is gone while the lock is still held (inherited): exit 11."""
    state = tmp_path / "state"
    done = subprocess.run([sys.executable, "-c", ORPHAN, str(state)], capture_output=True, text=True, check=True)
    parent, child = map(int, done.stdout.split())
    try:
        code, _, err = bot(state)
    finally:
        os.kill(child, signal.SIGKILL)
    assert code == 11
    assert err.startswith(f"warning: the state dir's lock is held, but by pid {parent} that is not alive")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("entries", "exposure", "words"), [
    pytest.param({"NEEDS_ATTENTION": 1}, [], "1 entry NEEDS_ATTENTION", id="an entry needs attention"),
    pytest.param({"PROTECTING": 1}, [covered_exposure(sl="0")], "BTCUSDT BUY share 0.010 is covered by a "
                 "stop-loss of only 0", id="a share is not covered"),
])
def test_something_for_a_person_exits_12(tmp_path: Path, holder: int, entries: dict[str, int],
                                         exposure: list[dict[str, Any]], words: str) -> None:
    """An entry NEEDS_ATTENTION, or a share with less stop-loss than itself: exit 12, one line."""
    state = tmp_path / "state"
    write_beat(state, beat(holder, entries=entries, exposure=exposure))
    code, out, err = bot(state)
    assert code == ATTENTION == 12
    assert err.startswith("warning: ")
    assert words in err
    assert err.count("\n") == 1
    if exposure:
        assert "NO: uncovered" in out


def test_a_position_no_entry_holds_exits_12_and_is_named(tmp_path: Path, holder: int) -> None:
    """The daemon's heartbeat lists a part of a position held by no entry: exit 12, one line,
    and the report names it (it is not the bot's, and nothing of the bot protects it)."""
    state = tmp_path / "state"
    extra = {"symbol": "ETHUSDT", "position_side": "BOTH", "side": "SELL", "quantity": "0.30", "position": "-0.30"}
    write_beat(state, {**beat(holder), "unclaimed": [extra]})

    code, out, err = bot(state)
    _, doc, _ = bot(state, "--json")

    assert code == ATTENTION
    assert err == ("warning: ETHUSDT BOTH: SELL 0.30 of the position -0.30 is held by no entry: nothing of"
                   " the bot protects it\n")
    assert "NOT the bot's: ETHUSDT BOTH SELL 0.30" in out
    assert json.loads(doc)["unclaimed"] == [extra]


def test_an_unreadable_record_exits_12_with_a_daemon(tmp_path: Path, holder: int) -> None:
    """The daemon skips what it cannot read; status reads the journal for it."""
    state = tmp_path / "state"
    write_beat(state, beat(holder))
    with PendingEntryStore(state) as store:
        store.save("seed-1", {"symbol": "ETHUSDT"})
    code, out, err = bot(state)
    assert code == 12
    assert "1 journal record(s) UNREADABLE" in err
    assert "unreadable journal records: 1" in out


def test_no_daemon_exits_10_and_still_shows_the_journal(tmp_path: Path) -> None:
    """No lock holder: exit 10, one line; the journal's entries and exposure, from the journal."""
    state = tmp_path / "state"
    save_entries(state, filled=True)
    code, out, err = bot(state, "--json")
    doc = json.loads(out)
    assert code == doc["exit_code"] == NO_DAEMON == 10
    assert err == "warning: no daemon is running on this state dir: start `bot run`\n"
    assert doc["daemon"] == {"state": "none", "pid": None, "note": err[len("warning: "):-1]}
    assert doc["source"] == "journal"
    assert sum(doc["entries"].values()) == 1
    (x,) = doc["exposure"]
    assert (x["symbol"], x["share"], x["covered"]) == ("BTCUSDT", "0.010", False)
    assert doc["problems"] == ["BTCUSDT BUY share 0.010 is covered by a stop-loss of only 0"]


def test_a_daemon_killed_without_stopping_cleanly_exits_11_and_its_exposure_is_unknown(tmp_path: Path) -> None:
    """kill -9 leaves the heartbeat and frees the lock: the daemon is gone and nothing follows
    fills. The journal cannot say what filled since, so the exposure is not "none"."""
    state = tmp_path / "state"
    save_entries(state, filled=False)
    write_beat(state, beat(4_000_000, age_s=30))

    code, out, err = bot(state)

    assert code == STALE == 11
    assert "did not stop cleanly" in err
    assert "exposure: unknown" in out
    assert "exposure: none" not in out


def test_a_missing_state_dir_is_no_daemon_and_is_not_created(tmp_path: Path) -> None:
    """A read-only look: nothing is created."""
    code, out, err = bot(tmp_path / "nowhere")
    assert code == 10
    assert "daemon: none" in out
    assert err.count("\n") == 1
    assert not (tmp_path / "nowhere").exists()


# -- a real daemon ----------------------------------------------------------------------


@pytest.mark.e2e
def test_a_running_bot_run_is_healthy_then_gone(tmp_path: Path) -> None:
    """`bot run` against `bot paper serve`: exit 0 with its pid and the stream connected; after
    SIGTERM the heartbeat is removed and status says no daemon (10)."""
    from tests.cli.test_cancel_close import start_daemon, stop
    from tests.cli.test_enter import start_venue, stop_venue, wait_for

    venue = start_venue(tmp_path)
    state = tmp_path / "state"
    try:
        daemon = start_daemon(venue, state, tmp_path)
        try:
            def reconciled() -> tuple[int, dict[str, Any], str] | None:
                code, out, err = bot(state, "--json")  # beats every 5 s: the first may precede it
                doc = json.loads(out)
                return (code, doc, err) if doc["daemon"].get("last_reconcile") else None

            found = wait_for(reconciled, "a heartbeat after the first reconcile")
            assert found is not None
            code, doc, err = found
            assert code == 0, err
            assert doc["daemon"]["pid"] == daemon.pid
            assert doc["daemon"]["stream"]["connected"] is True
        finally:
            stop(daemon)
        assert not (state / "heartbeat.json").exists()
        assert bot(state)[0] == 10
    finally:
        stop_venue(venue)
