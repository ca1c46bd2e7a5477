"""The daemon lock: one holder per state directory, its pid visible, freed when it dies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_cli.state_store import DaemonLock, LockHeld, PendingEntryStore, lock_holder
from bot_cli.store.lock import PidLock, holder_of


WRITER = Path(__file__).with_name("writer_proc.py")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def holder(state_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process holding the daemon lock until its stdin closes."""
    with subprocess.Popen(
        [sys.executable, str(WRITER), "hold-lock", str(state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"locked {proc.pid}\n".encode()
        yield proc
        proc.kill()


def test_lock_writes_and_clears_its_pid(state_dir: Path) -> None:
    """The holder's pid is in the lock file while held, and lock_holder() reports it."""
    with DaemonLock(state_dir) as lock:
        assert lock.path.read_text() == f"{os.getpid()}\n"
        assert lock_holder(state_dir) == os.getpid()

    assert lock_holder(state_dir) is None
    assert (state_dir / "lock").read_text() == ""


def test_second_lock_in_the_same_process_is_refused(state_dir: Path) -> None:
    """A second DaemonLock on the same dir raises LockHeld with the holder's pid."""
    with DaemonLock(state_dir), pytest.raises(LockHeld) as caught:
        DaemonLock(state_dir).__enter__()

    assert caught.value.pid == os.getpid()
    assert str(state_dir) in str(caught.value)
    assert str(os.getpid()) in str(caught.value)


def test_lock_held_by_another_process_is_refused(
    state_dir: Path, holder: subprocess.Popen[bytes]
) -> None:
    """While a child holds the lock, lock_holder() names it and DaemonLock raises LockHeld."""
    assert lock_holder(state_dir) == holder.pid

    with pytest.raises(LockHeld) as caught:
        DaemonLock(state_dir).__enter__()

    assert caught.value.pid == holder.pid


def test_lock_is_free_after_the_holder_exits(
    state_dir: Path, holder: subprocess.Popen[bytes]
) -> None:
    """When the holder leaves its `with` block and exits, the lock is free."""
    holder.communicate(b"")

    assert lock_holder(state_dir) is None
    with DaemonLock(state_dir):
        pass


def test_lock_is_free_after_the_holder_is_killed(
    state_dir: Path, holder: subprocess.Popen[bytes]
) -> None:
    """A SIGKILLed holder's lock is dropped by the kernel: no stale lock to clean up."""
    holder.kill()
    holder.wait()

    assert lock_holder(state_dir) is None
    with DaemonLock(state_dir) as lock:
        assert lock.path.read_text() == f"{os.getpid()}\n"


def test_another_process_sees_our_pid(state_dir: Path) -> None:
    """A child trying the lock we hold is told our pid."""
    with DaemonLock(state_dir):
        out = subprocess.run(
            [sys.executable, str(WRITER), "try-lock", str(state_dir)],
            capture_output=True,
            check=True,
        ).stdout

    assert out == f"held {os.getpid()}\n".encode()


def test_lock_holder_of_a_fresh_dir_is_none(state_dir: Path) -> None:
    """lock_holder() of a dir never locked is None and creates nothing."""
    assert lock_holder(state_dir) is None
    assert not state_dir.exists()


def test_journal_writes_do_not_wait_for_the_daemon_lock(
    state_dir: Path, holder: subprocess.Popen[bytes]
) -> None:
    """A CLI save goes through while the daemon holds its lifetime lock."""
    with PendingEntryStore(state_dir) as store:
        store.save("e1", {"n": 1})

        assert store.load_all() == {"e1": {"n": 1}}


def test_a_pid_lock_on_any_file_is_the_daemon_lock_s_rules(tmp_path: Path) -> None:
    """PidLock (the paper venue's lock too) holds its pid in its own file; holder_of reads it."""
    path = tmp_path / "venue" / "lock"

    with PidLock(path):
        seen = holder_of(path)
        with pytest.raises(LockHeld) as caught:
            PidLock(path).__enter__()

    assert seen == os.getpid()

    assert caught.value.pid == os.getpid()
    assert caught.value.path == str(path.parent)
    assert holder_of(path) is None
    assert path.read_text() == ""
