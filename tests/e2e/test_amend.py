"""`bot amend`: a stop moved (or moved to breakeven) with the promise kept through the move.

Real processes (`bot paper serve`, `bot run`, `bot enter`, `bot amend`), checked from the venue's
REST API and its timestamps: the new stop is live before the old one is cancelled, exactly one
stop is left at the new level, and it is the one that fires.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.harness import BOT, Cluster, cluster_at, wait_for
from tests.e2e.test_bracket import SYMBOL, protected_entry


pytestmark = pytest.mark.e2e

START, SL, TP, MOVED = "97000", "90000", "99000", "95000"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        c.set_price(SYMBOL, START)
        yield c


def amend(c: Cluster, pid: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BOT, "amend", pid, *args], env=c.env, cwd=c.root, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)  # fmt: skip


def stops(c: Cluster, pid: str) -> list[dict[str, object]]:
    """Every stop-loss of the entry the venue knows, live or not, oldest first."""
    state = c.state()
    found = [a for a in [*state["openAlgoOrders"], *state["recentAlgoOrders"]]
             if str(a["clientAlgoId"]).startswith(f"{pid}-sl")]  # fmt: skip
    return sorted(found, key=lambda a: int(str(a["algoId"])))


def assert_moved_make_before_break(c: Cluster, pid: str, old: dict[str, object], level: str) -> None:
    legs = c.legs_of(pid)
    new = legs["sl"]
    assert Decimal(str(new["triggerPrice"])) == Decimal(level)
    assert Decimal(str(new["quantity"])) == Decimal("0.010")
    gone = next(a for a in stops(c, pid) if a["clientAlgoId"] == old["clientAlgoId"])
    assert gone["algoStatus"] == "CANCELED"
    # the venue's own clock: the new stop was created before the old one was cancelled
    assert int(new["createTime"]) <= int(gone["updateTime"])  # type: ignore[call-overload]
    assert Decimal(str(legs["tp"]["triggerPrice"])) == Decimal(TP)


@pytest.mark.parametrize("daemon", [True, False], ids=["through-the-daemon", "alone"])
def test_a_moved_stop_is_live_before_the_old_one_goes_and_only_it_remains(cluster: Cluster, daemon: bool) -> None:
    c = cluster
    c.start_daemon()
    pid, legs = protected_entry(c, sl=SL, tp=TP)
    if not daemon:
        c.kill_daemon()

    done = amend(c, pid, "--sl", MOVED)

    assert done.returncode == 0, done.stderr
    assert f"stop-loss {MOVED}" in done.stdout
    by = "bot run" if daemon else "this process"
    assert f"[by {by}" in done.stdout
    assert_moved_make_before_break(c, pid, legs["sl"], MOVED)
    assert [a["algoStatus"] for a in stops(c, pid)] == ["CANCELED", "NEW"]


def test_breakeven_moves_the_stop_to_the_fill_plus_fees_and_that_stop_is_the_one_that_fires(cluster: Cluster) -> None:
    c = cluster
    c.start_daemon()
    pid, legs = protected_entry(c, sl=SL, tp=TP)
    c.set_price(SYMBOL, "98000")

    done = amend(c, pid, "--breakeven")

    assert done.returncode == 0, done.stderr
    breakeven = "97097.00"  # the fill at 97000 plus 0.1 % (two taker fees), rounded up to the tick
    assert_moved_make_before_break(c, pid, legs["sl"], breakeven)
    c.set_price(SYMBOL, "97050")  # through the new stop, far above the old one
    wait_for(lambda: c.position(SYMBOL) == 0, "the moved stop to close the position")
    c.wait_archived(pid)
    [fired] = [a for a in stops(c, pid) if a["algoStatus"] == "FINISHED"]
    assert Decimal(str(fired["triggerPrice"])) == Decimal(breakeven)
    assert c.live_algos(pid) == []
    c.assert_invariants(symbols=[SYMBOL])


def test_a_level_on_the_wrong_side_of_the_mark_is_refused_in_one_line_and_nothing_changes(cluster: Cluster) -> None:
    c = cluster
    c.start_daemon()
    pid, _ = protected_entry(c, sl=SL, tp=TP)
    before = c.state()["openAlgoOrders"]

    done = amend(c, pid, "--sl", "98000")

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [(
        "error: not amended: stop-loss 98000 is not below BTCUSDT's mark price 97000.00 (MARK_PRICE): for a buy"
        " it would trigger at once (-2021); use a stop-loss below 97000.00"
    )]
    assert c.state()["openAlgoOrders"] == before
    assert not (c.state_dir / "requests").exists() or not list((c.state_dir / "requests").iterdir())


def test_a_daemon_killed_while_the_new_stop_is_answered_converges_to_exactly_the_new_level(cluster: Cluster) -> None:
    c = cluster
    c.start_daemon()
    pid, legs = protected_entry(c, sl=SL, tp=TP)
    spec = "slow_response:algoOrder@POST#1:30"
    c.add_faults(spec)  # the new stop lands on the venue; its answer is held

    c.spawn_cli("amend", "amend", pid, "--sl", MOVED, "--timeout", "60")
    c.wait_fault_fired(spec)
    c.kill_daemon()
    c.start_daemon()

    wait_for(lambda: [a["algoStatus"] for a in stops(c, pid)] == ["CANCELED", "NEW"],
             "exactly the new stop live, the old one cancelled")  # fmt: skip
    assert_moved_make_before_break(c, pid, legs["sl"], MOVED)
    wait_for(lambda: c.status_of(pid) == "PROTECTED", "the entry protected at rest")
    c.assert_invariants(symbols=[SYMBOL])


def test_a_trailing_stop_added_by_amend_trails_on_the_exchange_and_fires_on_the_pull_back(cluster: Cluster) -> None:
    c = cluster
    c.start_daemon()
    pid, legs = protected_entry(c, sl=SL, tp=TP)

    done = amend(c, pid, "--trail", "1")

    assert done.returncode == 0, done.stderr
    trailing = [a for a in c.live_algos(pid) if a["orderType"] == "TRAILING_STOP_MARKET"]
    assert [(a["clientAlgoId"], Decimal(a["quantity"])) for a in trailing] == [(f"{pid}-tr2", Decimal("0.010"))]
    assert {legs["sl"]["clientAlgoId"], legs["tp"]["clientAlgoId"]} <= {a["clientAlgoId"] for a in c.live_algos(pid)}
    for up in ("97800", "98600"):
        c.set_price(SYMBOL, up)
    c.set_price(SYMBOL, "97500")  # below 98600 x 0.99 = 97614
    wait_for(lambda: c.position(SYMBOL) == 0, "the trailing stop to close the position")
    c.wait_archived(pid)
    c.assert_invariants(symbols=[SYMBOL])
