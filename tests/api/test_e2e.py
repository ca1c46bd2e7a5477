"""The Python API against the paper venue as its own process, with and without `bot run`.

What was sent is read from the venue's books: one key, one entry order; a market entry made
with no daemon is protected before ``enter`` returns; a limit one says nothing watches it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from bot_cli.api import Client, EntryRefused, Side, Status
from bot_cli.errors import BotError
from bot_cli.state_store import JOURNAL_NAME
from tests.e2e.harness import Cluster, wait_for
from tests.inbox import keys_written


pytestmark = pytest.mark.e2e
QTY, SL, TP = "0.010", "90000", "99000"


def client(c: Cluster) -> Client:
    return Client(c.state_dir, c.config)


def entry_orders(c: Cluster) -> list[str]:
    state = c.state()
    ids = [o["clientOrderId"] for o in [*state["openOrders"], *state["recentOrders"]]]
    return sorted(i for i in ids if i.endswith("-e"))


def test_no_daemon_a_market_entry_is_protected_and_its_key_sends_it_once(cluster: Cluster) -> None:
    bot = client(cluster)

    first = bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, take_profit=TP, key="sig-1")
    again = bot.enter("BTCUSDT", Side.BUY, Decimal(QTY), stop_loss=SL, take_profit=TP, key="sig-1")

    assert (first.status, first.sent_by, first.watched, first.duplicate) == (
        Status.PROTECTED, "this process", True, False)
    assert (again.id, again.duplicate, again.status) == (first.id, True, Status.PROTECTED)
    assert entry_orders(cluster) == [f"{first.id}-e"]
    assert len(cluster.live_algos(first.id)) == 2
    cluster.created[first.id] = {}
    cluster.assert_invariants(symbols=["BTCUSDT"])


def test_no_daemon_a_resting_limit_entry_says_nothing_watches_it(cluster: Cluster) -> None:
    bot = client(cluster)

    entry = bot.enter("BTCUSDT", "buy", QTY, price="96000", stop_loss=SL, take_profit=TP)

    assert (entry.status, entry.watched) == (Status.OPEN, False)
    assert entry.note.startswith("no daemon is running: nothing will protect a fill of limit entry")


def test_two_threads_with_one_key_make_one_entry(cluster: Cluster) -> None:
    """No daemon: both check, one claims and sends; the other gets that entry back."""
    def enter(_: int) -> tuple[str, bool]:
        bot = client(cluster)
        e = bot.enter("BTCUSDT", "sell", QTY, stop_loss="99000", take_profit="95000", key="race")
        return e.id, e.duplicate

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(enter, range(2)))

    assert len({pid for pid, _ in results}) == 1
    assert sorted(dup for _, dup in results) == [False, True]
    assert entry_orders(cluster) == [f"{results[0][0]}-e"]


def test_with_a_daemon_the_entry_is_handed_over_and_closed_on_request(cluster: Cluster) -> None:
    cluster.start_daemon()
    bot = client(cluster)

    entry = bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, take_profit=TP, key="sig-2")
    status = bot.status()
    cluster.wait_protected(entry.id, QTY)
    closed = bot.close(entry.id)

    assert entry.sent_by.startswith("bot run (pid")
    assert entry.watched
    assert status.running
    assert status.stream_connected
    assert status.not_connected is None
    assert closed.applied
    assert closed.note == ""
    cluster.wait_archived(entry.id)
    assert wait_for(lambda: bot.entry(entry.id).status is Status.CLOSED, "closed")  # type: ignore[union-attr]
    assert bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, key="sig-2").duplicate
    assert entry_orders(cluster) == [f"{entry.id}-e"]
    cluster.created[entry.id] = {}
    cluster.assert_invariants(symbols=["BTCUSDT"])


def test_a_refused_entry_names_the_field_and_leaves_no_trace(cluster: Cluster) -> None:
    with pytest.raises(EntryRefused) as refused:
        client(cluster).enter("BTCUSDT", "buy", "121", stop_loss=SL, key="too-big")

    assert refused.value.field == "quantity"
    assert str(refused.value) == ("quantity 121 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT;"
                                  " use at most 120")  # fmt: skip
    # the venue keeps its own state in the state dir: look for the bot's files only
    assert not (cluster.state_dir / JOURNAL_NAME).exists()
    assert keys_written(cluster.state_dir) == []
    assert entry_orders(cluster) == []


def test_amend_moves_the_stop_and_refuses_a_level_that_would_trigger_with_the_clis_line(cluster: Cluster) -> None:
    bot = client(cluster)
    entry = bot.enter("BTCUSDT", "buy", QTY, stop_loss=SL, take_profit=TP)

    moved = bot.amend(entry.id, stop_loss="95000")

    assert (moved.status, moved.stop_loss, moved.take_profit, moved.watched) == (
        Status.PROTECTED, Decimal(95000), Decimal(TP), True)
    live = {a["clientAlgoId"]: Decimal(a["triggerPrice"]) for a in cluster.live_algos(entry.id)}
    assert sorted(live.values()) == [Decimal(95000), Decimal(TP)]
    with pytest.raises(BotError, match="not amended: stop-loss 98000 is not below BTCUSDT's mark price"):
        bot.amend(entry.id, stop_loss="98000")
    assert {a["clientAlgoId"] for a in cluster.live_algos(entry.id)} == set(live)
    cluster.created[entry.id] = {}
    cluster.assert_invariants(symbols=["BTCUSDT"])
