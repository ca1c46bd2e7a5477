"""`bot run` with [inbox] enabled: a signal posted to it becomes an entry the daemon protects."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot_cli.inbox import SECRET_ENV
from tests.e2e.harness import cluster_at, free_port, wait_for
from tests.inbox import SECRET, SIGNAL, body_of, signed


@pytest.mark.e2e
def test_a_signal_posted_to_bot_run_is_entered_and_protected_on_the_venue(tmp_path: Path) -> None:
    # Arrange: the daemon serves the inbox beside itself
    port = free_port()
    with cluster_at(tmp_path) as c:
        with c.config.open("a", encoding="utf-8") as f:
            f.write(f"\n[inbox]\nenabled = true\nport = {port}\n")
        c.env[SECRET_ENV] = SECRET
        c.set_price("BTCUSDT", "97000")
        c.start_daemon()
        url = f"http://127.0.0.1:{port}/signal"
        wait_for(lambda: _answers(port), "the inbox listening")

        # Act: a market entry; then the same alert delivered twice
        body = body_of(SIGNAL)
        first = httpx.post(url, content=body, headers=signed(body), timeout=10)
        again = httpx.post(url, content=body, headers=signed(body), timeout=10)

        # Assert: seen from the venue, one entry order, protected for what filled
        assert first.status_code == 202
        assert again.status_code == 409
        pid = first.json()["id"]
        assert again.json()["id"] == pid
        wait_for(lambda: c.filled(pid) > 0 or None, "the market entry filled")
        c.wait_protected(pid, c.filled(pid))
        c.assert_invariants(symbols=["BTCUSDT"])  # from the venue: sent once, covered, no orphan


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False
