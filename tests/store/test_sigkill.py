"""SIGKILL a writing process at random points: every acknowledged save and remove survives.

A kill can land inside a remove, after it is on disk and before its line is printed: that entry
is then archived without an acknowledgement, and only that one (the writer's last act)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bot_cli.state_store import PendingEntryStore

from .writer_proc import Acks, context_for


WRITER = Path(__file__).with_name("writer_proc.py")
ROUNDS = 40
MAX_LINES_BEFORE_KILL = 40
SEED = 20240611


def run_and_kill(state_dir: Path, prefix: str, lines_before_kill: int, seed: int) -> list[bytes]:
    """Start a writer, read `lines_before_kill` acknowledgements, SIGKILL it; return all it printed."""
    command = [sys.executable, str(WRITER), "write", str(state_dir), "--prefix", prefix]
    with subprocess.Popen(
        [*command, "--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(lines_before_kill)]
        assert all(lines), f"writer died early: {proc.stderr.read().decode()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines += proc.stdout.readlines()  # acknowledged before the kill, still in the pipe
    assert proc.returncode == -signal.SIGKILL
    return lines


def assert_acknowledged_kept(state_dir: Path, acks: Acks) -> None:
    with PendingEntryStore(state_dir) as store:
        live = store.load_all()
        archived = {a["id"] for a in store.archived()}
        quarantined = store.quarantine_path.exists()
    # A remove the kill cut between its durable write and its "del" line: archived, not acked.
    cut = [e for e in acks.saved if e not in acks.removed and e not in live]
    assert all(e in archived for e in cut), cut
    assert max(Counter(e[:4] for e in cut).values(), default=0) <= 1, cut  # one per writer, its last act
    for entry_id, seq in acks.saved.items():
        if entry_id not in acks.removed and entry_id not in cut:
            assert live[entry_id] == context_for(entry_id, seq), entry_id
    for entry_id in acks.removed:
        assert entry_id not in live, entry_id
        assert entry_id in archived, entry_id
    for entry_id in acks.saved:  # only remove() takes entries out, and it archives them first
        assert entry_id in live or entry_id in archived, entry_id
    assert not quarantined


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    """Across 40 writers SIGKILLed at random points, no acknowledged save or remove is lost."""
    rng = random.Random(SEED)
    state_dir = tmp_path / "state"
    acks = Acks()

    for round_no in range(ROUNDS):
        lines_before_kill = rng.randrange(MAX_LINES_BEFORE_KILL + 1)
        acks.add(run_and_kill(state_dir, f"r{round_no:02d}-", lines_before_kill, seed=round_no))
        assert_acknowledged_kept(state_dir, acks)

    print(
        f"{ROUNDS} kill rounds checked: {len(acks.saved)} saves and {len(acks.removed)} removes "
        f"acknowledged, all on disk"
    )
