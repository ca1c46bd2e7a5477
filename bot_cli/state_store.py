"""Public face of the state directory: the pending-entry journal, its archive and the daemon lock.

Import from here, not from `bot_cli.store.*`; see `bot_cli.store.journal` for the file formats.

`PendingEntryStore.save(client_order_id, context)` stores any JSON mapping. The daemon follows
only records written by `bot_cli.store.codec.encode`; any other (a plain context, a damaged
record) it skips, `bot pending list` and `bot recover` show as UNREADABLE, and
`bot pending drop --force ID` archives as it is.
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
