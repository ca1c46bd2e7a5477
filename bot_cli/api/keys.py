"""Idempotency keys: one key, one entry, forever (shared by the Python API and the inbox).

``keys/<sha256 of the key>.json`` in the state dir holds ``{"key", "id", "at"}``. ``claim``
runs under ``keys/lock`` (flock, so concurrent claims of any processes queue) and writes the
key file durably *before* the entry is saved as REQUESTED, and the entry is saved before
anything can send it. So whatever crashes where:

- key file written, entry not saved: the next claim of that key saves the entry under the
  same id (nothing was ever sent under it);
- entry saved: every later claim finds it (journal, else archive) and saves nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot_cli.api._types import record_of
from bot_cli.core.engine import request_entry
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, Pending, PendingId
from bot_cli.errors import BotError
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.atomic import ensure_dir, replace_durable
from bot_cli.store.codec import CorruptRecord, decode, encode
from bot_cli.store.lock import JournalLock


__all__ = ["DIR", "MAX_KEY_LEN", "Claim", "claim", "key_files", "key_problem", "lookup", "used"]

DIR = "keys"
LOCK_NAME = "lock"
MAX_KEY_LEN = 128


@dataclass(frozen=True, slots=True)
class Claim:
    """The key's entry as it stands; ``new`` when this claim saved it (REQUESTED)."""

    pending: Pending
    new: bool


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be an idempotency key, or None."""
    if not isinstance(key, str) or not key:
        return "key must be a non-empty string"
    if len(key) > MAX_KEY_LEN:
        return f"key is {len(key)} characters long; at most {MAX_KEY_LEN}"
    if not key.isprintable():
        return "key must be printable characters only"
    return None


def used(state_dir: Path, key: str) -> bool:
    """Whether the key was ever claimed (cheap: one stat, no journal read)."""
    return _path(state_dir, key).exists()


def lookup(store: PendingEntryStore, key: str) -> Pending | None:
    """The entry this key was used for (journal, else archive); None if it never was."""
    pid = _read(store.path, key)
    return None if pid is None else _find(store, pid, key)


def claim(
    store: PendingEntryStore, key: str, spec: EntrySpec, now_ms: int, recv_window_ms: int
) -> Claim:
    """The key's first entry, or a new REQUESTED entry saved for it (durable on return)."""
    folder = store.path / DIR
    ensure_dir(folder)
    lock = JournalLock(folder / LOCK_NAME)
    try:
        with lock:
            pid = _read(store.path, key)
            if pid is not None and (first := _find(store, pid, key)) is not None:
                return Claim(first, new=False)
            if pid is None:
                pid = make_pending_id(now_ms, secrets.randbelow(36**5))
                _write(store.path, key, pid, now_ms)  # durable before the entry exists
            p, _ = request_entry(pid, spec, now_ms, recv_window_ms)
            store.save(pid, encode(p))
            return Claim(p, new=True)
    finally:
        lock.close()


def _path(state_dir: Path, key: str) -> Path:
    return state_dir / DIR / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _read(state_dir: Path, key: str) -> PendingId | None:
    path = _path(state_dir, key)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise BotError(f"key file {path} is unreadable ({err}): nothing was sent") from None
    if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("id"), str):
        raise BotError(f"idempotency key file {path} does not hold this key: nothing was sent")
    return PendingId(data["id"])


def _write(state_dir: Path, key: str, pid: str, now_ms: int) -> None:
    record = json.dumps({"key": key, "id": pid, "at": now_ms}, ensure_ascii=False)
    ensure_dir(state_dir / DIR)
    replace_durable(_path(state_dir, key), record.encode())


def _find(store: PendingEntryStore, pid: str, key: str) -> Pending | None:
    record = record_of(store, pid)
    if record is None:
        return None
    try:
        return decode(record)
    except CorruptRecord as err:
        raise BotError(
            f"key {key!r} belongs to entry {pid}, whose record is unreadable ({err}):"
            " nothing was sent; see `bot pending list`"
        ) from None


def key_files(state_dir: Path) -> list[Path]:
    """Every key file (for tests and tools)."""
    folder = state_dir / DIR
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
