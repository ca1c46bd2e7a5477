"""What the API returns: an entry as it stands, a daemon's status, an operator request's fate.

Strictly private: import from ``bot_cli.api``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.core.ids import client_id
from bot_cli.core.model import Leg, Pending, Side, Status
from bot_cli.core.summary import by_status
from bot_cli.ops import journal
from bot_cli.ops.journal import Unreadable, read_journal
from bot_cli.runtime import heartbeat
from bot_cli.state_store import PendingEntryStore, lock_holder


STALE_AFTER_S = 3 * heartbeat.EVERY_S  # a heartbeat older than this: the daemon is stuck or gone


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as it stands (journal or archive).

    ``duplicate``: the key given was used before; this is that first entry, nothing was sent.
    ``watched``: False when nothing will send or protect it until `bot run` starts (no daemon);
    ``note`` says why in one line (also for an entry not placed or needing attention).
    """

    id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal | None  # None: a market entry
    stop_loss: Decimal
    take_profit: Decimal | None
    status: Status
    reason: str
    filled_quantity: Decimal
    created_at: int  # epoch ms
    entry_client_id: str
    sent_by: str = ""
    duplicate: bool = False
    watched: bool = True
    note: str = ""

    @classmethod
    def of(cls, p: Pending, **kwargs: Any) -> Entry:
        s = p.spec
        return cls(
            p.pending_id, s.symbol, s.side, s.quantity, s.price, s.stop_loss, s.take_profit,
            p.status, p.reason, p.filled_qty, p.created_at, client_id(p.pending_id, Leg.ENTRY),
            **kwargs,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """Whether a daemon (`bot run`) follows the state dir, and what the journal holds."""

    pid: int | None  # the daemon's pid; None when no daemon runs
    venue: str = ""
    stream_connected: bool = False  # its user stream to the exchange, as last written
    heartbeat_age_s: float | None = None
    entries: dict[str, int] = field(default_factory=dict)  # the journal's entries by status

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def not_connected(self) -> str | None:
        """Why a signal for it must wait (one line), or None when the daemon is connected."""
        if self.pid is None:
            return "no daemon (`bot run`) is running"
        if self.heartbeat_age_s is None or self.heartbeat_age_s > STALE_AFTER_S:
            return f"the daemon (pid {self.pid}) wrote no heartbeat for {STALE_AFTER_S:g}s"
        if not self.stream_connected:
            return f"the daemon (pid {self.pid}) is not connected to the exchange (stream down)"
        return None


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A cancel or close asked of the daemon. ``applied``: the daemon took it in (durable)."""

    id: str
    verb: str  # "cancel" | "cancel-close" | "close"
    applied: bool
    entry: Entry | None  # the entry after it (journal or archive)
    note: str = ""


def read_status(state_dir: Path) -> DaemonStatus:
    """The daemon's heartbeat (if the lock holder wrote it) and the journal's counts."""
    daemon = _daemon(state_dir)
    counts = by_status(all_entries(state_dir)) if state_dir.is_dir() else {}
    return replace(daemon, entries=counts)


def daemon_connection(state_dir: Path) -> str | None:
    """Why no daemon is connected to the exchange for this state dir (one line), or None."""
    return _daemon(state_dir).not_connected


def _daemon(state_dir: Path) -> DaemonStatus:
    holder = lock_holder(state_dir) if state_dir.is_dir() else None
    beat = heartbeat.read(state_dir)
    if not holder or beat is None or beat.get("pid") != holder:
        return DaemonStatus(None)  # the lock is free, or a one-shot `bot enter` holds it
    stream = beat.get("stream")
    connected = isinstance(stream, dict) and bool(stream.get("connected"))
    written = beat.get("written_at")
    age = time.time() - written / 1000 if isinstance(written, int) else None
    return DaemonStatus(holder, str(beat.get("venue", "")), connected, age)


def all_entries(state_dir: Path) -> list[Pending]:
    """The journal's readable entries (an unreadable one is shown by `bot pending list`)."""
    with PendingEntryStore(state_dir) as store:
        entries, _ = read_journal(store)
    return list(entries.values())


def find(state_dir: Path, entry_id: str) -> Pending | None:
    """An entry from the journal, else its last archived record; None if there is neither, or
    its record cannot be read (`bot history ID` says why)."""
    found = journal.find(state_dir, entry_id)
    return None if found is None or isinstance(found.entry, Unreadable) else found.entry


def record_of(store: PendingEntryStore, entry_id: str) -> dict[str, Any] | None:
    """An entry's journal record, else its last archived one."""
    record = store.load_all().get(entry_id)
    if record is None:
        archived = [a for a in store.archived() if a.get("id") == entry_id]
        record = archived[-1].get("rec") if archived else None
    return dict(record) if isinstance(record, dict) else None
