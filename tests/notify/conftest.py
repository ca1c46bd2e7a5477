"""The capture server as a fixture (see capture.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.notify.capture import BOUND_S, Capture


@pytest.fixture
def capture() -> Iterator[Capture]:
    """A capture server on a free port of 127.0.0.1, shut down after the test."""
    cap = Capture()
    thread = threading.Thread(target=cap.server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield cap
    finally:
        cap.release.set()
        cap.server.shutdown()
        cap.server.server_close()
        thread.join(BOUND_S)
