"""The journal's line format as pure functions: bytes in, operations and bad lines out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_cli.store import InvalidRecord, SchemaVersionError
from bot_cli.store.lines import (
    BadLine,
    Delete,
    Put,
    archive_line,
    del_line,
    parse_archive,
    parse_journal,
    parse_line,
    put_line,
)


PATH = Path("state/pending_entries.jsonl")


def test_a_put_and_a_del_line_read_back_as_their_operations() -> None:
    """put_line/del_line write what parse_line reads; a put keeps its exact bytes."""
    put, delete = put_line("e1", {"n": 1}, PATH), del_line("e1", "done", PATH)

    assert parse_line(put[:-1], 1, PATH) == Put("e1", {"n": 1}, put[:-1])
    assert parse_line(delete[:-1], 2, PATH) == Delete("e1")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        pytest.param(b"garbage", "not valid JSON", id="not JSON"),
        pytest.param(b"[1]", "not a JSON object", id="a list"),
        pytest.param(b'{"op":"put","id":"e1","rec":{}}', "no schema version", id="no version"),
        pytest.param(b'{"v":1,"op":"put","rec":{}}', "no entry id", id="no id"),
        pytest.param(b'{"v":1,"op":"del","id":"e1"}', "neither a put with a record nor a del with a reason",
                     id="del without a reason"),
    ],
)
def test_an_unreadable_line_says_why(line: bytes, why: str) -> None:
    """A complete line that is no operation is a BadLine with its number and reason."""
    assert parse_line(line, 7, PATH) == BadLine(7, line.decode(), why)


def test_a_line_from_a_newer_version_stops_the_read() -> None:
    """v above SCHEMA_VERSION raises (nothing past what this version understands is read)."""
    with pytest.raises(SchemaVersionError):
        parse_line(b'{"v":2,"op":"put","id":"e1","rec":{}}', 3, PATH)


def test_a_torn_last_line_is_counted_to_be_cut_not_read() -> None:
    """Bytes after the last newline (or a garbled last line) are a crashed append."""
    good = put_line("e1", {}, PATH)

    cut_short = parse_journal(good + b'{"v":1,"op"', PATH, 1)
    garbled = parse_journal(good + b"{garbled\n", PATH, 1)

    assert (len(cut_short.ops), cut_short.lines, cut_short.size, cut_short.torn) == (1, 1, len(good), 11)
    assert (len(garbled.ops), garbled.lines, garbled.torn, garbled.bad) == (1, 1, 9, ())


def test_a_record_that_is_not_json_is_refused_before_anything_is_written() -> None:
    """InvalidRecord names the entry and the file."""
    with pytest.raises(InvalidRecord, match="'e1'"):
        put_line("e1", {"price": object()}, PATH)


def test_archive_lines_read_back_and_unreadable_ones_are_numbered() -> None:
    """parse_archive: the readable records, and the line numbers of the rest."""
    data = archive_line("e1", "done", 5, {"n": 1}, PATH) + b"junk\n"

    records, unreadable = parse_archive(data, PATH)

    assert records == [{"v": 1, "id": "e1", "reason": "done", "at_ms": 5, "rec": {"n": 1}}]
    assert unreadable == [2]
