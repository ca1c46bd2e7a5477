"""Take profit in steps and a trailing stop, against the paper venue, checked from the venue's side.

Real processes (`bot paper serve`, `bot run`, `bot enter`); the price moves only when the test
moves it. A take-profit level that fires leaves the rest protected: the stop-loss shrinks to what
is left, the other level stays, and a daemon killed between the level firing and the resize
converges to the same. A trailing stop follows the price up on the exchange and fires on the
pull-back, at the price the callback rate says.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BOT, Cluster, cluster_at, wait_for
from tests.e2e.test_bracket import SYMBOL


pytestmark = pytest.mark.e2e

START, SL = "97000", "90000"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        c.set_price(SYMBOL, START)
        yield c


def enter(c: Cluster, *args: str) -> str:
    done = subprocess.run([BOT, "enter", SYMBOL, "buy", "0.010", "--sl", SL, *args, "--json"], env=c.env,
                          cwd=c.root, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = str(c._answer(done.returncode, done.stdout, done.stderr, [BOT, "enter"])["id"])
    wait_for(lambda: c.status_of(pid) == "PROTECTED", f"{pid} PROTECTED")
    return pid


def live(c: Cluster, pid: str) -> dict[str, tuple[str, Decimal, Decimal]]:
    """The entry's live legs by client id: (type, trigger, quantity)."""
    return {
        a["clientAlgoId"]: (a["orderType"], Decimal(a["triggerPrice"]), Decimal(a["quantity"]))
        for a in c.live_algos(pid)
    }


def kinds(c: Cluster, pid: str) -> list[tuple[str, Decimal]]:
    return sorted((kind, qty) for kind, _, qty in live(c, pid).values())


def fired(c: Cluster, pid: str) -> list[dict[str, Any]]:
    state = c.state()
    return [a for a in state["recentAlgoOrders"] if a["clientAlgoId"].startswith(f"{pid}-")
            and a["algoStatus"] == "FINISHED"]  # fmt: skip


def test_two_take_profit_levels_then_the_stop_with_a_kill_between_the_first_level_and_the_resize(
    cluster: Cluster,
) -> None:
    c = cluster
    c.start_daemon()
    pid = enter(c, "--tp", "98000:50%", "--tp", "99000")
    assert kinds(c, pid) == [("STOP_MARKET", Decimal("0.010")), ("TAKE_PROFIT_MARKET", Decimal("0.005")),
                             ("TAKE_PROFIT_MARKET", Decimal("0.005"))]  # fmt: skip

    # Act: the daemon dies; the first level fires while nobody watches
    c.kill_daemon()
    c.set_price(SYMBOL, "98100")
    wait_for(lambda: c.position(SYMBOL) == Decimal("0.005"), "level 1 to take half")
    c.start_daemon()

    # Assert: the stop shrinks to what is left, level 2 stays, nothing else
    wait_for(lambda: kinds(c, pid) == [("STOP_MARKET", Decimal("0.005")), ("TAKE_PROFIT_MARKET", Decimal("0.005"))],
             "the stop-loss resized to the 0.005 left, level 2 still live")  # fmt: skip
    assert c.status_of(pid) in ("PROTECTING", "PROTECTED")
    [level_2] = [t for kind, t, _ in live(c, pid).values() if kind == "TAKE_PROFIT_MARKET"]
    assert level_2 == Decimal(99000)
    c.assert_invariants(symbols=[SYMBOL])

    # ... and the price falls through the stop: the rest is closed by it, the level cancelled
    c.set_price(SYMBOL, "89000")
    wait_for(lambda: c.position(SYMBOL) == 0, "the resized stop to close the rest")
    c.wait_archived(pid)
    assert sorted(Decimal(a["quantity"]) for a in fired(c, pid)) == [Decimal("0.005"), Decimal("0.005")]
    assert c.live_algos(pid) == []
    c.assert_invariants(symbols=[SYMBOL])


def test_a_trailing_stop_follows_the_price_up_and_fires_on_the_pull_back_at_the_callback_rate(
    cluster: Cluster,
) -> None:
    c = cluster
    c.start_daemon()
    pid = enter(c, "--tp", "120000", "--trail", "1")
    [trail_id] = [cid for cid, (kind, _, _) in live(c, pid).items() if kind == "TRAILING_STOP_MARKET"]
    assert trail_id == f"{pid}-tr1"

    for up in ("97500", "98500", "99500"):  # it trails: the highest is 99500
        c.set_price(SYMBOL, up)
    c.set_price(SYMBOL, "98600")  # above 99500 x 0.99 = 98505: not yet
    assert trail_id in live(c, pid)
    c.set_price(SYMBOL, "98400")  # below it: fires

    wait_for(lambda: c.position(SYMBOL) == 0, "the trailing stop to close the position")
    c.wait_archived(pid)
    [done] = fired(c, pid)
    assert done["clientAlgoId"] == trail_id
    assert Decimal(done["actualPrice"]) <= Decimal(99500) * Decimal("0.99")
    assert c.live_algos(pid) == [], "the floor stop and the take-profit are cancelled"
    c.assert_invariants(symbols=[SYMBOL])
