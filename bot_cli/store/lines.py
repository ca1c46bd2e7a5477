"""The journal's line format (pure: bytes in, values out; no file is touched here).

- `pending_entries.jsonl`: `{"v":1,"op":"put","id":..,"rec":{..}}` and
  `{"v":1,"op":"del","id":..,"reason":..}` lines; the latest put of an id wins, a del removes it.
- `archive.jsonl`: `{"v":1,"id":..,"reason":..,"at_ms":..,"rec":{..}}` for every entry that left.
- `pending_entries.quarantine.jsonl`: `{"v":1,"file":..,"line":..,"text":..,"why":..,"at_ms":..}`
  for every unreadable journal line moved aside.

A line from a newer bot_cli (`v` above `SCHEMA_VERSION`) raises `SchemaVersionError`: nothing is
read past what this version understands.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeGuard

import orjson

from bot_cli.store import InvalidRecord, SchemaVersionError


__all__ = [
    "SCHEMA_VERSION",
    "BadLine",
    "Delete",
    "Parsed",
    "Put",
    "Record",
    "archive_line",
    "del_line",
    "encode_line",
    "parse_archive",
    "parse_journal",
    "parse_line",
    "put_line",
    "quarantine_line",
]

SCHEMA_VERSION: Final = 1

Record = dict[str, Any]

UNREADABLE: Final = object()
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # one, not one a call


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


# -- reading ------------------------------------------------------------------------------


def parse_journal(data: bytes, path: Path, first_line: int) -> Parsed:
    """Classify each line of `data`; raises SchemaVersionError for a line from a newer bot_cli."""
    pieces = data.split(b"\n")
    torn = len(pieces.pop())  # bytes after the last newline: an append cut short
    if torn == 0 and pieces and decode(pieces[-1]) is UNREADABLE:
        torn = len(pieces.pop()) + 1  # a garbled last line is the same crash, seen later
    ops: list[Put | Delete] = []
    bad: list[BadLine] = []
    with gc_paused():
        for number, line in enumerate(pieces, first_line):
            item = parse_line(line, number, path)
            if isinstance(item, BadLine):
                bad.append(item)
            else:
                ops.append(item)
    return Parsed(tuple(ops), tuple(bad), len(pieces), len(data) - torn, torn)


def parse_line(line: bytes, number: int, path: Path) -> Put | Delete | BadLine:
    """One journal line (without its newline) as an operation, or why it is unreadable."""
    obj = decode(line)
    if obj is UNREADABLE:
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


def parse_archive(data: bytes, path: Path) -> tuple[list[Record], list[int]]:
    """The readable archive lines of complete `data`, and the numbers of the unreadable ones."""
    records: list[Record] = []
    unreadable: list[int] = []
    for number, line in enumerate(data.split(b"\n")[:-1], 1):
        obj = decode(line)
        version = obj.get("v") if isinstance(obj, dict) else None
        if not _is_int(version) or version < 1:
            unreadable.append(number)
        elif version > SCHEMA_VERSION:
            raise SchemaVersionError(path, number, version)
        else:
            records.append(obj)
    return records, unreadable


def record_of(raw: bytes) -> Record:
    """The record of a stored put line (one this module wrote or read as a Put)."""
    rec: Record = json.loads(raw)["rec"]
    return rec


def decode(line: bytes) -> Any:
    """The JSON value of a line, or UNREADABLE."""
    try:
        # orjson: three times faster than the stdlib on a big journal (start-up, listings)
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(line.decode("utf-8"))  # what orjson refuses but JSON allows (huge ints)
    except (ValueError, RecursionError):
        return UNREADABLE


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
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


# -- writing ------------------------------------------------------------------------------


def put_line(entry_id: str, context: Mapping[str, Any], path: Path) -> bytes:
    """The journal line storing `context` as the record of `entry_id` (InvalidRecord if it can't)."""
    check_id(entry_id, path)
    rec = as_dict(context, entry_id, path)
    return encode_line({"v": SCHEMA_VERSION, "op": "put", "id": entry_id, "rec": rec}, path, entry_id)


def del_line(entry_id: str, reason: str, path: Path) -> bytes:
    """The journal line removing `entry_id`."""
    return encode_line({"v": SCHEMA_VERSION, "op": "del", "id": entry_id, "reason": reason}, path)


def archive_line(entry_id: str, reason: str, at_ms: int, rec: Record, path: Path) -> bytes:
    """The archive line of an entry that left the journal."""
    line = {"v": SCHEMA_VERSION, "id": entry_id, "reason": reason, "at_ms": at_ms, "rec": rec}
    return encode_line(line, path, entry_id)


def quarantine_line(bad: BadLine, journal_name: str, now_ms: int, path: Path) -> bytes:
    """The quarantine line keeping an unreadable journal line, with where it was and why."""
    line = {"v": SCHEMA_VERSION, "file": journal_name, "line": bad.number, "text": bad.text, "why": bad.why,
            "at_ms": now_ms}  # fmt: skip
    return encode_line(line, path)


def encode_line(obj: Mapping[str, Any], path: Path, entry_id: str | None = None) -> bytes:
    """`obj` as one compact JSON line; InvalidRecord (naming `path`) if it holds no JSON value."""
    try:
        text = _ENCODER.encode(obj)
    except (TypeError, ValueError, RecursionError) as exc:
        what = f"the record of {entry_id!r}" if entry_id else "a line"
        raise InvalidRecord(
            f"{what} cannot be written to {path} ({exc}): records may hold only JSON values "
            f"(nothing was written)"
        ) from exc
    return (text + "\n").encode()


def check_id(entry_id: object, path: Path) -> None:
    if not isinstance(entry_id, str) or not entry_id:
        raise InvalidRecord(f"entry ids in {path} must be non-empty strings, got {entry_id!r}")


def as_dict(record: object, entry_id: str, path: Path) -> Record:
    if not isinstance(record, Mapping):
        raise InvalidRecord(
            f"the record of {entry_id!r} for {path} must be a mapping, got {type(record).__name__}"
        )
    return dict(record)
