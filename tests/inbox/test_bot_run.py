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


@pytest.mark.e2e
def test_an_amend_signal_moves_the_stop_through_the_daemon_and_a_bad_one_changes_nothing(tmp_path: Path) -> None:
    port = free_port()
    with cluster_at(tmp_path, position_mode="one-way") as c:
        with c.config.open("a", encoding="utf-8") as f:
            f.write(f"\n[inbox]\nenabled = true\nport = {port}\n")
        c.env[SECRET_ENV] = SECRET
        c.set_price("BTCUSDT", "97000")
        c.start_daemon()
        wait_for(lambda: _answers(port), "the inbox listening")
        body = body_of(SIGNAL)
        pid = httpx.post(f"http://127.0.0.1:{port}/signal", content=body, headers=signed(body), timeout=10).json()["id"]
        wait_for(lambda: c.filled(pid) > 0 or None, "the market entry filled")
        c.wait_protected(pid, c.filled(pid))
        url = f"http://127.0.0.1:{port}/amend"

        wrong = body_of({"id": pid, "sl": "98000"})  # above the mark: it would trigger at once
        refused = httpx.post(url, content=wrong, headers=signed(wrong), timeout=10)
        good = body_of({"id": pid, "sl": "96000"})
        moved = httpx.post(url, content=good, headers=signed(good), timeout=10)

        assert refused.status_code == 422
        assert refused.json()["field"] == "sl"
        assert "it would trigger at once" in refused.json()["error"]
        assert moved.status_code == 202, moved.text
        assert moved.json() == {"id": pid, "status": "REQUESTED", "stop_loss": "96000"}
        wait_for(lambda: any(a["clientAlgoId"].startswith(f"{pid}-sl") and a["triggerPrice"].startswith("96000")
                             for a in c.live_algos(pid)), "the stop moved on the venue")  # fmt: skip
        wait_for(lambda: len(c.live_algos(pid)) == 2, "the old stop cancelled")
        c.assert_invariants(symbols=["BTCUSDT"])
