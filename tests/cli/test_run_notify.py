"""`bot run` tells a person it started and stopped, through the configured webhook."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.harness import cluster_at, wait_for
from tests.notify.capture import Capture
from tests.notify.conftest import capture as capture_server  # noqa: F401 - the capture server fixture, shared


@pytest.mark.e2e
def test_a_daemon_says_it_started_and_stopped(tmp_path: Path, capture_server: Capture) -> None:  # noqa: F811
    # Arrange
    ready = tmp_path / "ready.json"
    with cluster_at(tmp_path) as c:
        with c.config.open("a", encoding="utf-8") as f:
            f.write(f'\n[notify]\nwebhook_url = "{capture_server.url}/hook"\n')
        proc = c.spawn_cli("run-notify", "run", "--no-live", "--ready-file", str(ready))

        # Act
        wait_for(lambda: ready.exists() or None, "the daemon reconciled")
        started = capture_server.wait_for(1)
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(20)
        seen = capture_server.wait_for(2)

    # Assert
    kinds = [json.loads(s.body)["kind"] for s in seen]
    assert json.loads(started[0].body)["venue"] == "paper"
    assert kinds == ["daemon_started", "daemon_stopped"]
    assert code == 0
