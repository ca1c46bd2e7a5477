"""SIGTERM to a one-shot command: it stops with one line naming what it left and what finishes
it, exits 143, and loses nothing: the journal was written before anything was sent, so
`bot recover` finishes the entry with exactly one order on the venue."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.harness import cluster_at, read_state_dir, wait_for


pytestmark = pytest.mark.e2e


def test_sigterm_while_bot_enter_waits_for_its_order_says_what_it_left_and_recover_finishes_it(
    tmp_path: Path,
) -> None:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        # Arrange: the entry order executes on the venue, its answer is held 20 s
        c.set_price("BTCUSDT", "97000")
        c.add_faults("slow_response:order@POST#1:20")
        enter = c.spawn_cli("enter", "enter", "BTCUSDT", "buy", "0.010", "--sl", "95000", "--tp", "99000")
        c.wait_fault_fired("slow_response:order@POST#1:20")

        # Act
        enter.popen.send_signal(signal.SIGTERM)
        code = enter.popen.wait(30)

        # Assert: one line, 143, the entry named with its state, and what finishes it
        (pid,) = read_state_dir(c.state_dir)[0]
        lines = [x for x in enter.log().splitlines() if x.startswith("error:")]
        assert code == 143, enter.tail()
        assert len(lines) == 1, enter.tail()
        assert "stopped by SIGTERM before `bot enter` finished" in lines[0]
        assert f"left {pid} SUBMITTING" in lines[0]
        assert "`bot recover`" in lines[0]

        # Assert: recover finds the order that landed and protects it; nothing is sent twice
        c.clear_faults()
        done = c.recover("--yes")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: len(c.live_algos(pid)) == 2, f"{pid}'s legs")
        view = c.assert_invariants(symbols=["BTCUSDT"])
        assert len(view.entry_orders(pid)) == 1
