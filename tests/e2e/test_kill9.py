"""SIGKILL `bot run` at each step of an entry's life, restart it, and check the four invariants.

Real processes, as an operator runs them: `bot paper serve` on its own (it keeps running, so the
entry fills while the daemon is dead), `bot run` killed with SIGKILL and started again, `bot
enter` as a subprocess. The paper venue moves prices only when a test moves them (volatility 0).
A limit order fills at most 40% of its quantity per 100 ms step, so a full crossing gives three
fills (0.004, 0.004, 0.002 of 0.010) and a short "pulse" across the limit gives one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, cluster_at, wait_for


pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
START = "97000"  # the market when the entry is made
LIMIT = "96900"  # the buy limit
CROSS = "96800"  # a market below the limit: the entry fills
SL, TP = "90000", "99000"
QTY = "0.010"
FULL = Decimal(QTY)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A venue running; daemons are started by the test. Everything is killed afterwards."""
    with cluster_at(tmp_path) as c:
        yield c


def open_entry(c: Cluster, *, price: str | None = LIMIT, expect: str = "OPEN") -> str:
    """Daemon up, `bot enter` handed to it; returns the pending id once enter has returned."""
    c.set_price(SYMBOL, START)
    if not c.daemon_alive():
        c.start_daemon()
    answer = c.enter(SYMBOL, "buy", QTY, price=price, sl=SL, tp=TP)
    assert answer["exit_code"] == 0, answer
    assert answer["sent_by"].startswith("bot run"), answer  # the daemon sent it, not enter
    pid = str(answer["id"])
    if answer["state"] in ("OPEN", "PROTECTING") and expect != "OPEN":
        # enter answers once the daemon has sent it: a market entry's fill, and its legs' answers
        # (the stream's or the send's), may come a moment after
        wait_for(lambda: c.status_of(pid) == expect, f"entry {pid} to be {expect}")
    else:
        assert answer["state"] == expect, answer
    return pid


def fill_while_down(c: Cluster, pid: str) -> None:
    """The market crosses the limit while no daemon runs; the fill is unprotected until restart."""
    assert not c.daemon_alive()
    c.set_price(SYMBOL, CROSS)
    wait_for(lambda: c.filled(pid) == FULL, f"entry {pid} to fill while the daemon is down")
    assert c.live_algos(pid) == [], "nothing could have protected it: no daemon runs"


def restart_and_check(c: Cluster, pid: str, outcome: str = "PROTECTED") -> None:
    c.start_daemon()
    c.assert_invariants(symbols=[SYMBOL])
    assert c.status_of(pid) == outcome


# --- a) killed right after `bot enter` returned (entry OPEN), filled while down ---------------


def test_a_killed_with_the_entry_open_then_filled_while_down(cluster: Cluster) -> None:
    """The entry is OPEN; kill; the market crosses; the restart protects the whole fill once."""
    # Arrange
    pid = open_entry(cluster)

    # Act
    cluster.kill_daemon()
    fill_while_down(cluster, pid)

    # Assert
    restart_and_check(cluster, pid)


# --- b) killed after the fill was seen, and right as it happens -----------------------------


def test_b_killed_once_the_fill_is_protected_on_the_venue(cluster: Cluster) -> None:
    """The daemon saw the (first) fill and a stop is live; kill then; the restart finishes it."""
    # Arrange
    pid = open_entry(cluster)

    # Act
    cluster.set_price(SYMBOL, CROSS)
    wait_for(
        lambda: any("-sl" in a["clientAlgoId"] for a in cluster.live_algos(pid)),
        f"a live stop-loss of {pid} on the venue",
    )
    cluster.kill_daemon()
    wait_for(lambda: cluster.filled(pid) == FULL, f"the rest of {pid} to fill while down")

    # Assert
    restart_and_check(cluster, pid)


def test_b_killed_right_as_the_fill_happens(cluster: Cluster) -> None:
    """The market crosses and the daemon is killed at once, mid-fill and mid-reaction."""
    # Arrange
    pid = open_entry(cluster)

    # Act
    cluster.set_price(SYMBOL, CROSS)
    cluster.kill_daemon()
    wait_for(lambda: cluster.filled(pid) == FULL, f"entry {pid} to fill")

    # Assert
    restart_and_check(cluster, pid)


# --- c) killed between stop-loss and take-profit ---------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("slow_response:algoOrder@POST#1:30", id="first-leg-placed-answer-held"),
        pytest.param("slow_response:algoOrder@POST#2:30", id="second-leg-placed-answer-held"),
    ],
)
def test_c_killed_between_stop_loss_and_take_profit(cluster: Cluster, fault: str) -> None:
    """A market entry fills at once; its SL and TP go out together, one answer is held (the
    order is already on the venue) and the daemon is killed there; the restart adopts both legs,
    never duplicates them."""
    # Arrange
    cluster.set_price(SYMBOL, START)
    cluster.start_daemon()
    cluster.add_faults(fault)

    # Act
    pid = open_entry(cluster, price=None, expect="PROTECTED")
    cluster.wait_fault_fired(fault)

    def legs() -> set[str]:
        return {a["clientAlgoId"].split("-")[1].rstrip("0123456789") for a in cluster.live_algos(pid)}

    # both went out at once: neither waited for the held answer
    wait_for(lambda: legs() == {"sl", "tp"}, f"both legs of {pid} live while one answer is held")
    cluster.kill_daemon()

    # Assert
    restart_and_check(cluster, pid)


# --- d) killed during a resize -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("slow_response:algoOrder@POST#1:30", id="gen2-first-leg-placed-answer-held"),
        pytest.param("slow_response:algoOrder@POST#2:30", id="gen2-second-leg-placed-answer-held"),
        pytest.param("slow_response:algoOrder@DELETE#1:30", id="gen1-leg-cancelled-answer-held"),
    ],
)
def test_d_killed_during_a_resize(cluster: Cluster, fault: str) -> None:
    """A partial fill is protected (gen 1); more fills start gen 2; the daemon is killed while
    one answer of gen 2's placing or gen 1's cancelling is held. The restart leaves one SL and
    one TP for the filled quantity; the rest of the entry then fills and is protected in full."""
    # Arrange: a partial fill, protected
    pid = open_entry(cluster)
    first = cluster.pulse_fill(SYMBOL, CROSS, START, pid)
    assert 0 < first < FULL, f"one pulse should fill part of the order, filled {first}"
    cluster.wait_protected(pid, first)

    # Act: more fills, the resize is held at the chosen step, kill
    cluster.add_faults(fault)
    second = cluster.pulse_fill(SYMBOL, CROSS, START, pid)
    assert second > first
    cluster.wait_fault_fired(fault)
    if "POST" in fault:  # gen 2's SL and TP went out at once: neither waited for the held answer
        gen2 = {f"{pid}-sl2", f"{pid}-tp2"}
        wait_for(lambda: gen2 <= {a["clientAlgoId"] for a in cluster.live_algos(pid)}, f"{gen2} live")
    cluster.kill_daemon()
    cluster.start_daemon()

    # Assert
    cluster.assert_invariants(symbols=[SYMBOL])
    assert cluster.status_of(pid) == ("PROTECTED" if second == FULL else "PARTIALLY_FILLED")
    cluster.set_price(SYMBOL, CROSS)
    wait_for(lambda: cluster.filled(pid) == FULL, f"the rest of {pid} to fill")
    cluster.assert_invariants(symbols=[SYMBOL])
    assert cluster.status_of(pid) == "PROTECTED"


# --- killed while the entry itself is being sent -----------------------------------------------

HOLD_ENTRY = "slow_response:order@POST#1:30"  # the venue accepts the entry, the answer is held


def held_entry_pid(c: Cluster) -> str:
    """The pending id of the entry the venue accepted while its answer is held."""
    c.wait_fault_fired(HOLD_ENTRY)
    (order,) = [o for o in c.state()["openOrders"] if o["clientOrderId"].endswith("-e")]
    pid = str(order["clientOrderId"]).removesuffix("-e")
    c.created.setdefault(pid, {"id": pid, "state": "(its `bot enter` was killed)"})
    return pid


def test_a_daemon_killed_while_it_sends_the_entry(cluster: Cluster) -> None:
    """`bot enter` hands the entry to the daemon; the venue accepts it but the daemon is killed
    before the answer (journal: SUBMITTING); it fills while down; the restart adopts the order,
    protects it, and the waiting `bot enter` reports it."""
    # Arrange
    cluster.set_price(SYMBOL, START)
    cluster.start_daemon()
    cluster.add_faults(HOLD_ENTRY)

    # Act
    cluster.enter_async(SYMBOL, "buy", QTY, price=LIMIT, sl=SL, tp=TP)
    pid = held_entry_pid(cluster)
    # SUBMITTING, or OPEN if the stream told of the order before its held answer
    assert cluster.status_of(pid) in ("SUBMITTING", "OPEN")
    cluster.kill_daemon()
    fill_while_down(cluster, pid)
    cluster.start_daemon()

    # Assert
    (answer,) = cluster.collect_enters()
    assert answer["id"] == pid, answer
    assert answer["exit_code"] == 0, answer
    cluster.assert_invariants(symbols=[SYMBOL])
    assert cluster.status_of(pid) == "PROTECTED"


def test_a_enter_killed_while_it_sends_the_entry_with_no_daemon(cluster: Cluster) -> None:
    """No daemon: `bot enter` sends the entry itself and is killed before the answer; the entry
    fills; `bot run` started later finds the SUBMITTING record's order and protects it."""
    # Arrange
    cluster.set_price(SYMBOL, START)
    cluster.add_faults(HOLD_ENTRY)

    # Act
    enter = cluster.spawn_cli("enter", "enter", SYMBOL, "buy", QTY, "--price", LIMIT, "--sl", SL, "--tp", TP, "--json")
    pid = held_entry_pid(cluster)
    assert cluster.status_of(pid) == "SUBMITTING"
    enter.kill9()
    fill_while_down(cluster, pid)

    # Assert
    restart_and_check(cluster, pid)


# --- `bot recover` instead of a restart, and killed itself --------------------------------------


def test_a_recover_protects_what_filled_while_down(cluster: Cluster) -> None:
    """The README's quickstart: the dry run shows the work (exit 2) and changes nothing; `bot
    recover --yes` protects; the daemon started afterwards finds nothing more to place."""
    # Arrange
    pid = open_entry(cluster)
    cluster.kill_daemon()
    fill_while_down(cluster, pid)

    # Act
    plan = cluster.recover("--dry-run")
    unchanged = cluster.live_algos(pid)
    done = cluster.recover("--yes")

    # Assert
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert pid in plan.stdout, plan.stdout
    assert unchanged == []
    assert done.returncode == 0, done.stdout + done.stderr
    cluster.assert_invariants(symbols=[SYMBOL])
    cluster.start_daemon()
    view = cluster.assert_invariants(symbols=[SYMBOL])
    assert cluster.status_of(pid) == "PROTECTED"
    assert sorted(a["clientAlgoId"] for a in view.algos.values()) == [f"{pid}-sl1", f"{pid}-tp1"]


def test_a_recover_killed_between_stop_loss_and_take_profit(cluster: Cluster) -> None:
    """`bot recover --yes` is SIGKILLed with the stop and take-profit placed together and the
    stop's answer held; the daemon started afterwards adopts both, placing nothing twice."""
    # Arrange
    pid = open_entry(cluster)
    cluster.kill_daemon()
    fill_while_down(cluster, pid)
    hold = "slow_response:algoOrder@POST#1:30"
    cluster.add_faults(hold)

    # Act
    recover = cluster.spawn_cli("recover", "recover", "--yes")
    cluster.wait_fault_fired(hold)
    both = [f"{pid}-sl1", f"{pid}-tp1"]
    wait_for(lambda: sorted(a["clientAlgoId"] for a in cluster.live_algos(pid)) == both, f"{both} live")
    recover.kill9()

    # Assert
    restart_and_check(cluster, pid)


# --- a) again, with each fault of the paper venue switched on ----------------------------------

FAULTS = [
    pytest.param("lost_response:order", id="lost-response-order"),
    pytest.param("lost_response:algoOrder", id="lost-response-algoOrder"),
    pytest.param("unknown_503:order", id="unknown-503-order"),
    pytest.param("unknown_503:algoOrder", id="unknown-503-algoOrder"),
    pytest.param("timeout_1007:order", id="timeout-1007-order"),
    pytest.param("timeout_1007:algoOrder", id="timeout-1007-algoOrder"),
    pytest.param("rate_limit_429:algoOrder:once", id="rate-limit-429-algoOrder-once"),
    pytest.param("late_visibility:3", id="late-visibility-3s"),
    pytest.param("drop_stream:2", id="drop-stream-every-2s"),
    pytest.param("expire_listen_key", id="expire-listen-key"),
]
ACTIONS = ("expire_listen_key",)  # one-shot actions: fired again once the daemon is back


@pytest.mark.parametrize("fault", FAULTS)
def test_a_with_fault(cluster: Cluster, fault: str) -> None:
    """Enter with the fault on, kill, fill while down, restart with the fault still on: the entry
    is protected exactly once, or proven never placed and archived NOT_PLACED; never sent twice."""
    # Arrange
    cluster.set_price(SYMBOL, START)
    cluster.start_daemon()
    cluster.add_faults(fault)

    # Act
    answer = cluster.enter(SYMBOL, "buy", QTY, price=LIMIT, sl=SL, tp=TP)
    pid = answer["id"]
    cluster.kill_daemon()
    cluster.set_price(SYMBOL, CROSS)
    placed = cluster.entry_order(pid) is not None
    if placed:
        wait_for(lambda: cluster.filled(pid) == FULL, f"entry {pid} to fill while down")
    cluster.start_daemon()
    if fault in ACTIONS:
        cluster.add_faults(fault)

    # Assert
    cluster.assert_invariants(symbols=[SYMBOL])
    assert cluster.status_of(pid) == ("PROTECTED" if placed else "NOT_PLACED"), answer


# --- an acknowledged entry that queries cannot see yet ------------------------------------------


def test_a_late_visibility_longer_than_the_not_found_window(cluster: Cluster) -> None:
    """Orders stay invisible to queries for 6 s; the daemon restarts 3.2 s after the entry was
    acknowledged (past sent_at + recvWindow 2 s + margin 1 s): the live entry must stay in the
    journal and be protected once it fills."""
    # Arrange
    cluster.set_price(SYMBOL, START)
    cluster.start_daemon()
    cluster.add_faults("late_visibility:6")
    pid = open_entry(cluster)
    acked = time.monotonic()
    cluster.kill_daemon()

    # Act
    wait_for(lambda: time.monotonic() - acked > 3.2, "3.2 s after the entry was acknowledged")
    cluster.start_daemon()
    wait_for(
        lambda: cluster.filled(pid) == 0 and time.monotonic() - acked > 6.5,
        "the entry to be visible to queries again (6 s after it was placed)",
    )
    cluster.set_price(SYMBOL, CROSS)
    wait_for(lambda: cluster.filled(pid) == FULL, f"entry {pid} to fill")

    # Assert
    cluster.assert_invariants(symbols=[SYMBOL], timeout=8)
