"""The pending-entry journal: entries whose orders may be live, kept across crashes.

Files in the state directory (DESIGN.md, "State directory"): `pending_entries.jsonl`, the
journal; `archive.jsonl`, every entry that left it (`bot_cli.store.archive`);
`pending_entries.quarantine.jsonl`, unreadable journal lines moved aside. Their line formats are
in `bot_cli.store.lines`.

Several processes share a directory (the daemon and short CLI commands). Every operation holds the
journal lock and first reads what others appended since this instance last looked: the tail from
its offset, or the whole file when the inode changed (someone compacted).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from bot_cli.store import InvalidRecord, UnknownEntry, lines
from bot_cli.store.archive import APPEND, ARCHIVE_NAME, Archive, quarantine
from bot_cli.store.atomic import (
    append_durable,
    ensure_dir,
    io_error,
    open_file,
    read_range,
    replace_durable,
    truncate_durable,
)
from bot_cli.store.lines import SCHEMA_VERSION, Delete, Parsed, Put, Record
from bot_cli.store.lock import JOURNAL_LOCK_NAME, JournalLock


__all__ = [  # the line format's names too: bot_cli.state_store re-exports them from here
    "ARCHIVE_NAME", "COMPACT_LIVE_FACTOR", "COMPACT_MIN_LINES", "JOURNAL_NAME", "QUARANTINE_NAME",
    "SCHEMA_VERSION", "Change", "PendingEntryStore", "Record",
]

JOURNAL_NAME: Final = "pending_entries.jsonl"
QUARANTINE_NAME: Final = "pending_entries.quarantine.jsonl"
# Compact when the journal has more lines than this many, or this many times the live records.
COMPACT_MIN_LINES: Final = 1000
COMPACT_LIVE_FACTOR: Final = 4

Change = tuple[str, Record | None]

_log = logging.getLogger(__name__)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _View:
    """How far this instance has read the journal file, and the live lines it found."""

    ino: int | None = None
    offset: int = 0
    lines: int = 0
    live: dict[str, bytes] = field(default_factory=dict)


class PendingEntryStore:
    """The journal of pending entries in one state directory, safe to share between processes.

    Records are JSON-able dicts. `save` returns only once the record is on disk. Returned records
    are fresh objects the caller owns. Not fork-safe: open a new instance in a child process.
    """

    def __init__(
        self,
        state_path: str | os.PathLike[str],
        *,
        on_warning: Callable[[str], None] | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._dir = Path(state_path)
        ensure_dir(self._dir)
        # Paths built once: pathlib's joins cost a tenth of a save.
        self._journal_path = self._dir / JOURNAL_NAME
        self._quarantine_path = self._dir / QUARANTINE_NAME
        self._on_warning = on_warning
        self._clock_ms = clock_ms if clock_ms is not None else _wall_clock_ms
        self._lock = JournalLock(self._dir / JOURNAL_LOCK_NAME)
        self._view = _View()
        self._jfd: int | None = None
        self._archive = Archive(self._dir / ARCHIVE_NAME, self._warn)
        self._fresh: dict[str, Record] = {}  # parsed records not handed out yet
        self._unpolled: dict[str, None] = {}  # ids others changed since load_all/poll (ordered)
        self._warnings: list[str] = []

    # -- paths and state --------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The state directory."""
        return self._dir

    @property
    def journal_path(self) -> Path:
        return self._journal_path

    @property
    def archive_path(self) -> Path:
        return self._archive.path

    @property
    def quarantine_path(self) -> Path:
        return self._quarantine_path

    @property
    def warnings(self) -> list[str]:
        """Every warning this instance has raised, oldest first."""
        return list(self._warnings)

    def close(self) -> None:
        """Close the open files (idempotent); the instance must not be used afterwards."""
        with self._lock:
            self._close_journal()
            self._archive.close()
        self._lock.close()

    def __del__(self) -> None:
        # Last resort for a store nobody closed: give its descriptors back.
        fd = getattr(self, "_jfd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- operations -------------------------------------------------------------------------

    def save(self, client_order_id: str, context: Mapping[str, Any]) -> None:
        """Store (or replace) an entry's record; it is on disk when this returns."""
        self.save_many([(client_order_id, context)])

    def save_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Store several records with one write and one fsync (later items win on equal ids)."""
        self.put_many((entry_id, context, True) for entry_id, context in items)

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any], bool]]) -> set[str]:
        """Store several records with one write and one fsync: ``(id, record, new)``. A record
        that is not new replaces a live one only (as ``update``); the ids refused that way are
        returned, nothing of theirs written. Later items win on equal ids."""
        lines_in = [(entry_id, lines.put_line(entry_id, context, self.journal_path), new)
                    for entry_id, context, new in items]  # fmt: skip
        if not lines_in:
            return set()
        with self._lock:
            self._catch_up()
            created = {entry_id for entry_id, _, new in lines_in if new}
            refused = {i for i, _, _ in lines_in if i not in self._view.live and i not in created}
            kept = [(entry_id, raw) for entry_id, raw, _ in lines_in if entry_id not in refused]
            if kept:
                self._append_journal(b"".join(raw for _, raw in kept), len(kept), "the entries were NOT saved")
                for entry_id, raw in kept:
                    self._set_own(entry_id, raw[:-1])
                self._maybe_compact()
        return refused

    def update(self, client_order_id: str, context: Mapping[str, Any]) -> bool:
        """Replace a record only if it is still live; False if another process removed it.

        An id is never reused, so a record someone archived (an operator's drop) must not
        come back because a slower process still held it in memory.
        """
        raw = lines.put_line(client_order_id, context, self.journal_path)
        with self._lock:
            self._catch_up()
            if client_order_id not in self._view.live:
                return False
            self._append_journal(raw, 1, "the entry was NOT saved")
            self._set_own(client_order_id, raw[:-1])
            self._maybe_compact()
        return True

    def remove(
        self, client_order_id: str, reason: str, *, record: Mapping[str, Any] | None = None
    ) -> None:
        """Archive an entry (with `record`, or its last saved one), then drop it from the journal.

        Raises UnknownEntry, writing nothing, if the journal does not hold the id.
        """
        lines.check_id(client_order_id, self.journal_path)
        if not isinstance(reason, str) or not reason:
            raise InvalidRecord(f"remove from {self.journal_path} needs a non-empty reason")
        with self._lock:
            self._catch_up()
            if client_order_id not in self._view.live:
                raise UnknownEntry(client_order_id, self.journal_path)
            archived = self._archive_line(client_order_id, reason, record)
            deleted = lines.del_line(client_order_id, reason, self.journal_path)
            if not self._archive.holds_recent(client_order_id):  # ids are never reused: once is all
                self._archive.append(archived)
            lost = f"entry {client_order_id!r} is archived but still pending; retry the remove"
            self._append_journal(deleted, 1, lost)
            self._set_own(client_order_id, None)
            self._maybe_compact()

    def remove_if(
        self,
        client_order_id: str,
        reason: str,
        *,
        expected: Mapping[str, Any],
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        """`remove`, only while the live record is still `expected` (compared as parsed dicts).

        A compare-and-swap under one lock hold, after reading what other processes wrote: a
        caller that decided from a record never archives one another process changed since.
        False, writing nothing, when the record changed or is no longer in the journal.
        """
        with self._lock:
            self._catch_up()
            if client_order_id not in self._view.live or self._take(client_order_id) != dict(expected):
                return False
            self.remove(client_order_id, reason, record=record)  # the lock is re-entrant: same hold
        return True

    def load_all(self) -> dict[str, Record]:
        """Every live record by id; also marks everything as seen for poll()."""
        with self._lock:
            self._catch_up()
            self._unpolled.clear()
            with lines.gc_paused():
                return {entry_id: self._take(entry_id) for entry_id in self._view.live}

    def poll(self) -> list[Change]:
        """Records other writers changed since this instance last read: (id, record or None).

        The first read of an instance reports every live record. Changes this instance made
        itself are not reported.
        """
        with self._lock:
            self._catch_up()
            changed, self._unpolled = list(self._unpolled), {}
            live = self._view.live
            return [(i, self._take(i) if i in live else None) for i in changed]

    def archived(self) -> list[Record]:
        """Every readable archive line, oldest first (unreadable ones are skipped with a warning)."""
        with self._lock:
            return self._archive.read()

    def compact(self) -> None:
        """Rewrite the journal with only the live records' latest puts."""
        with self._lock:
            self._catch_up()
            self._compact()

    # -- reading what others wrote (journal lock held) -------------------------------------

    def _catch_up(self) -> None:
        view = self._view
        st = self._stat_journal()
        if self._jfd is None or st is None or st.st_ino != view.ino or st.st_size < view.offset:
            self._reread()
        elif st.st_size > view.offset:
            self._read_tail(st.st_size)

    def _stat_journal(self) -> os.stat_result | None:
        try:
            return os.stat(self.journal_path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise io_error("read", self.journal_path, exc, "nothing was changed") from exc

    def _reread(self) -> None:
        fd = open_file(self.journal_path, APPEND)
        try:
            st = os.fstat(fd)
            data = self._read(fd, self.journal_path, 0, st.st_size)
            parsed = lines.parse_journal(data, self.journal_path, 1)
        except BaseException:
            os.close(fd)
            raise
        live: dict[str, bytes] = {}
        self._fresh = {}
        for op in parsed.ops:
            self._apply(op, live)
        old, self._view = self._view.live, _View(st.st_ino, parsed.size, parsed.lines, live)
        self._close_journal()
        self._jfd = fd
        self._note_changes(_differences(old, live))
        self._repair(parsed)

    def _read_tail(self, size: int) -> None:
        view = self._view
        assert self._jfd is not None
        data = self._read(self._jfd, self.journal_path, view.offset, size - view.offset)
        parsed = lines.parse_journal(data, self.journal_path, view.lines + 1)
        before: dict[str, bytes | None] = {}
        for op in parsed.ops:
            before.setdefault(op.entry_id, view.live.get(op.entry_id))
            self._apply(op, view.live)
        view.offset += parsed.size
        view.lines += parsed.lines
        self._note_changes(i for i, raw in before.items() if raw != view.live.get(i))
        self._repair(parsed)

    def _apply(self, op: Put | Delete, live: dict[str, bytes]) -> None:
        if isinstance(op, Put):
            live[op.entry_id] = op.raw
            self._fresh[op.entry_id] = op.rec
        else:
            live.pop(op.entry_id, None)
            self._fresh.pop(op.entry_id, None)

    def _repair(self, parsed: Parsed) -> None:
        try:
            self._repair_file(parsed)
        except BaseException:
            self._view.ino = None  # the file was not repaired: reread and retry next time
            raise
        if parsed.torn:
            self._warn(
                f"{self.journal_path}: dropped an incomplete last line ({parsed.torn} bytes, left "
                f"by an interrupted write); the file now ends at its last complete line"
            )

    def _repair_file(self, parsed: Parsed) -> None:
        if parsed.bad:
            quarantine(self.quarantine_path, self.journal_path, parsed.bad, self._clock_ms(), self._warn)
            self._compact()  # drops the bad lines, now safe in quarantine, and any torn tail
        elif parsed.torn:
            assert self._jfd is not None
            try:
                truncate_durable(self._jfd, self._view.offset)
            except OSError as exc:
                raise io_error("repair", self.journal_path, exc, "nothing was lost") from exc

    # -- writing (journal lock held) --------------------------------------------------------

    def _append_journal(self, data: bytes, lines: int, lost: str) -> None:
        fd = self._jfd
        assert fd is not None
        try:
            append_durable(fd, data)
        except OSError as exc:
            self._undo_append(fd)
            raise io_error("write to", self.journal_path, exc, lost) from exc
        self._view.offset += len(data)
        self._view.lines += lines

    def _undo_append(self, fd: int) -> None:
        """Cut a failed append off before anyone reads it; reread everything next time."""
        with contextlib.suppress(OSError):  # the next writer's catch-up cuts the torn line instead
            truncate_durable(fd, self._view.offset)
        self._view.ino = None

    def _compact(self) -> None:
        view = self._view
        data = b"".join(line + b"\n" for line in view.live.values())
        try:
            replace_durable(self.journal_path, data)
        except OSError as exc:
            raise io_error("rewrite", self.journal_path, exc, "the old journal is kept") from exc
        self._close_journal()
        view.ino = None  # should reopening fail, the next operation rereads everything
        self._jfd = open_file(self.journal_path, APPEND)
        view.ino, view.offset, view.lines = os.fstat(self._jfd).st_ino, len(data), len(view.live)

    def _maybe_compact(self) -> None:
        view = self._view
        if view.lines > max(COMPACT_MIN_LINES, COMPACT_LIVE_FACTOR * len(view.live)):
            self._compact()

    # -- small helpers ----------------------------------------------------------------------

    def _set_own(self, entry_id: str, raw: bytes | None) -> None:
        if raw is None:
            self._view.live.pop(entry_id, None)
        else:
            self._view.live[entry_id] = raw
        self._fresh.pop(entry_id, None)

    def _take(self, entry_id: str) -> Record:
        """The live record of `entry_id` as an object nobody else holds."""
        rec = self._fresh.pop(entry_id, None)
        if rec is None:
            rec = lines.record_of(self._view.live[entry_id])
        return rec

    def _note_changes(self, entry_ids: Iterable[str]) -> None:
        for entry_id in entry_ids:
            self._unpolled[entry_id] = None

    def _archive_line(self, entry_id: str, reason: str, record: Mapping[str, Any] | None) -> bytes:
        rec = self._take(entry_id) if record is None else lines.as_dict(record, entry_id, self.archive_path)
        return lines.archive_line(entry_id, reason, self._clock_ms(), rec, self.archive_path)

    def _read(self, fd: int, path: Path, offset: int, size: int) -> bytes:
        try:
            return read_range(fd, offset, size)
        except OSError as exc:
            raise io_error("read", path, exc, "nothing was changed") from exc

    def _warn(self, message: str) -> None:
        self._warnings.append(message)
        if self._on_warning is not None:
            self._on_warning(message)
        else:
            _log.warning("%s", message)

    def _close_journal(self) -> None:
        fd, self._jfd = self._jfd, None
        if fd is not None:
            os.close(fd)


def _differences(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    changed = [entry_id for entry_id, raw in new.items() if old.get(entry_id) != raw]
    return changed + [entry_id for entry_id in old if entry_id not in new]
