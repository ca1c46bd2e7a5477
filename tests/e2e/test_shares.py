"""Two entries on one symbol share one position (one-way mode nets them): each entry owns only
its own share of it (its fills minus what its own legs and closes executed), never the
symbol's net position. When one entry's leg fires, the other entry's share and legs are
untouched; its legs never close more than it filled (the seventh invariant).

Real processes: the paper venue on its own, `bot run` SIGKILLed and restarted, `bot enter`.
Prices move only when the test moves them (volatility 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, cluster_at, ledger, wait_for
from tests.e2e.test_bracket import START_UP_S, SYMBOL, protected_entry, wait_fired


pytestmark = pytest.mark.e2e

START = "97000"
A_QTY, A_SL, A_TP = "0.010", "90000", "99000"
B_QTY, B_SL, B_TP = "0.006", "95000", "99500"  # B's stop sits above A's: a long's B fires first
BETWEEN = "94000"  # below B's stop-loss, above A's


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way", stacking=True) as c:  # two entries on one position
        c.set_price(SYMBOL, START)
        yield c


@pytest.mark.parametrize("daemon", ["down", "running"], ids=["fires-while-down", "fires-while-up"])
def test_one_entrys_stop_fires_the_other_entrys_share_and_legs_are_untouched(cluster: Cluster, daemon: str) -> None:
    """A (0.010) and B (0.006) are long BTCUSDT, each PROTECTED; the market falls between their
    stops, so only B's stop-loss fires (selling B's 0.006). Afterwards: B's take-profit is
    cancelled and B archived; A still holds 0.010 with the very same SL and TP orders (never
    cancelled, resized or placed anew), the position is A's share, and no entry's legs executed
    more than it filled."""
    # Arrange
    cluster.start_daemon()
    a, a_legs = protected_entry(cluster, A_QTY, sl=A_SL, tp=A_TP)
    b, b_legs = protected_entry(cluster, B_QTY, sl=B_SL, tp=B_TP)
    both = Decimal(A_QTY) + Decimal(B_QTY)
    assert cluster.position(SYMBOL) == both
    b_tp = b_legs["tp"]["clientAlgoId"]

    # Act
    if daemon == "down":
        cluster.kill_daemon()
    cluster.set_price(SYMBOL, BETWEEN)
    wait_fired(cluster, b_legs["sl"], A_QTY)
    if daemon == "down":
        assert cluster.algo_status(b_tp) == "NEW", "no daemon runs: nothing cancelled B's TP"
        cluster.start_daemon()

    # Assert: B wound down
    wait_for(lambda: cluster.algo_status(b_tp) == "CANCELED", f"B's TP {b_tp} to be cancelled",
             START_UP_S)  # fmt: skip
    cluster.wait_archived(b)
    view = cluster.assert_invariants(symbols=[SYMBOL])

    # Assert: A untouched, on the venue's own records
    assert sorted(x["clientAlgoId"] for x in view.algos_of(a)) == [f"{a}-sl1", f"{a}-tp1"]
    for leg, before in a_legs.items():
        (now,) = view.live(a, leg)
        assert (now["algoId"], now["quantity"], now["algoStatus"]) == (
            before["algoId"], before["quantity"], "NEW",
        ), f"A's {leg} changed: {before} -> {now}"  # fmt: skip
    assert view.positions[(SYMBOL, "BOTH")] == Decimal(A_QTY)
    assert cluster.in_journal(a)
    assert cluster.status_of(a) == "PROTECTED"

    # Assert: each share, from the venue's history alone (the seventh invariant among them)
    shares = ledger(view).shares
    assert (shares[a].filled, shares[a].exited) == (Decimal(A_QTY), Decimal(0)), shares[a]
    assert (shares[b].filled, shares[b].exited) == (Decimal(B_QTY), Decimal(B_QTY)), shares[b]
    assert shares[b].exits == {f"{b}-sl1": Decimal(B_QTY)}, shares[b].exits
