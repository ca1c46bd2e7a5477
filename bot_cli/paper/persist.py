"""The paper venue's files: ``<state_dir>/paper/exchange.json``, the ``lock`` and ``server.json``.

Files are written with the state store's primitives (``bot_cli.store.atomic``): a state file is
replaced atomically (temp file, fsync, rename, fsync of the directory), so a crash at any instant
leaves either the old or the new state, never a torn one. One paper venue per state dir is the
store's lifetime lock (``bot_cli.store.lock.PidLock``) on ``<state_dir>/paper/lock``: a flock
whose file holds the holder's pid, which the kernel drops when the holder dies, so a ``kill -9``
never leaves a stale lock.

``server.json`` ({pid, host, port, started_at}) is written by ``bot paper serve`` while it holds
the lock and removed when it exits; one left by a killed server still says "this state is served
by a standalone venue", so no other command quietly starts a venue of its own on it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot_cli.errors import BotError
from bot_cli.store import LockHeld
from bot_cli.store.atomic import DIR_MODE, ensure_dir, fsync_dir, replace_durable
from bot_cli.store.lock import PidLock


STATE_NAME = "exchange.json"
LOCK_NAME = "lock"
SERVER_NAME = "server.json"


class PaperLockHeld(BotError):
    """Another paper venue already serves this state directory."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class PaperStateError(BotError):
    """The paper state file cannot be read."""


def paper_dir(state_dir: Path) -> Path:
    """``<state_dir>/paper``, created (0700, durably) with the state dir if missing."""
    ensure_dir(Path(state_dir))
    path = Path(state_dir) / "paper"
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return path
    fsync_dir(path.parent)
    return path


def save(path: Path, data: dict[str, Any] | str) -> None:
    """Write ``data`` (a dict, or JSON text) to ``path`` atomically and durably."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    replace_durable(path, text.encode())


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise PaperStateError(
            f"paper state {path} is not valid JSON ({err}): move it away to start a fresh paper exchange"
        ) from None
    if not isinstance(data, dict):
        raise PaperStateError(f"paper state {path} is not a JSON object: move it away to start afresh")
    return data


ID_NAME = "venue.id"


def read_id(state_dir: Path) -> str | None:
    """The paper state's own id (answered at ``GET /paper/whoami``), or None when it has none yet; writes nothing."""
    try:
        text = (Path(state_dir) / "paper" / ID_NAME).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    return text or None


def own_id(state_dir: Path) -> str:
    """The paper state's id, made once (call while holding the paper lock): a venue answers it,
    so a command knows whether the venue on its port serves its own state dir."""
    found = read_id(state_dir)
    if found is not None:
        return found
    made = secrets.token_hex(8)
    replace_durable(paper_dir(state_dir) / ID_NAME, made.encode())
    return made


class PaperLock:
    """Exclusive, non-blocking lock on ``<state_dir>/paper/lock`` for the server's lifetime."""

    def __init__(self, state_dir: Path) -> None:
        self.path = paper_dir(state_dir) / LOCK_NAME
        self._lock = PidLock(self.path)

    def acquire(self) -> None:
        """Take the lock, or raise PaperLockHeld naming the holder's pid."""
        try:
            self._lock.__enter__()  # held past this call: released by release()
        except LockHeld as held:
            holder = held.pid if held.pid is not None else "unknown"
            raise PaperLockHeld(
                f"a paper venue (pid {holder}) already serves {self.path.parent}: use it, or stop it first",
                held.pid,
            ) from None

    def release(self) -> None:
        """Clear the pid and drop the lock (idempotent)."""
        self._lock.release()


# --- the standalone server's record -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerRecord:
    pid: int
    host: str
    port: int
    started_at: str


def server_path(state_dir: Path) -> Path:
    return Path(state_dir) / "paper" / SERVER_NAME  # no mkdir: reading it must write nothing


def record_server(state_dir: Path, record: ServerRecord) -> None:
    """Call only while holding the lock: the record then names the one live server."""
    save(server_path(state_dir), {
        "pid": record.pid, "host": record.host, "port": record.port,
        "started_at": record.started_at,
    })  # fmt: skip


def read_server(state_dir: Path) -> ServerRecord | None:
    """The recorded server, None when there is none; an unreadable record is an error."""
    path = server_path(state_dir)
    data = load(path)
    if data is None:
        return None
    try:
        return ServerRecord(int(data["pid"]), str(data["host"]), int(data["port"]), str(data["started_at"]))
    except (KeyError, TypeError, ValueError):
        raise PaperStateError(
            f"{path} is not a paper server record: delete it if no `bot paper serve` runs"
        ) from None


def forget_server(state_dir: Path, pid: int) -> None:
    """Remove the record if it is ``pid``'s (a server that stops cleanly)."""
    record = read_server(state_dir)
    if record is not None and record.pid == pid:
        server_path(state_dir).unlink()
        fsync_dir(server_path(state_dir).parent)
