"""The journal's append-only side files, never rewritten: the archive and the quarantine.

`archive.jsonl` has one line for every entry that left the journal: the journal appends here
(under its lock) before it writes the entry's del line, so an entry is never gone from both
files. An unreadable archive line is skipped with a warning and left in place.
`pending_entries.quarantine.jsonl` keeps every unreadable journal line the journal dropped.
In both, a torn last line (a crashed append) is cut before the next append.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bot_cli.store.atomic import append_durable, cut_torn_tail, io_error, open_file, read_range
from bot_cli.store.lines import SCHEMA_VERSION, BadLine, Record, parse_archive, quarantine_line


ARCHIVE_NAME: Final = "archive.jsonl"
# A remove looks this far back for its own line (an archive line holds the entry's history: a
# few KB); only a crash between the two appends leaves one there, and the retry comes soon after.
TAIL_BYTES: Final = 1 << 20
APPEND: Final = os.O_RDWR | os.O_APPEND

Warn = Callable[[str], None]


class Archive:
    """The archive file of one state directory; the caller holds the journal lock."""

    def __init__(self, path: Path, warn: Warn) -> None:
        self.path = path
        self._warn = warn
        self._fd: int | None = None
        self._warned_lines: set[int] = set()

    def append(self, line: bytes) -> None:
        """Append one encoded line; it is on disk when this returns."""
        fd = self._open()
        try:
            append_line(fd, line, self.path, self._warn)
        except OSError as exc:
            raise io_error("write to", self.path, exc, "nothing was removed") from exc

    def holds_recent(self, entry_id: str) -> bool:
        """Whether one of the archive's last lines (its last TAIL_BYTES) is ``entry_id``'s: a remove
        that crashed after its archive line and before the journal's del line got that far."""
        if not self.path.exists():
            return False
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            start = max(0, size - TAIL_BYTES)
            tail = read_range(fd, start, size - start)
        except OSError as exc:
            raise io_error("read", self.path, exc, "nothing was removed") from exc
        head = b'{"v":' + str(SCHEMA_VERSION).encode() + b',"id":"' + entry_id.encode() + b'"'
        return any(line.startswith(head) for line in tail.split(b"\n"))

    def read(self) -> list[Record]:
        """Every readable line, oldest first (unreadable ones are skipped with a warning, once)."""
        if not self.path.exists():
            return []
        fd = self._open()
        try:
            data = read_range(fd, 0, os.fstat(fd).st_size)
            records, unreadable = parse_archive(data, self.path)
            for number in unreadable:
                self._warn_line(number)
            self._cut_tail(fd)
        except OSError as exc:
            raise io_error("read", self.path, exc, "nothing was changed") from exc
        return records

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        # Last resort for an archive nobody closed: give its descriptor back.
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _open(self) -> int:
        """The open archive, reopened if an operator moved the file away."""
        if self._fd is not None and not _same_file(self._fd, self.path):
            self.close()
        if self._fd is None:
            self._fd = open_file(self.path, APPEND)
        return self._fd

    def _cut_tail(self, fd: int) -> None:
        if cut := cut_torn_tail(fd):
            self._warn(torn_tail_warning(self.path, cut))

    def _warn_line(self, number: int) -> None:
        if number not in self._warned_lines:
            self._warned_lines.add(number)
            self._warn(f"{self.path} line {number} is unreadable: skipped, left in place")


def quarantine(path: Path, journal: Path, bad: tuple[BadLine, ...], now_ms: int, warn: Warn) -> None:
    """Keep the unreadable lines of `journal` in the quarantine file at `path`, saying so for each."""
    data = b"".join(quarantine_line(b, journal.name, now_ms, path) for b in bad)
    fd = open_file(path, APPEND)
    try:
        append_line(fd, data, path, warn)
    except OSError as exc:
        raise io_error("write to", path, exc, "nothing was changed") from exc
    finally:
        os.close(fd)
    for line in bad:
        warn(f"{journal} line {line.number} is unreadable ({line.why}): moved it to {path}")


def append_line(fd: int, data: bytes, path: Path, warn: Warn) -> None:
    """Append `data` to an append-only file, after cutting a torn last line (said through warn)."""
    if cut := cut_torn_tail(fd):
        warn(torn_tail_warning(path, cut))
    append_durable(fd, data)


def torn_tail_warning(path: Path, size: int) -> str:
    return f"{path}: dropped an incomplete last line ({size} bytes, left by an interrupted write)"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
