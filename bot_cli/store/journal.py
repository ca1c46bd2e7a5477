"""The pending-entry journal: entries whose orders may be live, kept across crashes.

Files in the state directory (DESIGN.md, "State directory"):

- `pending_entries.jsonl`: `{"v":1,"op":"put","id":..,"rec":{..}}` and
  `{"v":1,"op":"del","id":..,"reason":..}` lines; the latest put of an id wins, a del removes it.
- `archive.jsonl`: `{"v":1,"id":..,"reason":..,"at_ms":..,"rec":{..}}` for every entry that left.
- `pending_entries.quarantine.jsonl`: unreadable journal lines moved aside, with their line number.

Several processes share a directory (the daemon and short CLI commands). Every operation holds the
journal lock and first reads what others appended since this instance last looked: the tail from
its offset, or the whole file when the inode changed (someone compacted).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeGuard

import orjson

from bot_cli.store import InvalidRecord, SchemaVersionError, StoreError, UnknownEntry
from bot_cli.store.atomic import (
    append_durable,
    end_of_last_line,
    ensure_dir,
    open_file,
    read_range,
    replace_durable,
    truncate_durable,
)
from bot_cli.store.lock import JOURNAL_LOCK_NAME, JournalLock


SCHEMA_VERSION: Final = 1
JOURNAL_NAME: Final = "pending_entries.jsonl"
ARCHIVE_NAME: Final = "archive.jsonl"
QUARANTINE_NAME: Final = "pending_entries.quarantine.jsonl"
# Compact when the journal has more lines than this many, or this many times the live records.
COMPACT_MIN_LINES: Final = 1000
COMPACT_LIVE_FACTOR: Final = 4

Record = dict[str, Any]
Change = tuple[str, Record | None]

_log = logging.getLogger(__name__)
_UNREADABLE: Final = object()
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # one, not one a call
# The C scanner json.loads ends up in (typeshed mistypes make_scanner's argument).
_APPEND: Final = os.O_RDWR | os.O_APPEND


@dataclass(frozen=True)
class Put:
    """A journal line storing (or replacing) an entry's record."""

    entry_id: str
    rec: Record
    raw: bytes  # the stored line without its newline: compaction rewrites it byte for byte


@dataclass(frozen=True)
class Delete:
    """A journal line removing an entry."""

    entry_id: str


@dataclass(frozen=True)
class BadLine:
    """A complete journal line that cannot be read."""

    number: int
    text: str  # undecodable bytes kept as surrogate escapes, so nothing is lost
    why: str


@dataclass(frozen=True)
class Parsed:
    """What a stretch of journal that runs to end of file holds."""

    ops: tuple[Put | Delete, ...]
    bad: tuple[BadLine, ...]
    lines: int  # complete lines that stay in the file, good or bad
    size: int  # bytes of those lines
    torn: int  # bytes of a torn last line to cut off (0: none)


def parse_journal(data: bytes, path: Path, first_line: int) -> Parsed:
    """Classify each line of `data`; raises SchemaVersionError for a line from a newer bot_cli."""
    pieces = data.split(b"\n")
    torn = len(pieces.pop())  # bytes after the last newline: an append cut short
    if torn == 0 and pieces and _decode(pieces[-1]) is _UNREADABLE:
        torn = len(pieces.pop()) + 1  # a garbled last line is the same crash, seen later
    ops: list[Put | Delete] = []
    bad: list[BadLine] = []
    with _gc_paused():
        for number, line in enumerate(pieces, first_line):
            item = parse_line(line, number, path)
            if isinstance(item, BadLine):
                bad.append(item)
            else:
                ops.append(item)
    return Parsed(tuple(ops), tuple(bad), len(pieces), len(data) - torn, torn)


def parse_line(line: bytes, number: int, path: Path) -> Put | Delete | BadLine:
    """One journal line (without its newline) as an operation, or why it is unreadable."""
    obj = _decode(line)
    if obj is _UNREADABLE:
        return _bad(line, number, "not valid JSON")
    if not isinstance(obj, dict):
        return _bad(line, number, "not a JSON object")
    version = obj.get("v")
    if not _is_int(version) or version < 1:
        return _bad(line, number, "no schema version")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(path, number, version)
    return _operation(obj, line, number)


def _operation(obj: dict[str, Any], line: bytes, number: int) -> Put | Delete | BadLine:
    entry_id = obj.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        return _bad(line, number, "no entry id")
    op, rec = obj.get("op"), obj.get("rec")
    if op == "put" and isinstance(rec, dict):
        return Put(entry_id, rec, line)
    if op == "del" and isinstance(obj.get("reason"), str):
        return Delete(entry_id)
    return _bad(line, number, "neither a put with a record nor a del with a reason")


def _decode(line: bytes) -> Any:
    """The JSON value of a line, or _UNREADABLE."""
    try:
        # orjson: three times faster than the stdlib on a big journal (start-up, listings)
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(line.decode("utf-8"))  # what orjson refuses but JSON allows (huge ints)
    except (ValueError, RecursionError):
        return _UNREADABLE


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector: building many records triggers it again and again, for nothing
    (a sixth of the load time of a big journal)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _bad(line: bytes, number: int, why: str) -> BadLine:
    return BadLine(number, line.decode("utf-8", "surrogateescape"), why)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


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
        self._archive_path = self._dir / ARCHIVE_NAME
        self._quarantine_path = self._dir / QUARANTINE_NAME
        self._on_warning = on_warning
        self._clock_ms = clock_ms if clock_ms is not None else _wall_clock_ms
        self._lock = JournalLock(self._dir / JOURNAL_LOCK_NAME)
        self._view = _View()
        self._jfd: int | None = None
        self._afd: int | None = None
        self._fresh: dict[str, Record] = {}  # parsed records not handed out yet
        self._unpolled: dict[str, None] = {}  # ids others changed since load_all/poll (ordered)
        self._warnings: list[str] = []
        self._warned_archive_lines: set[int] = set()

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
        return self._archive_path

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
            self._close_archive()
        self._lock.close()

    def __del__(self) -> None:
        # Last resort for a store nobody closed: give its descriptors back.
        for fd in (getattr(self, "_jfd", None), getattr(self, "_afd", None)):
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
        puts = [(entry_id, self._encode_put(entry_id, context)) for entry_id, context in items]
        if not puts:
            return
        with self._lock:
            self._catch_up()
            lost = "the entries were NOT saved"
            self._append_journal(b"".join(raw for _, raw in puts), len(puts), lost)
            for entry_id, raw in puts:
                self._set_own(entry_id, raw[:-1])
            self._maybe_compact()

    def update(self, client_order_id: str, context: Mapping[str, Any]) -> bool:
        """Replace a record only if it is still live; False if another process removed it.

        An id is never reused, so a record someone archived (an operator's drop) must not
        come back because a slower process still held it in memory.
        """
        raw = self._encode_put(client_order_id, context)
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
        _check_id(client_order_id, self.journal_path)
        if not isinstance(reason, str) or not reason:
            raise InvalidRecord(f"remove from {self.journal_path} needs a non-empty reason")
        with self._lock:
            self._catch_up()
            if client_order_id not in self._view.live:
                raise UnknownEntry(client_order_id, self.journal_path)
            archived = self._encode_archive(client_order_id, reason, record)
            deleted = {"v": SCHEMA_VERSION, "op": "del", "id": client_order_id, "reason": reason}
            self._append_archive(archived)
            lost = f"entry {client_order_id!r} is archived but still pending; retry the remove"
            self._append_journal(self._encode(deleted, self.journal_path), 1, lost)
            self._set_own(client_order_id, None)
            self._maybe_compact()

    def load_all(self) -> dict[str, Record]:
        """Every live record by id; also marks everything as seen for poll()."""
        with self._lock:
            self._catch_up()
            self._unpolled.clear()
            with _gc_paused():
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
            if not self.archive_path.exists():
                return []
            fd = self._archive_fd()
            try:
                data = read_range(fd, 0, os.fstat(fd).st_size)
                records = self._parse_archive(data)
                self._cut_torn_tail(fd, self.archive_path)
            except OSError as exc:
                raise _io_error("read", self.archive_path, exc, "nothing was changed") from exc
            return records

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
            raise _io_error("read", self.journal_path, exc, "nothing was changed") from exc

    def _reread(self) -> None:
        fd = open_file(self.journal_path, _APPEND)
        try:
            st = os.fstat(fd)
            data = self._read(fd, self.journal_path, 0, st.st_size)
            parsed = parse_journal(data, self.journal_path, 1)
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
        parsed = parse_journal(data, self.journal_path, view.lines + 1)
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
            self._quarantine(parsed.bad)
            self._compact()  # drops the bad lines, now safe in quarantine, and any torn tail
        elif parsed.torn:
            assert self._jfd is not None
            try:
                truncate_durable(self._jfd, self._view.offset)
            except OSError as exc:
                raise _io_error("repair", self.journal_path, exc, "nothing was lost") from exc

    def _quarantine(self, bad: tuple[BadLine, ...]) -> None:
        now = self._clock_ms()
        data = b"".join(self._encode(_quarantine_line(b, now), self.quarantine_path) for b in bad)
        fd = open_file(self.quarantine_path, _APPEND)
        try:
            self._cut_torn_tail(fd, self.quarantine_path)
            append_durable(fd, data)
        except OSError as exc:
            raise _io_error("write to", self.quarantine_path, exc, "nothing was changed") from exc
        finally:
            os.close(fd)
        for line in bad:
            self._warn(
                f"{self.journal_path} line {line.number} is unreadable ({line.why}): moved it to "
                f"{self.quarantine_path}"
            )

    def _parse_archive(self, data: bytes) -> list[Record]:
        records: list[Record] = []
        unreadable: list[int] = []
        for number, line in enumerate(data.split(b"\n")[:-1], 1):
            obj = _decode(line)
            version = obj.get("v") if isinstance(obj, dict) else None
            if not _is_int(version) or version < 1:
                unreadable.append(number)
            elif version > SCHEMA_VERSION:
                raise SchemaVersionError(self.archive_path, number, version)
            else:
                records.append(obj)
        for number in unreadable:
            self._warn_archive_line(number)
        return records

    def _warn_archive_line(self, number: int) -> None:
        if number not in self._warned_archive_lines:
            self._warned_archive_lines.add(number)
            self._warn(f"{self.archive_path} line {number} is unreadable: skipped, left in place")

    # -- writing (journal lock held) --------------------------------------------------------

    def _append_journal(self, data: bytes, lines: int, lost: str) -> None:
        fd = self._jfd
        assert fd is not None
        try:
            append_durable(fd, data)
        except OSError as exc:
            self._undo_append(fd)
            raise _io_error("write to", self.journal_path, exc, lost) from exc
        self._view.offset += len(data)
        self._view.lines += lines

    def _undo_append(self, fd: int) -> None:
        """Cut a failed append off before anyone reads it; reread everything next time."""
        with contextlib.suppress(OSError):  # the next writer's catch-up cuts the torn line instead
            truncate_durable(fd, self._view.offset)
        self._view.ino = None

    def _append_archive(self, data: bytes) -> None:
        fd = self._archive_fd()
        try:
            self._cut_torn_tail(fd, self.archive_path)
            append_durable(fd, data)
        except OSError as exc:
            raise _io_error("write to", self.archive_path, exc, "nothing was removed") from exc

    def _cut_torn_tail(self, fd: int, path: Path) -> None:
        """Drop bytes after the last newline (a crashed append) so the next line starts clean."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        end = end_of_last_line(fd, size)
        truncate_durable(fd, end)
        self._warn(
            f"{path}: dropped an incomplete last line ({size - end} bytes, left by an "
            f"interrupted write)"
        )

    def _compact(self) -> None:
        view = self._view
        data = b"".join(line + b"\n" for line in view.live.values())
        try:
            replace_durable(self.journal_path, data)
        except OSError as exc:
            raise _io_error("rewrite", self.journal_path, exc, "the old journal is kept") from exc
        self._close_journal()
        view.ino = None  # should reopening fail, the next operation rereads everything
        self._jfd = open_file(self.journal_path, _APPEND)
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
            rec = json.loads(self._view.live[entry_id])["rec"]
        return rec

    def _note_changes(self, entry_ids: Iterable[str]) -> None:
        for entry_id in entry_ids:
            self._unpolled[entry_id] = None

    def _archive_fd(self) -> int:
        """The open archive, reopened if an operator moved the file away."""
        if self._afd is not None and not _same_file(self._afd, self.archive_path):
            self._close_archive()
        if self._afd is None:
            self._afd = open_file(self.archive_path, _APPEND)
        return self._afd

    def _encode_put(self, entry_id: str, context: Mapping[str, Any]) -> bytes:
        _check_id(entry_id, self.journal_path)
        rec = _as_dict(context, entry_id, self.journal_path)
        return self._encode(
            {"v": SCHEMA_VERSION, "op": "put", "id": entry_id, "rec": rec},
            self.journal_path,
            entry_id,
        )

    def _encode_archive(
        self, entry_id: str, reason: str, record: Mapping[str, Any] | None
    ) -> bytes:
        rec = (
            self._take(entry_id)
            if record is None
            else _as_dict(record, entry_id, self.archive_path)
        )
        line = {
            "v": SCHEMA_VERSION,
            "id": entry_id,
            "reason": reason,
            "at_ms": self._clock_ms(),
            "rec": rec,
        }
        return self._encode(line, self.archive_path, entry_id)

    @staticmethod
    def _encode(obj: Mapping[str, Any], path: Path, entry_id: str | None = None) -> bytes:
        try:
            text = _ENCODER.encode(obj)
        except (TypeError, ValueError, RecursionError) as exc:
            what = f"the record of {entry_id!r}" if entry_id else "a line"
            raise InvalidRecord(
                f"{what} cannot be written to {path} ({exc}): records may hold only JSON values "
                f"(nothing was written)"
            ) from exc
        return (text + "\n").encode()

    def _read(self, fd: int, path: Path, offset: int, size: int) -> bytes:
        try:
            return read_range(fd, offset, size)
        except OSError as exc:
            raise _io_error("read", path, exc, "nothing was changed") from exc

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

    def _close_archive(self) -> None:
        fd, self._afd = self._afd, None
        if fd is not None:
            os.close(fd)


def _differences(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    changed = [entry_id for entry_id, raw in new.items() if old.get(entry_id) != raw]
    return changed + [entry_id for entry_id in old if entry_id not in new]


def _quarantine_line(bad: BadLine, now_ms: int) -> Record:
    return {
        "v": SCHEMA_VERSION,
        "file": JOURNAL_NAME,
        "line": bad.number,
        "text": bad.text,
        "why": bad.why,
        "at_ms": now_ms,
    }


def _check_id(entry_id: object, path: Path) -> None:
    if not isinstance(entry_id, str) or not entry_id:
        raise InvalidRecord(f"entry ids in {path} must be non-empty strings, got {entry_id!r}")


def _as_dict(record: object, entry_id: str, path: Path) -> Record:
    if not isinstance(record, Mapping):
        raise InvalidRecord(
            f"the record of {entry_id!r} for {path} must be a mapping, got {type(record).__name__}"
        )
    return dict(record)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _io_error(action: str, path: Path, exc: OSError, consequence: str) -> StoreError:
    return StoreError(
        f"cannot {action} {path} ({exc.strerror}): {consequence}; check free disk space and "
        f"the disk's health"
    )
