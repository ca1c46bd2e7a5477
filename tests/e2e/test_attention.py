"""An entry parked in NEEDS_ATTENTION leaves no entry order working: nothing fills unwatched.

Real processes (the paper venue on its own, `bot run`, `bot enter`); the outcome is read from
the venue. With `on_immediate_trigger = "alert"`, a limit buy whose market falls through its
stop-loss as it fills is parked for the operator (the stop would trigger at once); what is
left of its entry order must be cancelled, so no more of it fills after it was parked.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, cluster_at, wait_for


pytestmark = pytest.mark.e2e
SYMBOL = "BTCUSDT"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path) as c:
        text = c.config.read_text(encoding="utf-8")
        c.config.write_text(text.replace("recheck_ms = 300", 'recheck_ms = 300\non_immediate_trigger = "alert"'))
        c.set_price(SYMBOL, "97000")
        yield c


def test_an_entry_parked_while_its_order_works_has_that_order_cancelled(cluster: Cluster) -> None:
    # Arrange: a limit buy resting below the market, with its stop close under it
    cluster.start_daemon()
    answer = cluster.enter(SYMBOL, "buy", "0.050", price="96900", sl="96500", tp="99000")
    assert answer["exit_code"] == 0, answer
    pid = str(answer["id"])
    wait_for(lambda: cluster.status_of(pid) == "OPEN", f"{pid} resting on the book")

    # Act: the market falls through the limit and the stop at once; it stays down there
    cluster.set_price(SYMBOL, "96000")
    wait_for(lambda: cluster.status_of(pid) == "NEEDS_ATTENTION", f"{pid} parked for the operator")
    def over() -> dict[str, Any] | None:
        o = cluster.entry_order(pid)
        return o if o is not None and o["status"] not in ("NEW", "PARTIALLY_FILLED") else None

    order = wait_for(over, f"the rest of {pid}'s entry order cancelled")
    assert order is not None
    parked_fill = Decimal(order["executedQty"])
    cluster.set_price(SYMBOL, "95900")  # lower still: a working buy would fill more now
    cluster.set_price(SYMBOL, "95800")

    # Assert: from the venue, the order is over and filled no more after it was parked
    after = cluster.entry_order(pid)
    assert after is not None
    assert after["status"] == "CANCELED", after
    assert Decimal(0) < Decimal(after["executedQty"]) == parked_fill < Decimal("0.050")
    assert cluster.position(SYMBOL) == parked_fill
    cluster.assert_invariants(attention_ok=True, symbols=[SYMBOL])  # the venue-side checker too
