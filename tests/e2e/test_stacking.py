"""One entry per position by default; with `[protection] stacking`, entries share a position and
the missing OCO, when it bites, is booked exactly and said loudly.

Binance nets every entry on a symbol (one-way mode) into one position and has no one-cancels-
other: once one leg fires, the bot cancels its sibling, and until that cancel lands the sibling
may fire too. Alone on its position that is harmless (a reduce-only leg finds nothing left).
With another entry on the position, the second leg closes that entry's share.

Real processes (the paper venue, `bot run`, `bot enter`, `bot status`), checked from the venue's
REST API and a webhook that receives the daemon's notices. Prices move only when the test moves
them.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BOT, Cluster, cluster_at, read_state_dir, wait_for
from tests.e2e.test_bracket import SYMBOL, protected_entry, wait_fired
from tests.notify.capture import Capture
from tests.notify.conftest import capture as capture_server  # noqa: F401 - the capture server fixture, shared


pytestmark = pytest.mark.e2e

START = "97000"
A_QTY, A_SL, A_TP = "0.010", "90000", "99000"
# B's legs sit inside A's: the price can cross both of B's and neither of A's.
B_QTY, B_SL, B_TP = "0.006", "95000", "98000"
DOWN, UP = "94000", "98500"  # below B's stop-loss only; then above B's take-profit only
LEFT = Decimal(A_QTY) - Decimal(B_QTY)  # B's two legs sold 2 x 0.006 of the 0.016 held


@contextlib.contextmanager
def start(tmp_path: Path, *, stacking: bool, hook: str = "") -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way", stacking=stacking) as c:
        if hook:
            with c.config.open("a") as f:
                f.write(f'\n[notify]\nwebhook_url = "{hook}/hook"\n')
        c.set_price(SYMBOL, START)
        yield c


def test_by_default_a_second_entry_on_a_held_position_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    with start(tmp_path, stacking=False) as c:
        # Arrange
        c.start_daemon()
        a, _ = protected_entry(c, A_QTY, sl=A_SL, tp=A_TP)
        orders_before = c.state()

        # Act
        done = subprocess.run(
            [BOT, "enter", SYMBOL, "buy", B_QTY, "--sl", B_SL, "--tp", B_TP], env=c.env, cwd=c.root,
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip

        # Assert: one line naming the entry in the way and what to do; nothing sent, nothing written
        assert done.returncode == 1, done
        (line,) = [x for x in done.stderr.splitlines() if x.strip()]
        assert f"entry {a} (PROTECTED)" in line, line
        assert "stacking = true" in line, line
        after = c.state()
        assert len(after["recentOrders"]) + len(after["openOrders"]) == len(orders_before["recentOrders"]) + len(
            orders_before["openOrders"])
        assert [x["clientAlgoId"] for x in after["openAlgoOrders"]] == [
            x["clientAlgoId"] for x in orders_before["openAlgoOrders"]]
        assert c.position(SYMBOL) == Decimal(A_QTY)
        journal, _ = read_state_dir(c.state_dir)
        assert list(journal) == [a]


def _whipsaw(c: Cluster, b_legs: dict[str, dict[str, Any]], daemon: str) -> None:
    """The price crosses B's stop-loss, then B's take-profit, before B's TP is cancelled: the
    daemon is down, or every cancel of an algo order meets a 429 until the price is back."""
    if daemon == "down":
        c.kill_daemon()
    else:
        c.add_faults("rate_limit_429:algoOrder@DELETE")
    c.set_price(SYMBOL, DOWN)
    wait_fired(c, b_legs["sl"], Decimal(A_QTY))
    c.set_price(SYMBOL, UP)
    wait_fired(c, b_legs["tp"], LEFT)
    if daemon == "down":
        c.start_daemon()
    else:
        c.clear_faults()


@pytest.mark.parametrize("daemon", ["429 on the cancel", "down"])
def test_with_stacking_both_legs_of_one_entry_executed_the_other_entry_pays_exactly_and_hears_it(
    tmp_path: Path, capture_server: Capture, daemon: str,  # noqa: F811
) -> None:
    """A 0.010 and B 0.006 long on one position; both of B's legs execute. B's TP closed 0.006 of
    A's share: A's share is 0.004, its history and the over_execution notice name B and the
    price, A's stop-loss and take-profit cover exactly 0.004, B is archived, `bot status` exit 0."""
    with start(tmp_path, stacking=True, hook=capture_server.url) as c:
        # Arrange
        c.start_daemon()
        a, _ = protected_entry(c, A_QTY, sl=A_SL, tp=A_TP)
        b, b_legs = protected_entry(c, B_QTY, sl=B_SL, tp=B_TP)
        b_tp = b_legs["tp"]["clientAlgoId"]

        # Act
        _whipsaw(c, b_legs, daemon)

        # Assert: from the venue, A's legs cover exactly what is left of the position
        wait_for(lambda: _live_total(c, a) == {"sl": LEFT, "tp": LEFT}, f"A's legs resized to {LEFT}")
        c.wait_archived(b)
        assert c.position(SYMBOL) == LEFT
        assert c.algo_status(b_tp) == "FINISHED"
        # Assert: A's record says who took what, at which price
        journal, _ = read_state_dir(c.state_dir)
        said = [n[1] for n in journal[a]["history"] if f"closed by entry {b}'s TP" in n[1]]
        assert said, journal[a]["history"]
        assert f"{B_QTY} {SYMBOL}" in said[0], said
        assert " at 98500" in said[0], said
        # Assert: the notice reached the webhook, naming both entries, the quantity and the price
        notices = wait_for(lambda: _notices(capture_server, "over_execution"), "the over_execution notice")
        text = notices[0]["text"]
        for named in (a, b, B_QTY, "98500"):
            assert named in text, text
        code, doc = c.status()
        assert code == 0, doc


def _live_total(c: Cluster, pid: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for x in c.live_algos(pid):
        leg = "sl" if "-sl" in x["clientAlgoId"] else "tp"
        out[leg] = out.get(leg, Decimal(0)) + Decimal(x["quantity"])
    return out


def _notices(capture: Capture, kind: str) -> list[dict[str, Any]]:
    return [s.json() for s in capture.seen if s.json().get("kind") == kind]
