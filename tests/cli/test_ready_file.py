"""`bot run --ready-file PATH`: written atomically once the first reconcile has completed,
removed on a clean exit; a file left by a killed run never passes for readiness."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.cli.views import ReadyFile, remove_ready
from tests.e2e.harness import cluster_at, wait_for


KEYS = {"pid", "started_at", "venue", "reconciled_at"}


class Recorder:
    """A daemon view that remembers the calls it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def recovered(self, recovery: object, why: str) -> None:
        self.calls.append(("recovered", why))

    def message(self, message: object) -> None:
        self.calls.append(("message", message))

    def note(self, text: str, **fields: str) -> None:
        self.calls.append(("note", text))


def test_the_file_is_written_once_after_the_first_reconcile(tmp_path: Path) -> None:
    """Nothing before the first recovered(); then the document, 0600; later reconciles keep it."""
    # Arrange
    inner, path = Recorder(), tmp_path / "ready.json"
    view = ReadyFile(inner, path, "paper", started_at=1_700_000_000.25)
    view.note("starting")
    before = path.exists()

    # Act
    view.recovered(object(), "stream connected")  # type: ignore[arg-type]
    first = path.read_text()
    view.recovered(object(), "stream reconnected")  # type: ignore[arg-type]

    # Assert
    doc = json.loads(first)
    assert not before
    assert set(doc) == KEYS
    assert (doc["pid"], doc["venue"]) == (os.getpid(), "paper")
    assert doc["started_at"] == "2023-11-14T22:13:20.250+00:00"
    assert doc["started_at"] < doc["reconciled_at"]
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [c for c in inner.calls if c[0] == "recovered"] == [
        ("recovered", "stream connected"), ("recovered", "stream reconnected"),
    ]  # fmt: skip


def test_a_file_that_cannot_be_written_is_logged_and_the_daemon_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The directory gone: an error log line, no exception into the daemon loop."""
    # Arrange
    path = tmp_path / "gone" / "ready.json"
    view = ReadyFile(Recorder(), path, "paper", started_at=0.0)

    # Act
    view.recovered(object(), "stream connected")  # type: ignore[arg-type]

    # Assert
    assert not path.exists()
    assert [r.levelname for r in caplog.records if "ready file" in r.getMessage()] == ["ERROR"]
    remove_ready(path)  # removing what is not there is fine


def test_run_help_documents_the_ready_file() -> None:
    """`bot run --help` names the option and what the file holds."""
    # Act
    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)

    # Assert
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "--ready-file" in text
    assert "first reconcile" in text
    assert "reconciled_at" in text


def test_a_ready_file_in_a_missing_directory_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """Exit 1 with one line; the state dir is not even created."""
    # Act
    result = CliRunner().invoke(app, [
        "--state-dir", str(tmp_path / "state"), "run", "--no-live",
        "--ready-file", str(tmp_path / "missing" / "ready.json"),
    ])  # fmt: skip

    # Assert
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.e2e
def test_a_real_daemon_writes_it_when_reconciled_and_removes_it_on_sigterm(tmp_path: Path) -> None:
    """`bot run` against `bot paper serve`: a stale file is replaced by this run's once it has
    reconciled (its log says so first); SIGTERM exits 0 and removes it."""
    # Arrange
    path = tmp_path / "ready.json"
    path.write_text('{"pid": 1, "started_at": "stale"}')
    with cluster_at(tmp_path) as c:
        proc = c.spawn_cli("run-ready", "run", "--no-live", "--ready-file", str(path))

        # Act
        def ready() -> dict[str, object] | None:
            doc = json.loads(path.read_text()) if path.exists() else None
            return doc if doc and doc["pid"] == proc.pid else None

        doc = wait_for(ready, "the ready file of this run")
        log_when_ready = proc.log()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(20)

    # Assert
    assert doc is not None
    assert set(doc) == KEYS
    assert doc["venue"] == "paper"
    assert str(doc["started_at"]) < str(doc["reconciled_at"])
    assert "reconciled (" in log_when_ready
    assert code == 0
    assert not path.exists()
