"""Locks on the state directory.

Two separate flock(2) locks, so short CLI writes never wait for the daemon:

- `<state>/lock` is the daemon's lifetime lock (`DaemonLock`); its file holds the holder's pid.
- `<state>/journal.lock` is taken by every journal read or write for that operation only
  (`JournalLock`).

`PidLock` is the lifetime lock on any file (the daemon's is one); `holder_of` probes one.

The kernel drops a flock when its holder dies, so there is no stale-lock cleanup. A flock belongs
to the open file description: a child forked while the daemon holds the lock holds it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from bot_cli.store import LockHeld, StoreError
from bot_cli.store.atomic import ensure_dir, open_file


DAEMON_LOCK_NAME = "lock"
JOURNAL_LOCK_NAME = "journal.lock"

# A holder writes its pid just after taking the lock, and lock_holder() probes take it for
# microseconds; retry this long before believing a lock with no live pid in it.
_SETTLE_TRIES = 100
_SETTLE_PAUSE_S = 0.001


class JournalLock:
    """Exclusive, blocking, re-entrant lock around one journal operation (threads and processes)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._depth = 0
        self._mutex = threading.RLock()

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            if self._depth == 0:
                fcntl.flock(self._open(), fcntl.LOCK_EX)
            self._depth += 1
        except BaseException:
            self._mutex.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _open(self) -> int:
        if self._fd is None:
            self._fd = open_file(self._path, os.O_RDWR)
        return self._fd

    def __del__(self) -> None:
        # Last resort for a lock nobody closed: give its descriptor back.
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Close the lock file (releasing the lock if held)."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class PidLock:
    """Exclusive, non-blocking lock on a file for a process's lifetime; the file holds its pid.

    Entering raises `LockHeld` (with the holder's pid, naming the file's directory) if another
    process holds it. The directory is created (0700) if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self._path

    def __enter__(self) -> Self:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this {type(self).__name__}")
        ensure_dir(self._path.parent)
        fd = open_file(self.path, os.O_RDWR)
        try:
            holder = _try_lock(fd, fcntl.LOCK_EX)
            if holder is not None:
                raise LockHeld(holder or None, self._path.parent)
            _write_pid(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Clear the pid and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # before unlocking, so we never erase the next holder's pid
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class DaemonLock(PidLock):
    """The daemon's lifetime lock on a state directory: `with DaemonLock(dir): run()`."""

    def __init__(self, state_path: str | os.PathLike[str]) -> None:
        super().__init__(Path(state_path) / DAEMON_LOCK_NAME)


def lock_holder(state_path: str | os.PathLike[str]) -> int | None:
    """Pid of the process holding the daemon lock of a state directory, or None if it is free."""
    return holder_of(Path(state_path) / DAEMON_LOCK_NAME)


def holder_of(path: Path) -> int | None:
    """Pid of the process holding the `PidLock` on `path`, or None if it is free.

    Probes with a shared non-blocking lock (released at once), so probes never block each other.
    Returns 0 when the lock is held but no pid can be read from it (not a bot_cli holder).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror}): fix its permissions") from exc
    try:
        holder = _try_lock(fd, fcntl.LOCK_SH)
        if holder is None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return holder
    finally:
        os.close(fd)


def _try_lock(fd: int, mode: int) -> int | None:
    """Take flock `mode` without blocking: None once taken, else the holder's pid (0: unreadable).

    A holder writes its pid just after taking the lock, and probes hold it for microseconds: a
    lock held with no live pid in it is tried again for a while before the holder is believed.
    """
    pid: int | None = None
    for _ in range(_SETTLE_TRIES):
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            if pid is not None and is_alive(pid):
                return pid
            time.sleep(_SETTLE_PAUSE_S)  # a probe, or a holder still writing its pid
            continue
        return None
    return pid if pid is not None else 0


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def is_alive(pid: int) -> bool:
    """Whether a process with this pid exists (under any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
