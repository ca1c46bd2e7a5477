"""The listenKey is never printed whole: whoever has it can read the account's user data stream
for an hour. `bot paper serve`'s log and `bot run`'s log show its first and last four characters."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot_cli.redact import RedactKeys, listen_key, redact_keys
from tests.e2e.harness import cluster_at, signed_send, wait_for


KEY = "xl7aPqXNMxcbsMDwzgtQgkzDyXEo9UHXAklaUNqRAxmvswv4krae3moefo44k0i6"


def test_a_key_in_a_stream_path_keeps_only_its_ends() -> None:
    assert redact_keys(f'"WebSocket /private/ws/{KEY}" [accepted]') == '"WebSocket /private/ws/xl7a…k0i6" [accepted]'
    assert listen_key(KEY) == "xl7a…k0i6"


def test_a_log_record_with_a_key_in_its_arguments_is_rewritten() -> None:
    record = logging.makeLogRecord({"msg": "connected on %s", "args": (f"/ws/{KEY}",)})

    kept = RedactKeys().filter(record)

    assert kept
    assert record.getMessage() == "connected on /ws/xl7a…k0i6"


@pytest.mark.e2e
def test_neither_the_venue_nor_the_daemon_logs_the_whole_key(tmp_path: Path) -> None:
    with cluster_at(tmp_path) as c:
        c.start_daemon()
        key = signed_send(c.http, "POST", "/fapi/v1/listenKey", {})["listenKey"]  # the daemon's, still valid
        venue = c.venue
        assert venue is not None
        wait_for(lambda: listen_key(key) in venue.log(), "the venue to log the stream's connection")

        logs = venue.log() + "".join(p.log() for p in c.runs)

        assert key not in logs
