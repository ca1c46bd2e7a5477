"""Public face of the state directory: the pending-entry journal, its archive and the daemon lock.

Import from here, not from `bot_cli.store.*`; see `bot_cli.store.journal` for the file formats.
"""

from __future__ import annotations

from bot_cli.store import (
    InvalidRecord,
    LockHeld,
    SchemaVersionError,
    StateDirError,
    StoreError,
    UnknownEntry,
)
from bot_cli.store.journal import (
    ARCHIVE_NAME,
    JOURNAL_NAME,
    QUARANTINE_NAME,
    SCHEMA_VERSION,
    Change,
    PendingEntryStore,
    Record,
)
from bot_cli.store.lock import DaemonLock, lock_holder

__all__ = [
    "ARCHIVE_NAME",
    "JOURNAL_NAME",
    "QUARANTINE_NAME",
    "SCHEMA_VERSION",
    "Change",
    "DaemonLock",
    "InvalidRecord",
    "LockHeld",
    "PendingEntryStore",
    "Record",
    "SchemaVersionError",
    "StateDirError",
    "StoreError",
    "UnknownEntry",
    "lock_holder",
]
