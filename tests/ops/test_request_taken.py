"""`bot cancel` / `bot close` through a daemon that is killed mid-way: whether the daemon took the
request is read from the entry's record too, not only from the request file (the daemon writes
the entry's step before it removes the file, and a kill can fall between the two)."""

from __future__ import annotations

from pathlib import Path

from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.model import Status
from bot_cli.ops.exit import _from_daemon, _taken
from tests.core.helpers import T0, pending


def test_a_request_file_left_by_a_killed_daemon_is_taken_when_the_record_carries_the_step(tmp_path: Path) -> None:
    # Arrange: the daemon applied the close (the record says so), then died before removing the file
    request = tmp_path / "bc0.close.json"
    request.write_text("{}")
    before = pending(Status.PROTECTED)
    after, _ = step(before, ev.OperatorClose(before.pending_id), T0 + 10)

    # Act
    taken = _taken(request, after, asked_at=T0 + 5)
    said = _from_daemon(after, "close", "pid 42", taken=taken, gone=True, wait=15).note

    # Assert
    assert taken
    assert "took the request to close" in said
    assert "stopped before taking" not in said


def test_a_request_the_record_does_not_show_was_not_taken(tmp_path: Path) -> None:
    request = tmp_path / "bc0.close.json"
    request.write_text("{}")
    untouched = pending(Status.PROTECTED)

    assert not _taken(request, untouched, asked_at=T0 + 5)
