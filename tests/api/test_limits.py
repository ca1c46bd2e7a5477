"""The Python API at the account's conditional-order limit, against the paper venue as its own
process: ``EntryRefused`` with ``field == "limit"``, nothing written (no journal, no key) and
nothing sent; one order fewer and the same call enters.
"""

from __future__ import annotations

import pytest

from bot_cli.api import Client, EntryRefused, Status
from bot_cli.state_store import JOURNAL_NAME
from tests.e2e.harness import Cluster, signed_get, signed_send
from tests.inbox import keys_written


pytestmark = pytest.mark.e2e
QTY, SL, TP = "0.010", "90000", "99000"


def open_algos(c: Cluster) -> list[str]:
    return sorted(a["clientAlgoId"] for a in signed_get(c.http, "/fapi/v1/openAlgoOrders", {}))


def test_a_full_account_raises_entry_refused_naming_the_limit(cluster: Cluster) -> None:
    for i in range(199):  # another tool's stops, far from triggering
        signed_send(cluster.http, "POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "ETHUSDT", "side": "SELL", "type": "STOP_MARKET",
            "quantity": "0.100", "triggerPrice": "3000.00", "clientAlgoId": f"manual-{i}",
        })  # fmt: skip
    bot = Client(cluster.state_dir, cluster.config)
    before = open_algos(cluster)

    with pytest.raises(EntryRefused) as refused:
        bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, take_profit=TP, key="sig-full")

    assert refused.value.field == "limit"
    assert str(refused.value).startswith("the account's open conditional orders would exceed 200: 199 in use")
    assert not (cluster.state_dir / JOURNAL_NAME).exists()
    assert keys_written(cluster.state_dir) == []
    assert open_algos(cluster) == before

    signed_send(cluster.http, "DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": "manual-0"})
    entry = bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, take_profit=TP, key="sig-full")

    assert entry.status is Status.PROTECTED
    assert len(open_algos(cluster)) == 200
