"""`bot enter` at the account's limits, and what it costs, against `bot paper serve`.

The account is filled the way another tool would fill it: conditional orders of a foreign
client id placed by signed requests. At the limit an entry is refused before anything is
written or sent (exit 1, one line naming the limit); below it the entry goes through. The
command runs in this process (typer's runner), so the REST client it builds is seen: its
request weight (``weight_spent``) and its exchangeInfo reads are counted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.exchange.rest import BinanceRest
from bot_cli.ops import market
from bot_cli.runtime import heartbeat
from bot_cli.state_store import JOURNAL_NAME, PendingEntryStore
from tests.e2e.harness import Cluster, cluster_at, signed_get, signed_send, wait_for


pytestmark = pytest.mark.e2e
runner = CliRunner()
QTY, SL, TP = "0.010", "90000", "99000"
FULL = (
    "error: the account's open conditional orders would exceed 200: {held} in use or reserved ({foreign}"
    " not the bot's), this entry needs 2 for its stop-loss and take-profit; close or cancel entries"
    " (`bot close ID`) or cancel conditional orders first\n"
)


@dataclass
class Meter:
    """Every BinanceRest this process builds, and how often exchangeInfo is read for filters."""

    clients: list[BinanceRest] = field(default_factory=list)
    info_reads: int = 0

    @property
    def weight(self) -> int:
        return sum(c.weight_spent for c in self.clients)

    def reset(self) -> None:
        self.clients.clear()
        self.info_reads = 0


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Meter:
    m = Meter()
    init, info = BinanceRest.__init__, BinanceRest.exchange_info

    def counted_init(self: BinanceRest, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        m.clients.append(self)

    async def counted_info(self: BinanceRest) -> Any:
        m.info_reads += 1
        return await info(self)

    monkeypatch.setattr(BinanceRest, "__init__", counted_init)
    monkeypatch.setattr(BinanceRest, "exchange_info", counted_info)
    return m


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way", stacking=True) as c:  # entries counted side by side
        c.set_price("BTCUSDT", "97000")
        yield c


def bot(c: Cluster, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--state-dir", str(c.state_dir), "--config", str(c.config), *args])
    return result.exit_code, result.stdout, result.stderr


def enter(c: Cluster, *extra: str) -> tuple[int, str, str]:
    return bot(c, "enter", "BTCUSDT", "buy", QTY, "--sl", SL, "--tp", TP, "--json", *extra)


def place_foreign(c: Cluster, count: int, first: int = 0) -> None:
    """Conditional orders on ETHUSDT under another tool's client ids, far from triggering."""
    for i in range(first, first + count):
        signed_send(c.http, "POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": "ETHUSDT", "side": "SELL", "type": "STOP_MARKET",
            "quantity": "0.100", "triggerPrice": "3000.00", "clientAlgoId": f"manual-{i}",
        })  # fmt: skip


def cancel_foreign(c: Cluster, i: int) -> None:
    signed_send(c.http, "DELETE", "/fapi/v1/algoOrder", {"clientAlgoId": f"manual-{i}"})


def sent(c: Cluster) -> set[str]:
    """Every client id the venue has seen from the bot (regular and algo orders)."""
    s = c.state()
    ids = {o["clientOrderId"] for o in [*s["openOrders"], *s["recentOrders"]]}
    return ids | {a["clientAlgoId"] for a in signed_get(c.http, "/fapi/v1/openAlgoOrders", {})}


def journal(c: Cluster) -> dict[str, Any]:
    if not (c.state_dir / JOURNAL_NAME).exists():
        return {}
    with PendingEntryStore(c.state_dir) as store:
        return dict(store.load_all())


def answer(out: str) -> dict[str, Any]:
    (line,) = [x for x in out.splitlines() if x.startswith("{")]
    return json.loads(line)  # type: ignore[no-any-return]


# -- the conditional-order limit ------------------------------------------------------------------


def test_no_daemon_a_full_account_refuses_the_entry_and_nothing_is_written_or_sent(
    cluster: Cluster, meter: Meter
) -> None:
    """199 foreign conditional orders: an entry needing 2 is refused; with 198 it goes through
    and is protected (200 open on the account)."""
    place_foreign(cluster, 199)
    before = sent(cluster)

    code, out, err = enter(cluster)

    assert (code, out) == (1, "")
    assert err == FULL.format(held=199, foreign=199)
    assert not (cluster.state_dir / JOURNAL_NAME).exists()
    assert not (cluster.state_dir / market.INFO_NAME).exists()  # a refusal writes nothing at all
    assert sent(cluster) == before
    refused_weight = meter.weight

    cancel_foreign(cluster, 0)
    meter.reset()
    code, out, err = enter(cluster)

    assert code == 0, err
    assert answer(out)["state"] == "PROTECTED"
    assert len(signed_get(cluster.http, "/fapi/v1/openAlgoOrders", {})) == 200
    print(f"\nno daemon: refused at the limit for {refused_weight} weight; entered for {meter.weight}")


def test_with_a_daemon_its_count_and_the_journals_legs_refuse_the_entry_cheaply(
    cluster: Cluster, meter: Meter
) -> None:
    """196 foreign orders counted by the daemon: one entry goes through (2 legs: 198), the next
    fits (200), the third is refused naming the journal's legs, each for a few weight."""
    place_foreign(cluster, 196)
    cluster.start_daemon()
    wait_for(lambda: foreign_counted(cluster) == 196, "the daemon's count of foreign conditional orders")
    weights = []
    for _ in range(2):
        meter.reset()
        code, out, err = enter(cluster)
        assert code == 0, err
        cluster.wait_protected(answer(out)["id"], QTY)
        weights.append(meter.weight)
    before_journal, before_sent = journal(cluster), sent(cluster)
    meter.reset()

    code, out, err = enter(cluster)

    assert (code, out) == (1, "")
    assert err == FULL.format(held=200, foreign=196)
    assert journal(cluster) == before_journal
    assert sent(cluster) == before_sent
    assert meter.info_reads == 0  # the filters came from the cache the first entry wrote
    assert all(w <= 5 for w in [*weights, meter.weight]), weights
    print(f"\nhanded to the daemon: {weights} weight per entry, refused for {meter.weight}")


def foreign_counted(c: Cluster) -> int | None:
    beat = heartbeat.read(c.state_dir) or {}
    return (beat.get("account") or {}).get("foreign_conditional")


# -- the exchangeInfo cache -------------------------------------------------------------------------


def limit_entry(c: Cluster, qty: str = QTY) -> tuple[int, str, str]:
    """A limit entry below the market, not waited for: it rests (exit 4), nothing is followed."""
    return bot(c, "enter", "BTCUSDT", "buy", qty, "--price", "96000", "--sl", SL, "--tp", TP)


def cached(c: Cluster) -> dict[str, Any]:
    return json.loads((c.state_dir / market.INFO_NAME).read_text())  # type: ignore[no-any-return]


def rewrite_cache(c: Cluster, **changes: Any) -> None:
    doc = {**cached(c), **changes}
    (c.state_dir / market.INFO_NAME).write_text(json.dumps(doc))


def test_exchange_info_is_cached_reused_and_read_again_when_stale(cluster: Cluster, meter: Meter) -> None:
    code, _, err = limit_entry(cluster)
    assert code == 4, err
    first = cached(cluster)
    assert meter.info_reads == 1
    assert (first["venue"], first["symbols"]["BTCUSDT"]["max_num_orders"]) == (cluster.url, 200)
    assert (cluster.state_dir / market.INFO_NAME).stat().st_mode & 0o777 == 0o600

    meter.reset()
    code, _, err = limit_entry(cluster)
    assert (code, meter.info_reads) == (4, 0), err

    stale_at = first["read_at"] - int(market.INFO_TTL_S * 1000) - 1
    rewrite_cache(cluster, read_at=stale_at)
    meter.reset()
    code, _, err = limit_entry(cluster)
    assert (code, meter.info_reads) == (4, 1), err
    assert cached(cluster)["read_at"] > first["read_at"]


def test_a_refusal_a_newer_exchange_info_could_lift_reads_it_again_once(cluster: Cluster, meter: Meter) -> None:
    """The cache says LOT_SIZE maxQty 0.005 (since raised on the venue): read again, it passes.
    A refusal the venue's own filters confirm reads once more, then stands; a stop-loss on the
    wrong side of the price is no filter exchangeInfo states: nothing is read again."""
    limit_entry(cluster)
    rows = cached(cluster)["symbols"]
    rows["BTCUSDT"]["max_qty"] = "0.005"
    rewrite_cache(cluster, symbols=rows)

    meter.reset()
    code, _, err = limit_entry(cluster)
    assert (code, meter.info_reads) == (4, 1), err
    assert cached(cluster)["symbols"]["BTCUSDT"]["max_qty"] == "1000"

    meter.reset()
    code, _, err = limit_entry(cluster, "1001")
    assert (code, meter.info_reads) == (1, 1)
    assert err.startswith("error: quantity 1001 exceeds LOT_SIZE maxQty 1000 for BTCUSDT")

    meter.reset()
    code, _, err = bot(cluster, "enter", "BTCUSDT", "buy", QTY, "--price", "96000", "--sl", "96500")
    assert (code, meter.info_reads) == (1, 0)
    assert "(ENTRY_PRICE)" in err


# -- the request weight budget ----------------------------------------------------------------------


def spend_weight(c: Cluster, until: int) -> int:
    """Signed reads of every symbol's open orders (40 each), then 1-weight reads, until the
    venue's count for this minute is at least ``until``."""
    if time.time() % 60 > 45:  # too close to the minute's end: start a fresh one
        time.sleep(61 - time.time() % 60)
    used = c.used_weight()
    while used < until - 41:
        signed_get(c.http, "/fapi/v1/openOrders", {})
        used = c.used_weight()
    while used < until:
        used = c.used_weight()
    return used


def test_a_spent_budget_is_said_as_such_never_as_cannot_reach(cluster: Cluster) -> None:
    """The venue counts 2161 of 2400 this minute: past 90%, this process refuses its own reads."""
    spend_weight(cluster, 2161)

    code, out, err = enter(cluster)

    assert (code, out) == (1, "")
    assert re.fullmatch(
        r"error: not sent: this process's request weight budget is spent \(21\d\d of 2400 this minute\);"
        r" try again in \d+ s\n", err), err  # fmt: skip
    assert "cannot reach" not in err
    assert journal(cluster) == {}
