"""Idempotency keys: one key, one entry, forever (shared by the Python API and the inbox).

``keys.jsonl`` in the state dir holds one ``{"key", "id", "at"}`` line per key, appended and
fsync'd; ``Keys.claim`` runs under ``keys.lock`` (flock: claims of every process and thread
queue) and appends the key's line *before* the entry is saved as REQUESTED, which is before
anything can send it. So whatever crashes where:

- key line written, entry not saved: the next claim of that key saves the entry under the
  same id (nothing was ever sent under it);
- entry saved: every later claim finds it (journal, else archive) and saves nothing.

A line cut short by a crash is the last one, without its newline: it is ignored, and cut off
before the next append. Any other unreadable line stops every claim (a lost key could send
twice); the message names the file and the line.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from bot_cli.api._types import record_of
from bot_cli.core.engine import request_entry
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, Pending, PendingId
from bot_cli.errors import BotError
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.atomic import (
    append_durable,
    end_of_last_line,
    open_file,
    read_range,
    truncate_durable,
)
from bot_cli.store.codec import CorruptRecord, decode, encode
from bot_cli.store.lock import JournalLock


__all__ = ["LOG_NAME", "MAX_KEY_LEN", "Claim", "Keys", "key_problem"]

LOG_NAME = "keys.jsonl"
LOCK_NAME = "keys.lock"
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


class Keys:
    """The keys of one state dir, as this process has read them (safe across threads)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOG_NAME
        self._lock = JournalLock(state_dir / LOCK_NAME)  # opened at first use
        self._mutex = threading.Lock()  # this process's view, read by several threads
        self._ids: dict[str, PendingId] = {}
        self._ino: int | None = None
        self._offset = self._lines = 0

    def close(self) -> None:
        self._lock.close()

    def used(self, key: str) -> bool:
        """Whether the key was ever claimed (reads only what was appended since last time)."""
        if not self.path.exists():
            return False
        self._catch_up()
        return key in self._ids

    def lookup(self, store: PendingEntryStore, key: str) -> Pending | None:
        """The entry this key was used for (journal, else archive); None if it never was."""
        pid = self._ids.get(key) if self.used(key) else None
        return None if pid is None else _find(store, pid, key)

    def claim(self, store: PendingEntryStore, key: str, spec: EntrySpec, now_ms: int,
              recv_window_ms: int) -> Claim:  # fmt: skip
        """The key's first entry, or a new REQUESTED entry saved for it (durable on return)."""
        with self._lock:  # the store made the state dir
            self._catch_up()
            pid = self._ids.get(key)
            if pid is not None and (first := _find(store, pid, key)) is not None:
                return Claim(first, new=False)
            if pid is None:
                pid = make_pending_id(now_ms, secrets.randbelow(36**5))
                self._append(key, pid, now_ms)  # durable before the entry exists
            p, _ = request_entry(pid, spec, now_ms, recv_window_ms)
            store.save(pid, encode(p))
            return Claim(p, new=True)

    # -- the log ------------------------------------------------------------------------

    def _catch_up(self) -> None:
        with self._mutex:
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if st.st_ino != self._ino or st.st_size < self._offset:
            self._ids, self._ino, self._offset, self._lines = {}, st.st_ino, 0, 0
        if st.st_size > self._offset:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                data = read_range(fd, self._offset, st.st_size - self._offset)
            finally:
                os.close(fd)
            self._read(data[: data.rfind(b"\n") + 1])  # a torn last line waits (or is cut)

    def _read(self, data: bytes) -> None:
        for line in data.splitlines():
            self._lines += 1
            try:
                row = json.loads(line)
                self._ids[row["key"]] = PendingId(row["id"])
            except (ValueError, TypeError, KeyError):
                raise BotError(
                    f"{self.path} line {self._lines} is unreadable: no key can be claimed until"
                    " it is repaired (nothing was sent)"
                ) from None
        self._offset += len(data)

    def _append(self, key: str, pid: PendingId, now_ms: int) -> None:
        line = json.dumps({"key": key, "id": pid, "at": now_ms}, ensure_ascii=False) + "\n"
        fd = open_file(self.path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if end_of_last_line(fd, size) != size:  # a torn line from a crash: cut it off
                truncate_durable(fd, end_of_last_line(fd, size))
            append_durable(fd, line.encode())
        finally:
            os.close(fd)
        self._catch_up()


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
