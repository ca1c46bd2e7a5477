"""No hidden venue: a bot command runs the paper venue in its own process only when it may own the
paper state (nothing answers, no `bot paper serve` recorded, the state's lock free). Otherwise it
stops with one line naming what is wrong, and nothing is written or sent."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot_cli.paper.persist import read_server, server_path
from bot_cli.paper.server import is_listening
from tests.e2e.harness import BOT, Cluster, cluster_at


pytestmark = pytest.mark.e2e

ENTER = ("enter", "BTCUSDT", "buy", "0.010", "--price", "60000", "--sl", "59000")
COMMANDS = (
    ENTER, ("recover", "--dry-run"), ("run", "--no-live"), ("paper", "price", "BTCUSDT", "1")
)

# Stands in for a venue process that holds the paper state but does not listen (yet): with
# "record", a `bot paper serve` between taking the lock and listening, or stuck.
HOLDER = """\
import os, sys
from pathlib import Path
from bot_cli.paper import persist
state = Path(sys.argv[1])
persist.PaperLock(state).acquire()
if sys.argv[2] == "record":
    record = persist.ServerRecord(os.getpid(), "127.0.0.1", int(sys.argv[3]), "2030-01-01T00:00:00")
    persist.record_server(state, record)
print("held", flush=True)
sys.stdin.read()
"""


def bot(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BOT, *args], env=c.env, cwd=c.root, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def files(state_dir: Path) -> dict[str, bytes]:
    """Every file of the state dir but the daemon's lock (which `bot run` takes before
    connecting); the paper state's own lock file is included."""
    return {
        str(p.relative_to(state_dir)): p.read_bytes()
        for p in sorted(state_dir.rglob("*"))
        if p.is_file() and p != state_dir / "lock"
    }


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused command (exit 1, no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]


@contextmanager
def holder(c: Cluster, mode: str) -> Iterator[int]:
    """A process holding the paper state's lock (and with mode "record", the server record)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(c.state_dir), mode, str(c.port)], cwd=c.root,
        env=c.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "held"
            yield proc.pid
        finally:
            proc.kill()


def test_a_killed_serve_is_not_replaced_by_a_venue_inside_the_command(tmp_path: Path) -> None:
    """`bot paper serve` killed -9: run, enter, recover, paper price all refuse in one line naming
    its pid and the address; no venue starts, no file changes. Restarted, it has its faults and
    takes the entry."""
    # Arrange
    with cluster_at(tmp_path) as c:
        pid = c.venue.pid  # type: ignore[union-attr]
        c.add_faults("unknown_503:algoOrder")
        c.venue.kill9()  # type: ignore[union-attr]
        before = files(c.state_dir)

        # Act
        lines = [refused(bot(c, *args)) for args in COMMANDS]
        after, listening = files(c.state_dir), is_listening("127.0.0.1", c.port)
        c.start_venue()
        shown = bot(c, "paper", "faults", "--json")
        entered = bot(c, *ENTER)
        resting = [o["clientOrderId"] for o in c.state()["openOrders"]]

    # Assert
    for line in lines:
        assert f"run by `bot paper serve` (pid {pid}, no longer running)" in line
        assert f"nothing answers on 127.0.0.1:{c.port}" in line
        assert "start `bot paper serve` again" in line
    assert after == before
    assert not listening
    assert json.loads(shown.stdout)["faults"] == ["unknown_503:algoOrder"]
    assert "started the paper venue" not in entered.stderr  # it went to the restarted serve
    assert len(resting) == 1, entered
    assert resting[0].endswith("-e"), entered


def test_a_recorded_serve_that_is_alive_but_does_not_answer_is_waited_for_not_replaced(tmp_path: Path) -> None:
    """A live recorded server that is not listening (restarting, stuck): refuse, name its pid."""
    # Arrange
    with cluster_at(tmp_path) as c:
        c.venue.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        c.venue.popen.wait(20)  # type: ignore[union-attr]
        with holder(c, "record") as pid:
            before = files(c.state_dir)

            # Act
            lines = [refused(bot(c, *args)) for args in COMMANDS]
            after, listening = files(c.state_dir), is_listening("127.0.0.1", c.port)

    # Assert
    for line in lines:
        assert f"`bot paper serve` (pid {pid}) but does not answer on 127.0.0.1:{c.port}" in line
    assert after == before
    assert not listening


def test_a_paper_state_held_by_another_process_is_not_opened_twice(tmp_path: Path) -> None:
    """The paper lock held by another process, nothing recorded, nothing answering: refuse."""
    # Arrange
    with cluster_at(tmp_path) as c:
        c.venue.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        c.venue.popen.wait(20)  # type: ignore[union-attr]
        with holder(c, "lock only") as pid:
            before = files(c.state_dir)

            # Act
            line = refused(bot(c, *ENTER))
            after, listening = files(c.state_dir), is_listening("127.0.0.1", c.port)

    # Assert
    assert f"held by another process (pid {pid}) and no venue answers on 127.0.0.1:{c.port}" in line
    assert after == before
    assert not listening


def test_a_serve_stopped_cleanly_leaves_the_state_to_commands_which_say_so(tmp_path: Path) -> None:
    """SIGTERM removes the serve's record; a command then runs the venue itself, says so on
    stderr, and the faults the serve had are on."""
    # Arrange
    with cluster_at(tmp_path) as c:
        record, serve_pid = read_server(c.state_dir), c.venue.pid  # type: ignore[union-attr]
        c.add_faults("late_visibility:2", "drop_stream")
        c.venue.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        exit_code = c.venue.popen.wait(20)  # type: ignore[union-attr]

        # Act
        plan = bot(c, "recover", "--dry-run")
        shown = bot(c, "paper", "faults", "--json")

    # Assert
    assert record is not None
    assert (record.pid, record.port) == (serve_pid, c.port)
    assert exit_code == 0
    assert not server_path(c.state_dir).exists()
    assert plan.returncode == 0, plan.stderr
    started = f"started the paper venue in this process on 127.0.0.1:{c.port} (state: "
    assert [line for line in plan.stderr.splitlines() if started in line] != []
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == {
        "faults": ["late_visibility:2"], "ran": []
    }
    assert "started the paper venue in this process for this command" in shown.stderr
