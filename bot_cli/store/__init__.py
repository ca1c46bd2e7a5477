"""Durable state for bot_cli: the pending-entry journal, its archive and the daemon lock.

This package knows nothing of trading. Records are JSON-able dicts; callers encode their typed
records elsewhere. The public face is `bot_cli.state_store`; this module holds only the errors, so
every submodule can import them without a cycle.

Every error's `str()` is one sentence naming the file and what the operator should do.
"""

from __future__ import annotations

import os


__all__ = [
    "InvalidRecord",
    "LockHeld",
    "SchemaVersionError",
    "StateDirError",
    "StoreError",
    "UnknownEntry",
]


class StoreError(Exception):
    """A state-store operation failed; the message names the file and what to do."""


class SchemaVersionError(StoreError):
    """A line was written by a newer bot_cli; nothing was changed."""

    def __init__(self, path: str | os.PathLike[str], line: int, version: int) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.version = version
        super().__init__(
            f"{self.path} line {line} has schema version {version} but this bot_cli reads only "
            f"version 1 or older: upgrade bot_cli (nothing was changed)"
        )


class StateDirError(StoreError):
    """The state directory cannot be created, is not a directory, or is not writable."""


class UnknownEntry(StoreError):
    """remove() was asked for an id the journal does not hold; nothing was written."""

    def __init__(self, entry_id: str, path: str | os.PathLike[str]) -> None:
        self.entry_id = entry_id
        self.path = os.fspath(path)
        super().__init__(
            f"entry {entry_id!r} is not in {self.path}: check the client order id "
            f"(nothing was written)"
        )


class InvalidRecord(StoreError, ValueError):
    """A record or id cannot be stored as JSON; nothing was written."""


class LockHeld(StoreError):
    """Another process holds the daemon lock of the state directory."""

    def __init__(self, pid: int | None, path: str | os.PathLike[str]) -> None:
        self.pid = pid
        self.path = os.fspath(path)
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"state directory {self.path} is locked by another bot process ({holder}): "
            f"stop that process or pass another --state-dir"
        )
