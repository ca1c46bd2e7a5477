"""What the operator is shown, proven against the venue: a deaf user stream is found and worked
around (REST polling), and `bot status` exits 12 for every share nothing of the bot covers.

Real processes: `bot paper serve` on its own, `bot run`, `bot enter`, `bot status`. Every claim
about orders is read from the venue (its REST history, `/paper/state`, createTime and trade
times), and every test ends with the venue-side invariant checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, View, cluster_at, parse_id, stop_cover_problems, wait_for


pytestmark = pytest.mark.e2e

BTC, ETH = "BTCUSDT", "ETHUSDT"
BTC_START, ETH_START = "97000", "3500"
QTY, SL, TP = "0.010", "90000", "99000"
ETH_QTY = "0.050"
HEARTBEAT_WAIT_S = 20.0  # `bot status` reads the heartbeat, rewritten every 5 s


def filled_at(view: View, pid: str) -> int:
    order_ids = {o["orderId"] for o in view.entry_orders(pid)}
    times = [int(t["time"]) for t in view.trades if t["orderId"] in order_ids]
    assert times, f"the venue has no fill of {pid}"
    return max(times)


# --- 5: a deaf user stream (issue 18) -----------------------------------------------------------

PROTECTED_WITHIN_MS = 10_000  # SL and TP on the venue this soon after the fill (venue clock)


@pytest.fixture
def deaf(tmp_path: Path) -> Iterator[Cluster]:
    """A binance-kind config pointed at a separately running paper venue, its user stream on a
    route the venue accepts and keeps silent (as Binance does with a wrong route)."""
    venue = {
        "kind": "binance", "network": "testnet", "rest_url": "http://127.0.0.1:{port}",
        "ws_url": "ws://127.0.0.1:{port}/market",
    }  # fmt: skip
    keys = {"BOT_API_KEY": "paper-key", "BOT_API_SECRET": "paper-secret"}
    with cluster_at(tmp_path, position_mode="one-way", venue=venue, env=keys) as c:
        c.set_price(BTC, BTC_START)
        yield c


def test_a_deaf_stream_is_found_and_fills_are_protected_by_rest(deaf: Cluster) -> None:
    """The stream connects and never speaks: a market entry's SL and TP are still live on the
    venue within PROTECTED_WITHIN_MS of its fill, the daemon logs `stream_deaf`, and `bot status`
    exits 12 saying the stream is deaf."""
    # Arrange
    c = deaf
    c.start_daemon()
    assert "binance testnet" in c.daemon_lines("bot run on")[0], c.daemon_lines("bot run on")

    # Act
    answer = c.enter(BTC, "buy", QTY, sl=SL, tp=TP)
    assert answer["exit_code"] == 0, answer
    pid = str(answer["id"])

    # Assert
    c.wait_protected(pid, QTY, timeout=PROTECTED_WITHIN_MS / 1000 + 5)
    view = c.assert_invariants(symbols=[BTC])
    assert not stop_cover_problems(view), stop_cover_problems(view)
    filled = filled_at(view, pid)
    created = {parse_id(a["clientAlgoId"])[1]: int(a["createTime"]) - filled for a in view.algos_of(pid)}  # type: ignore[index]
    assert sorted(created) == ["sl", "tp"], created
    assert all(0 <= ms <= PROTECTED_WITHIN_MS for ms in created.values()), f"ms after the fill: {created}"
    wait_for(lambda: c.daemon_events("stream_deaf"), "the daemon to log event stream_deaf", 10)

    def says_deaf() -> dict[str, Any] | None:
        rc, doc = c.status()
        return doc if rc == 12 and any("deaf" in p for p in doc["problems"]) else None

    doc = wait_for(says_deaf, "`bot status` to exit 12 naming the deaf stream", HEARTBEAT_WAIT_S, every=1.0)
    assert doc is not None
    assert "deaf" in doc["stderr"], doc
    assert c.daemon_alive()
    assert c.state()["streams"] == 0, "the bot found a user stream after all: the test's premise is gone"


# --- 6: `bot status` exits 12 for every uncovered share -------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path) as c:
        c.set_price(BTC, BTC_START)
        c.set_price(ETH, ETH_START)
        yield c


def status_problems(c: Cluster) -> tuple[int, list[str]]:
    rc, doc = c.status()
    return rc, list(doc["problems"])


def test_status_exits_12_for_every_uncovered_share(cluster: Cluster) -> None:
    """(a) a filled entry whose legs cannot be placed (every algoOrder POST answers 429) and (b)
    a position opened by hand on a symbol no entry trades: `bot status` exits 12 naming each;
    once the legs are placed only (b) is named; once the position is closed by hand, 0."""
    # Arrange
    c = cluster
    c.start_daemon()
    wait_for(lambda: status_problems(c) == (0, []), "`bot status` to exit 0 (healthy, nothing open)",
             HEARTBEAT_WAIT_S, every=0.5)  # fmt: skip

    # Act: (a) and (b)
    c.add_faults("rate_limit_429:algoOrder@POST")
    answer = c.enter(BTC, "buy", QTY, sl=SL, tp=TP)
    assert answer["exit_code"] == 0, answer
    pid = str(answer["id"])
    c.by_hand("POST", "/fapi/v1/order", symbol=ETH, side="BUY", type="MARKET", quantity=ETH_QTY,
              newClientOrderId="operator-open-1")  # fmt: skip
    wait_for(lambda: c.position(BTC) == Decimal(QTY) and c.position(ETH) == Decimal(ETH_QTY),
             "both positions to be open on the venue")  # fmt: skip

    # Assert
    def named(*symbols: str) -> list[str] | None:
        rc, problems = status_problems(c)
        if rc == 12 and len(problems) == len(symbols) and all(
            any(s in p for p in problems) for s in symbols
        ):  # fmt: skip
            return problems
        return None

    both = wait_for(lambda: named(BTC, ETH), "`bot status` to exit 12 naming BTCUSDT's share and ETHUSDT's position",
                    HEARTBEAT_WAIT_S, every=0.5)  # fmt: skip
    assert both is not None
    assert any(BTC in p and "0.010" in p and "stop-loss" in p for p in both), both
    assert any(ETH in p and "no entry" in p for p in both), both
    assert c.live_algos(pid) == [], "a leg was placed through the 429 switch"

    c.clear_faults()
    c.wait_protected(pid, QTY)
    eth_only = wait_for(lambda: named(ETH), "`bot status` to name only ETHUSDT once BTCUSDT is covered",
                        HEARTBEAT_WAIT_S, every=0.5)  # fmt: skip
    assert eth_only is not None
    assert BTC not in " ".join(eth_only), eth_only

    c.by_hand("POST", "/fapi/v1/order", symbol=ETH, side="SELL", type="MARKET", quantity=ETH_QTY,
              reduceOnly="true", newClientOrderId="operator-close-1")  # fmt: skip
    wait_for(lambda: status_problems(c) == (0, []), "`bot status` to exit 0: every share covered again",
             HEARTBEAT_WAIT_S, every=0.5)  # fmt: skip
    c.assert_invariants(symbols=[BTC, ETH])
    assert c.status_of(pid) == "PROTECTED"
