"""When the bot is gone for good: the dead-man switch, and `bot probe` finding out whether it is safe.

Real processes (`bot paper serve`, `bot run`, `bot enter`, `bot probe`, `bot status`), checked from
the venue's REST API and its timestamps. Prices move only when the test moves them (except in the
probe test, where the stop-before-position probe needs a moving mark).
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BOT, Cluster, cluster_at, wait_for
from tests.e2e.test_bracket import SYMBOL, protected_entry


pytestmark = pytest.mark.e2e

COUNTDOWN_S = 3
START, REST_AT = "97000", "90000"  # the market; a buy limit far below it that rests
RENEW_MS = COUNTDOWN_S * 1000 // 4


def _with_deadman(c: Cluster, **keys: object) -> None:
    with c.config.open("a") as f:
        f.write("\n[deadman]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))


def _bot(c: Cluster, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BOT, *args], env=c.env, cwd=c.root, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip


def _heartbeat_deadman(c: Cluster) -> dict[str, Any]:
    try:
        beat = json.loads((c.state_dir / "heartbeat.json").read_text())
    except (OSError, ValueError):
        return {}
    return beat.get("deadman") or {}


def _resting_entry(c: Cluster) -> str:
    answer = c.enter(SYMBOL, "buy", "0.004", price=REST_AT, sl="85000", tp="99000")
    assert answer["exit_code"] in (0, 3), answer  # accepted; it rests (3: not protected yet, nothing filled)
    pid = str(answer["id"])
    wait_for(lambda: (c.entry_order(pid) or {}).get("status") == "NEW", f"{pid}'s limit to rest on the venue")
    return pid


def _nothing_left(c: Cluster) -> None:
    state = c.state()
    assert state["openOrders"] == [], state["openOrders"]
    assert state["openAlgoOrders"] == [], state["openAlgoOrders"]
    assert state["positions"] == [], state["positions"]


def test_a_killed_daemons_resting_entry_is_cancelled_by_the_venue_within_the_countdown_and_every_leg_stays(
    tmp_path: Path,
) -> None:
    with cluster_at(tmp_path, position_mode="one-way", stacking=True) as c:
        # Arrange: one entry filled and protected, a second resting far below, the switch armed
        _with_deadman(c, countdown_s=COUNTDOWN_S)
        c.set_price(SYMBOL, START)
        c.start_daemon()
        held, legs = protected_entry(c, "0.010", sl="88000", tp="99000")
        resting = _resting_entry(c)
        wait_for(lambda: SYMBOL in _heartbeat_deadman(c).get("armed", {}), "the switch armed on the symbol")
        wait_for(lambda: SYMBOL in c.state()["countdowns"], "the venue to hold a countdown for the symbol")

        # Act: the daemon dies for good; nobody renews the countdown
        c.kill_daemon()
        killed_at = c.venue_time()
        wait_for(lambda: (c.entry_order(resting) or {}).get("status") == "CANCELED",
                 "the venue to cancel the resting entry", timeout=COUNTDOWN_S + 10)  # fmt: skip

        # Assert, from the venue's side: cancelled within the countdown of the last renewal
        order = c.entry_order(resting)
        assert order is not None
        assert Decimal(order["executedQty"]) == 0
        assert int(order["updateTime"]) - killed_at <= COUNTDOWN_S * 1000 + 200, (order["updateTime"], killed_at)
        live = {a["clientAlgoId"] for a in c.live_algos(held)}
        assert live == {legs["sl"]["clientAlgoId"], legs["tp"]["clientAlgoId"]}, "a leg went with the countdown"
        assert c.position(SYMBOL) == Decimal("0.010")

        # ... and the next start finds the entry cancelled, the held one still protected
        c.start_daemon()
        c.wait_archived(resting)
        assert c.status_of(resting) == "CANCELED"
        assert c.status_of(held) == "PROTECTED"
        wait_for(lambda: SYMBOL not in c.state()["countdowns"], "the switch turned off: no entry order rests")
        code, _ = c.status()
        assert code == 0
        c.assert_invariants(symbols=[SYMBOL])


def test_probe_runs_every_experiment_cleans_up_and_the_next_run_goes_by_its_verdicts(tmp_path: Path) -> None:
    # the stop-before-position probe's near triggers need a mark that moves on its own (0.2 %/s)
    with cluster_at(tmp_path, position_mode="one-way", volatility=0.002) as c:
        _with_deadman(c, countdown_s=COUNTDOWN_S)

        done = _bot(c, "probe", "--countdown", "1", "--wait", "20", "--json")

        assert done.returncode == 0, done.stderr
        verdicts = {v["name"]: v for v in json.loads(done.stdout)}
        assert verdicts["deadman"]["verdict"] == "legs-survive", verdicts["deadman"]
        assert verdicts["gte-gtc"]["verdict"] == "expires-on-close", verdicts["gte-gtc"]
        assert verdicts["stop-before-position"]["verdict"] == "accepted-EXPIRED", verdicts["stop-before-position"]
        assert "with no position it went EXPIRED" in verdicts["stop-before-position"]["detail"]
        assert all("NOT cleaned up" not in v["detail"] for v in verdicts.values())
        _nothing_left(c)
        saved = json.loads((c.state_dir / "probes.json").read_text())["verdicts"]
        assert {v["name"] for v in saved} == set(verdicts)
        assert all(v["venue"].startswith("paper ") and v["at"][:4] == "2026" for v in saved)

        # the next `bot run` reads them: the switch says what it goes by
        c.start_daemon()
        assert c.daemon_lines("venue rules", "deadman legs-survive", "gte-gtc expires-on-close")
        _resting_entry(c)
        wait_for(lambda: SYMBOL in _heartbeat_deadman(c).get("armed", {}), "the switch armed")
        assert "bot probe deadman`: legs-survive" in _heartbeat_deadman(c)["basis"]
        shown = _bot(c, "status")
        assert "going by `bot probe deadman`: legs-survive" in shown.stdout, shown.stdout


def test_a_venue_whose_countdown_strips_the_legs_is_found_out_and_the_switch_is_refused_saying_why(
    tmp_path: Path,
) -> None:
    with cluster_at(tmp_path, position_mode="one-way", paper_faults=["countdown_cancels_algo"]) as c:
        _with_deadman(c, countdown_s=COUNTDOWN_S)
        c.set_price(SYMBOL, START)

        probed = _bot(c, "probe", "deadman", "--countdown", "1", "--json")

        assert probed.returncode == 0, probed.stderr
        [verdict] = json.loads(probed.stdout)
        assert verdict["verdict"] == "legs-cancelled", verdict
        _nothing_left(c)

        c.start_daemon()
        resting = _resting_entry(c)
        wait_for(lambda: SYMBOL in _heartbeat_deadman(c).get("skipped", {}), "the switch to skip the symbol")
        deadman = _heartbeat_deadman(c)
        assert deadman["allowed"] is False
        assert deadman["armed"] == {}
        assert "strip every stop" in deadman["why_not"]
        assert c.daemon_lines("dead-man switch", "cancel algo orders")
        assert c.state()["countdowns"] == {}, "the venue was sent a countdown"
        shown = _bot(c, "status")
        assert "dead-man switch: OFF" in shown.stdout
        assert f"{SYMBOL}: resting entries NOT covered" in shown.stdout
        assert (c.entry_order(resting) or {}).get("status") == "NEW"


def test_regular_orders_that_are_not_the_bots_keep_the_switch_off_on_their_symbol(tmp_path: Path) -> None:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        _with_deadman(c, countdown_s=COUNTDOWN_S)
        c.set_price(SYMBOL, START)
        c.by_hand("POST", "/fapi/v1/order", symbol=SYMBOL, side="BUY", type="LIMIT", quantity="0.002",
                  price="80000", timeInForce="GTC", newClientOrderId="by-hand-1")  # fmt: skip
        c.start_daemon()

        _resting_entry(c)

        wait_for(lambda: SYMBOL in _heartbeat_deadman(c).get("skipped", {}), "the switch to skip the symbol")
        assert "1 regular order(s) on BTCUSDT are not the bot's" in _heartbeat_deadman(c)["skipped"][SYMBOL]
        assert c.state()["countdowns"] == {}
        assert c.daemon_lines("dead-man switch not armed on BTCUSDT")
