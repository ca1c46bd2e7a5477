"""A bracket's whole life with real processes: an entry is PROTECTED and rests in the journal
until one of its legs fires (or it is closed); the bot is the OCO and cancels the sibling, the
entry then leaves the journal. Binance has no one-cancels-other for algo orders, so a leg that
fired while the daemon was dead must be found at start-up and its sibling cancelled then.

Also here: a live leg that reads cannot see yet at restart (late visibility) is asked about, not
placed twice; a burst of 429s while protecting is waited out, never parked as NEEDS_ATTENTION.

The paper venue moves prices only when a test moves them (volatility 0); a market entry fills at
once; an algo order fires on the venue's next 100 ms step after the price crosses its trigger.
Every test ends with the venue-side checker (``assert_invariants``: each entry's share from the
venue's history, by client id).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, cluster_at, parse_id, signed_get, wait_for


pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
START = "97000"  # the market when the entry is made
LIMIT = "96900"  # a buy limit below it
CROSS = "96800"  # a market below the limit: the limit entry fills
SL, TP = "90000", "99000"
THROUGH = {"sl": "89000", "tp": "99500"}  # a market past each leg's trigger
SIBLING = {"sl": "tp", "tp": "sl"}
QTY = "0.010"
PROMPT_S = 3.0  # "promptly": a running daemon cancels the sibling within this of the fire
START_UP_S = 8.0  # a restarted daemon has cancelled the sibling of a fired leg within this


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A venue running at START; daemons are started by the test. Everything killed afterwards."""
    with cluster_at(tmp_path) as c:
        c.set_price(SYMBOL, START)
        yield c


def protected_entry(c: Cluster, qty: str = QTY, *, sl: str = SL, tp: str = TP) -> tuple[str, dict[str, dict[str, Any]]]:
    """A market buy through the running daemon, filled at once; returns its pending id and its
    live legs (by "sl"/"tp") once both are on the venue for the whole quantity and the entry
    rests PROTECTED in the journal."""
    answer = c.enter(SYMBOL, "buy", qty, sl=sl, tp=tp)
    assert answer["exit_code"] == 0, answer
    pid = str(answer["id"])
    c.wait_protected(pid, qty)
    wait_for(lambda: c.status_of(pid) == "PROTECTED", f"{pid} to be PROTECTED")
    assert c.in_journal(pid), f"{pid} is PROTECTED: it must rest in the journal, not be archived"
    legs = c.legs_of(pid)
    assert sorted(legs) == ["sl", "tp"], legs
    return pid, legs


def wait_fired(c: Cluster, algo: dict[str, Any], position: str | Decimal) -> None:
    """The leg fired on the venue (its algo order FINISHED, its child filled): the position is
    ``position`` afterwards."""
    cid = algo["clientAlgoId"]
    wait_for(
        lambda: c.algo_status(cid) == "FINISHED" and c.position(SYMBOL) == Decimal(position),
        f"{cid} to fire on the venue, leaving a position of {position}",
    )


def assert_only_first_legs(c: Cluster, pid: str) -> dict[str, Any]:
    """The checker holds and the entry never had more than its first SL and TP (nothing was
    placed anew); returns the final view's algo orders of the entry by client id."""
    view = c.assert_invariants(symbols=[SYMBOL])
    algos = {a["clientAlgoId"]: a for a in view.algos_of(pid)}
    assert sorted(algos) == [f"{pid}-sl1", f"{pid}-tp1"], sorted(algos)
    return algos


def algo_ids(c: Cluster, pid: str) -> list[str]:
    """Client ids of every algo order of the entry the venue's own view shows (live, recent)."""
    state = c.state()
    return sorted(
        a["clientAlgoId"] for a in [*state["openAlgoOrders"], *state["recentAlgoOrders"]]
        if a["clientAlgoId"].startswith(f"{pid}-")
    )  # fmt: skip


# --- (a), (b): a leg fires while the daemon is dead; the restart cancels the sibling ------------


@pytest.mark.parametrize("fires", ["sl", "tp"], ids=["through-the-sl", "through-the-tp"])
def test_leg_fires_while_down_then_the_restart_cancels_its_sibling(cluster: Cluster, fires: str) -> None:
    """Protected, SIGKILL, the market moves through one leg while no daemon runs (the position
    goes flat, the sibling stays live: nobody is there to cancel it); the restart finds the fired
    leg by its client id, cancels the sibling at start-up and archives the entry."""
    # Arrange
    cluster.start_daemon()
    pid, legs = protected_entry(cluster)
    sibling = legs[SIBLING[fires]]["clientAlgoId"]

    # Act
    cluster.kill_daemon()
    cluster.set_price(SYMBOL, THROUGH[fires])
    wait_fired(cluster, legs[fires], "0")
    assert cluster.algo_status(sibling) == "NEW", "no daemon runs: nothing cancelled the sibling"
    cluster.start_daemon()

    # Assert
    wait_for(
        lambda: cluster.algo_status(sibling) == "CANCELED",
        f"the sibling {sibling} to be cancelled at start-up",
        START_UP_S,
    )
    cluster.wait_archived(pid)
    algos = assert_only_first_legs(cluster, pid)
    assert algos[legs[fires]["clientAlgoId"]]["algoStatus"] == "FINISHED"
    assert cluster.position(SYMBOL) == 0


# --- (c): a leg fires with the daemon running --------------------------------------------------


@pytest.mark.parametrize("fires", ["sl", "tp"], ids=["sl-fires", "tp-fires"])
def test_leg_fires_while_running_and_the_sibling_is_cancelled_promptly(cluster: Cluster, fires: str) -> None:
    """The daemon follows the stream: the fired leg's ALGO_UPDATE makes it cancel the sibling
    within PROMPT_S, then archive the entry."""
    # Arrange
    cluster.start_daemon()
    pid, legs = protected_entry(cluster)
    sibling = legs[SIBLING[fires]]["clientAlgoId"]

    # Act
    cluster.set_price(SYMBOL, THROUGH[fires])
    wait_fired(cluster, legs[fires], "0")

    # Assert
    wait_for(
        lambda: cluster.algo_status(sibling) == "CANCELED",
        f"the running daemon to cancel the sibling {sibling}",
        PROMPT_S,
    )
    cluster.wait_archived(pid)
    assert_only_first_legs(cluster, pid)
    assert cluster.daemon_alive()


# --- (e): a live leg that reads cannot see yet at restart ---------------------------------------

HIDDEN_S = 8  # late_visibility: new orders are missing from reads (and -2013 to queries) this long


def hidden_from_reads(c: Cluster, pid: str) -> bool:
    """None of the entry's live legs is in the venue's openAlgoOrders answer (read lag)."""
    listed: list[dict[str, Any]] = signed_get(c.http, "/fapi/v1/openAlgoOrders", {"symbol": SYMBOL})
    return not any(a["clientAlgoId"].startswith(f"{pid}-") for a in listed)


@pytest.mark.parametrize(
    "when",
    [
        pytest.param("legs-placed-before-the-kill", id="placed-then-killed"),
        pytest.param("legs-placed-at-restart-then-stream-reconnect", id="placed-at-restart"),
    ],
)
def test_late_visibility_of_live_legs_at_restart_places_nothing_twice(cluster: Cluster, when: str) -> None:
    """A leg acknowledged by the venue but missing from openAlgoOrders (and -2013 to a query by
    id) while the daemon reconciles is read lag, not a missing leg: it is asked about again, never
    placed anew. Either the daemon placed the legs, was killed and restarts inside the window, or
    the restart itself placed them and a stream reconnect reconciles again inside it."""
    # Arrange: an entry OPEN, resting below the market
    cluster.start_daemon()
    answer = cluster.enter(SYMBOL, "buy", QTY, price=LIMIT, sl=SL, tp=TP)
    assert answer["exit_code"] == 0, answer
    assert answer["state"] == "OPEN", answer
    pid = str(answer["id"])

    # Act
    if when == "legs-placed-before-the-kill":
        cluster.add_faults(f"late_visibility:{HIDDEN_S}")  # only orders created from now on
        cluster.set_price(SYMBOL, CROSS)
        cluster.wait_protected(pid, QTY)  # the fill came in chunks: the last generation's legs
        wait_for(lambda: cluster.status_of(pid) == "PROTECTED", f"{pid} to be PROTECTED")
        placed = time.monotonic()
        cluster.kill_daemon()
        before = algo_ids(cluster, pid)
        cluster.start_daemon()
    else:
        cluster.kill_daemon()
        cluster.set_price(SYMBOL, CROSS)
        wait_for(lambda: cluster.filled(pid) == Decimal(QTY), f"{pid} to fill while down")
        cluster.add_faults(f"late_visibility:{HIDDEN_S}")
        cluster.start_daemon()
        cluster.wait_protected(pid, QTY)
        wait_for(lambda: cluster.status_of(pid) == "PROTECTED", f"{pid} to be PROTECTED")
        placed = time.monotonic()
        before = algo_ids(cluster, pid)
        reconciles = len(cluster.daemon_lines("reconciled (stream"))
        cluster.add_faults("drop_stream")
        wait_for(
            lambda: len(cluster.daemon_lines("reconciled (stream")) > reconciles,
            "the daemon to reconnect its stream and reconcile again",
        )
    still_hidden = hidden_from_reads(cluster, pid)
    elapsed = time.monotonic() - placed
    assert still_hidden, f"the test was too slow: the legs were visible again after {elapsed:.1f}s"

    # Assert: once the legs are visible again, they are the ones placed before, live once each
    wait_for(
        lambda: not hidden_from_reads(cluster, pid),
        f"the legs of {pid} to be visible again ({HIDDEN_S}s after they were placed)",
        HIDDEN_S + 5,
    )
    view = cluster.assert_invariants(symbols=[SYMBOL])
    after = sorted(a["clientAlgoId"] for a in view.algos_of(pid))
    assert after == before, f"legs placed while the live ones were hidden: {before} -> {after}"
    assert len(view.live(pid, "sl")) == len(view.live(pid, "tp")) == 1
    assert cluster.status_of(pid) == "PROTECTED"
    assert cluster.in_journal(pid)


# --- (f): a burst of 429 on algoOrder while protecting ------------------------------------------

BURST_REFUSALS = 4  # four placements in a row refused: SL and TP each refused twice
ONE_REFUSAL = "rate_limit_429:algoOrder@POST:once"  # refused, not executed; the switch then goes


def test_a_burst_of_429_while_protecting_is_retried_never_needs_attention(cluster: Cluster) -> None:
    """The next BURST_REFUSALS placements (POST /fapi/v1/algoOrder) answer 429 -1003 with
    Retry-After: transient trouble, retried with backoff; the entry stays PROTECTING (never
    NEEDS_ATTENTION) and is PROTECTED once the burst is over, with one SL and one TP."""
    # Arrange: the burst is that many one-shot switches; each refusal takes one off the list
    cluster.start_daemon()
    cluster.add_faults(*[ONE_REFUSAL] * BURST_REFUSALS)

    # Act
    answer = cluster.enter(SYMBOL, "buy", QTY, sl=SL, tp=TP)
    assert answer["exit_code"] == 0, answer
    pid = str(answer["id"])
    seen: set[str | None] = set()

    def burst_over() -> bool:
        seen.add(cluster.status_of(pid))
        return ONE_REFUSAL not in cluster.faults()

    wait_for(burst_over, f"the daemon to retry through {BURST_REFUSALS} refusals (429)", 15)
    seen.add(cluster.status_of(pid))

    # Assert
    cluster.wait_protected(pid, QTY)
    wait_for(lambda: cluster.status_of(pid) == "PROTECTED", f"{pid} to be PROTECTED")
    assert "NEEDS_ATTENTION" not in seen, seen
    assert not cluster.daemon_lines(pid, "-> NEEDS_ATTENTION"), "parked during the burst"
    view = cluster.assert_invariants(symbols=[SYMBOL])
    accepted = [parse_id(a["clientAlgoId"])[1] for a in view.algos_of(pid)]  # type: ignore[index]
    assert sorted(accepted) == ["sl", "tp"], f"the venue accepted {accepted}: one SL and one TP"


# --- the position closed by hand; a leg cancelled by someone else --------------------------------


@pytest.mark.parametrize("daemon", ["down", "running"], ids=["closed-while-down", "closed-while-up"])
def test_position_closed_by_hand_cancels_both_legs(cluster: Cluster, daemon: str) -> None:
    """An operator closes the whole position on the exchange (a reduce-only market order the bot
    did not send): the entry's share is gone without any leg firing, so both legs protect
    nothing. The bot cancels both (at start-up, or at once when running) and archives it."""
    # Arrange
    cluster.start_daemon()
    pid, legs = protected_entry(cluster)

    # Act
    if daemon == "down":
        cluster.kill_daemon()
    cluster.by_hand("POST", "/fapi/v1/order", symbol=SYMBOL, side="SELL", type="MARKET",
                    quantity=QTY, reduceOnly="true",
                    newClientOrderId="operator-close-1")  # fmt: skip
    assert cluster.position(SYMBOL) == 0
    if daemon == "down":
        assert all(cluster.algo_status(a["clientAlgoId"]) == "NEW" for a in legs.values())
        cluster.start_daemon()

    # Assert
    for leg in legs.values():
        cid = leg["clientAlgoId"]
        wait_for(lambda cid=cid: cluster.algo_status(cid) == "CANCELED",  # type: ignore[misc]
                 f"{cid} to be cancelled: the position it protected was closed by hand",
                 START_UP_S)  # fmt: skip
    cluster.wait_archived(pid)
    assert_only_first_legs(cluster, pid)
    assert cluster.position(SYMBOL) == 0


@pytest.mark.parametrize("daemon", ["down", "running"], ids=["cancelled-while-down", "cancelled-while-up"])
def test_a_leg_cancelled_by_someone_else_is_replaced(cluster: Cluster, daemon: str) -> None:
    """Someone cancels the entry's stop-loss on the exchange while its position is open: the bot
    places a new stop for the entry's share (at start-up, or at once when running), that leg
    only: the take-profit stays the very same order, so no moment has two take-profits live."""
    # Arrange
    cluster.start_daemon()
    pid, legs = protected_entry(cluster)
    gone = legs["sl"]["clientAlgoId"]

    # Act
    if daemon == "down":
        cluster.kill_daemon()
    cluster.by_hand("DELETE", "/fapi/v1/algoOrder", clientAlgoId=gone)
    assert cluster.algo_status(gone) == "CANCELED"
    if daemon == "down":
        cluster.start_daemon()

    # Assert
    wait_for(lambda: len(cluster.legs_of(pid)) == 2,
             f"a new stop-loss of {pid} in place of the cancelled {gone}", START_UP_S)  # fmt: skip
    view = cluster.assert_invariants(symbols=[SYMBOL])
    (sl,) = view.live(pid, "sl")
    (tp,) = view.live(pid, "tp")
    assert sl["clientAlgoId"] != gone, sl
    assert tp["clientAlgoId"] == legs["tp"]["clientAlgoId"], tp
    assert Decimal(sl["quantity"]) == Decimal(QTY), sl
    assert Decimal(tp["quantity"]) == Decimal(QTY), tp
    assert cluster.in_journal(pid)
    assert cluster.status_of(pid) == "PROTECTED"
