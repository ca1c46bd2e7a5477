"""`bot adopt` against `bot paper serve`, checked from the venue's REST API and the journal.

A position is opened by hand (a signed MARKET order under another tool's client id, as the
exchange's own UI would send it). No daemon: `bot adopt` places exactly one stop-loss (and one
take-profit) for exactly the part no entry holds, and the journal holds an ADOPTED entry,
PROTECTED. Refusals: exit 1, one line, nothing written, nothing sent. With `bot run` holding the
state dir the adoption is handed over and the daemon places the legs; `bot status` exits 12
while the part is unclaimed and 0 once it is adopted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot_cli.core.engine import request_adoption
from bot_cli.core.model import EntrySpec, OrderType, PendingId, Side, Status
from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET
from bot_cli.runtime import heartbeat
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import decode, encode
from tests.cli.test_cancel_close import start_daemon, stop
from tests.cli.test_enter import (
    HOLDER,
    MARK,
    WAIT_S,
    Venue,
    answer_of,
    bot,
    bot_process,
    journal,
    start_venue,
    stop_venue,
    wait_for,
)


pytestmark = pytest.mark.e2e
HAND = "0.020"  # bought by hand, outside the bot
SL, TP = "95000", "99000"


def hand_trade(venue: Venue, side: str, qty: str, symbol: str = "BTCUSDT") -> None:
    """A MARKET order under a client id that is not the bot's: a trade by hand."""
    query = urlencode({
        "symbol": symbol, "side": side, "type": "MARKET", "quantity": qty,
        "newClientOrderId": f"by-hand-{time.time_ns()}", "timestamp": time.time_ns() // 1_000_000,
        "recvWindow": 10000,
    })  # fmt: skip
    sig = hmac.new(PAPER_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    answer = venue.http.post(f"/fapi/v1/order?{query}&signature={sig}", headers={"X-MBX-APIKEY": PAPER_API_KEY})
    assert answer.status_code == 200, answer.text


def position(venue: Venue, symbol: str = "BTCUSDT") -> Decimal:
    rows = venue.signed_get("/fapi/v2/positionRisk", symbol=symbol)
    return sum((Decimal(r["positionAmt"]) for r in rows), Decimal(0))


def legs(venue: Venue, pid: str) -> dict[str, tuple[Decimal, Decimal, str]]:
    """The entry's open algo orders by type: (quantity, trigger, side)."""
    return {a["orderType"]: (Decimal(a["quantity"]), Decimal(a["triggerPrice"]), a["side"]) for a in venue.algos(pid)}


def adopt(venue: Venue, state: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    code, out, err = bot(venue, state, "adopt", *args, "--json")
    return code, (answer_of(out) if out else None), err


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    v = start_venue(tmp_path)
    yield v
    stop_venue(v)


@pytest.fixture(scope="module")
def held_by_hand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    """One venue with BTCUSDT bought by hand, for the refusals: they send nothing."""
    v = start_venue(tmp_path_factory.mktemp("venue"))
    hand_trade(v, "BUY", HAND)
    yield v
    stop_venue(v)


# -- no daemon: this process places the legs ------------------------------------------------------


def test_a_position_bought_by_hand_is_adopted_and_protected(venue: Venue, tmp_path: Path) -> None:
    # Arrange
    hand_trade(venue, "BUY", HAND)
    before = venue.client_ids()
    state = tmp_path / "state"

    # Act
    code, answer, err = adopt(venue, state, "BTCUSDT", "--sl", SL, "--tp", TP)

    # Assert: one SL and one TP for the whole part, nothing else sent
    assert code == 0, err
    assert answer is not None
    assert (answer["state"], answer["side"], answer["quantity"]) == ("PROTECTED", "BUY", HAND)
    assert answer["sent_by"] == "this process"
    pid = answer["id"]
    assert legs(venue, pid) == {
        "STOP_MARKET": (Decimal(HAND), Decimal(SL), "SELL"),
        "TAKE_PROFIT_MARKET": (Decimal(HAND), Decimal(TP), "SELL"),
    }
    assert venue.client_ids() - before == {f"{pid}-sl1", f"{pid}-tp1"}
    (record,) = journal(state).values()
    p = decode(record)
    assert (p.status, p.spec.order_type, p.share) == (Status.PROTECTED, OrderType.ADOPTED, Decimal(HAND))
    assert position(venue) == Decimal(HAND)


def test_only_the_part_no_entry_holds_is_adopted(venue: Venue, tmp_path: Path) -> None:
    """An entry of the bot holds 0.010; 0.020 more bought by hand: the adoption covers the 0.020."""
    state = tmp_path / "state"
    code, out, err = bot(venue, state, "enter", "BTCUSDT", "buy", "0.010", "--sl", SL, "--tp", TP, "--json")
    assert code == 0, err
    hand_trade(venue, "BUY", HAND)

    code, answer, err = adopt(venue, state, "BTCUSDT", "--sl", "94000")

    assert code == 0, err
    assert answer is not None
    assert (answer["state"], answer["quantity"], answer["take_profit"]) == ("PROTECTED", HAND, None)
    assert legs(venue, answer["id"]) == {"STOP_MARKET": (Decimal(HAND), Decimal(94000), "SELL")}
    assert legs(venue, answer_of(out)["id"])["STOP_MARKET"][0] == Decimal("0.010")  # the entry's own, untouched


def test_a_short_sold_by_hand_is_adopted_in_part(venue: Venue, tmp_path: Path) -> None:
    hand_trade(venue, "SELL", HAND)

    code, out, err = bot(venue, tmp_path / "state", "adopt", "BTCUSDT", "--sl", "99000", "--quantity", "0.015")

    assert code == 0, err
    pid = out.split()[1].rstrip(":")
    assert out == (f"entry {pid}: PROTECTED - adopted sell 0.015 BTCUSDT, stop-loss 99000"
                   " [by this process]\n")  # fmt: skip
    assert legs(venue, pid) == {"STOP_MARKET": (Decimal("0.015"), Decimal(99000), "BUY")}


# -- refusals: exit 1, one line, nothing written or sent ------------------------------------------


REFUSALS = [
    pytest.param(["ETHUSDT", "--sl", "3000"], "nothing to adopt: ETHUSDT has no open position", id="nothing held"),
    pytest.param(
        ["BTCUSDT", "--sl", "98000", "--tp", TP],
        f"stop-loss 98000 is not below BTCUSDT's mark price {MARK}.00 (MARK_PRICE): for a buy it would trigger"
        f" as soon as the entry fills (-2021); use a stop-loss below {MARK}.00",
        id="stop-loss above the mark",
    ),
    pytest.param(
        ["BTCUSDT", "--sl", SL, "--tp", "96000"],
        f"take-profit 96000 is not above BTCUSDT's mark price {MARK}.00 (MARK_PRICE): for a buy it would trigger"
        f" as soon as the entry fills (-2021); use a take-profit above {MARK}.00",
        id="take-profit below the mark",
    ),
    pytest.param(
        ["BTCUSDT", "--sl", SL, "--quantity", "0.030"],
        f"--quantity 0.030 is more than the {HAND} of BTCUSDT's position {HAND} that no entry holds;"
        f" use at most {HAND}",
        id="quantity above the unclaimed part",
    ),
    pytest.param(
        ["BTCUSDT", "--sl", SL, "--quantity", "0.0105"],
        "quantity 0.0105 is not a multiple of LOT_SIZE stepSize 0.001 for BTCUSDT; use 0.010 or 0.011",
        id="quantity off the step",
    ),
    pytest.param(
        ["BTCUSDT", "--sl", "95000.05"],
        "stop-loss 95000.05 is not a multiple of PRICE_FILTER tickSize 0.10 for BTCUSDT; use 95000.00 or 95000.10",
        id="stop-loss off the tick",
    ),
    pytest.param(
        ["BTCUSDT", "--sl", SL, "--position-side", "LONG"],
        "--position-side is for hedge mode; this account is in one-way mode",
        id="position side in one-way mode",
    ),
    pytest.param(["NOPEUSDT", "--sl", SL], "symbol NOPEUSDT is not traded on the paper venue", id="unknown symbol"),
]


@pytest.mark.parametrize(("args", "line"), REFUSALS)
def test_a_refused_adoption_is_one_line_and_leaves_no_trace(
    held_by_hand: Venue, tmp_path: Path, args: list[str], line: str
) -> None:
    before = held_by_hand.client_ids()
    state = tmp_path / "state"

    code, out, err = bot(held_by_hand, state, "adopt", *args)

    assert (code, out) == (1, "")
    assert err == f"error: {line}\n"
    assert not state.exists()
    assert held_by_hand.client_ids() == before


def test_a_position_the_journal_explains_is_refused_and_the_journal_untouched(
    held_by_hand: Venue, tmp_path: Path
) -> None:
    """An entry already holds the whole position (here written as an adopted one): nothing to adopt."""
    state = tmp_path / "state"
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal(HAND), OrderType.ADOPTED, None, Decimal(SL), None)
    p, _ = request_adoption(PendingId("bc0aaaaaaaaaaaaa"), spec, None, 1, 5000)
    with PendingEntryStore(state) as store:
        store.save(p.pending_id, encode(p))
    before, sent = (state / "pending_entries.jsonl").read_bytes(), held_by_hand.client_ids()

    code, out, err = bot(held_by_hand, state, "adopt", "BTCUSDT", "--sl", SL)

    assert (code, out) == (1, "")
    assert err == (f"error: nothing to adopt: BTCUSDT's position {HAND} (BOTH) is all held by entries in the"
                   " journal (or their orders still working)\n")  # fmt: skip
    assert (state / "pending_entries.jsonl").read_bytes() == before
    assert held_by_hand.client_ids() == sent


# -- a daemon holds the state dir ---------------------------------------------------------------


def status_when(venue: Venue, state: Path, wanted: int) -> dict[str, Any]:
    """`bot status --json` once it exits ``wanted``."""

    def look() -> dict[str, Any] | None:
        code, out, _ = bot(venue, state, "status", "--json")
        doc: dict[str, Any] = json.loads(out)
        return doc if code == wanted else None

    found: dict[str, Any] | None = wait_for(look, f"`bot status` to exit {wanted}")
    assert found is not None
    return found


def test_with_a_daemon_the_adoption_is_handed_over_and_status_turns_healthy(venue: Venue, tmp_path: Path) -> None:
    # Arrange: bought by hand; the daemon flags it (exit 12) once it lasts a heartbeat
    state = tmp_path / "state"
    hand_trade(venue, "BUY", HAND)
    daemon = start_daemon(venue, state, tmp_path)
    try:
        doc = status_when(venue, state, 12)
        assert doc["unclaimed"] == [
            {"symbol": "BTCUSDT", "position_side": "BOTH", "side": "BUY", "quantity": HAND, "position": HAND}
        ]

        # Act
        code, answer, err = adopt(venue, state, "BTCUSDT", "--sl", SL, "--tp", TP)

        # Assert: the daemon placed the legs; status is healthy again once it beats
        assert code == 0, err
        assert answer is not None
        assert (answer["state"], answer["sent_by"]) == ("PROTECTED", f"bot run (pid {daemon.pid})")
        assert legs(venue, answer["id"]) == {
            "STOP_MARKET": (Decimal(HAND), Decimal(SL), "SELL"),
            "TAKE_PROFIT_MARKET": (Decimal(HAND), Decimal(TP), "SELL"),
        }
        doc = status_when(venue, state, 0)
        assert doc["unclaimed"] == []
        assert [x["covered"] for x in doc["exposure"]] == [True]
    finally:
        stop(daemon)


def test_a_daemon_gone_before_placing_the_legs_exits_3_and_the_next_run_places_them(
    venue: Venue, tmp_path: Path
) -> None:
    # Arrange: a process holds the state dir's lock as a daemon would, then dies
    state = tmp_path / "state"
    hand_trade(venue, "BUY", HAND)
    argv = [sys.executable, "-c", HOLDER, str(state)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with bot_process(venue, state, "adopt", "BTCUSDT", "--sl", SL, "--json") as adopting:
            try:
                (pid,) = wait_for(lambda: list(journal(state)), "the adopted record")
                holder.kill()
                holder.wait(10)
                out, err = adopting.communicate(timeout=WAIT_S)
            finally:
                adopting.kill()
                holder.kill()

    # Assert: exit 3, the record stays for the next `bot run`, which places its stop-loss
    assert adopting.returncode == 3
    assert answer_of(out)["state"] == "PROTECTING"
    assert err == (f"warning: the daemon (pid {holder.pid}) stopped before placing the legs of adopted entry {pid};"
                   " it is in the journal: start `bot run`, it places its stop-loss\n")  # fmt: skip
    assert venue.algos(pid) == []
    daemon = start_daemon(venue, state, tmp_path)
    try:
        wait_for(lambda: legs(venue, pid) == {"STOP_MARKET": (Decimal(HAND), Decimal(SL), "SELL")}, "its stop-loss")
    finally:
        stop(daemon)


def beats_since_start(state: Path) -> int:
    """How many heartbeats the running daemon has written after its first."""
    doc = heartbeat.read(state) or {}
    return int((doc.get("written_at", 0) - doc.get("started_at", 0)) // (heartbeat.EVERY_S * 1000))


def test_under_the_protect_policy_the_daemon_adopts_a_hand_trade_with_its_stop_at_the_set_distance(
    venue: Venue, tmp_path: Path
) -> None:
    """`[protection] unclaimed = "protect"`: a position bought by hand gets a stop-loss 2% below
    the mark (and a take-profit 3% above), placed by `bot run` itself, once, for all of it."""
    # Arrange
    with venue.config.open("a") as f:
        f.write("[protection]\nunclaimed = 'protect'\nunclaimed_stop_pct = 2.0\nunclaimed_take_pct = 3.0\n")
    state = tmp_path / "state"
    hand_trade(venue, "BUY", HAND)
    before = venue.client_ids()

    # Act
    daemon = start_daemon(venue, state, tmp_path)
    try:
        (pid,) = wait_for(lambda: list(journal(state)), "the daemon to adopt the hand trade")
        wait_for(lambda: len(legs(venue, pid)) == 2, "the adopted entry's legs")

        # Assert: its legs on the venue at 97000 -2% / +3%, nothing else sent; status healthy
        assert legs(venue, pid) == {
            "STOP_MARKET": (Decimal(HAND), Decimal("95060.0"), "SELL"),
            "TAKE_PROFIT_MARKET": (Decimal(HAND), Decimal("99910.0"), "SELL"),
        }
        assert venue.client_ids() - before == {f"{pid}-sl1", f"{pid}-tp1"}
        doc = status_when(venue, state, 0)
        assert doc["unclaimed"] == []
        assert [x["covered"] for x in doc["exposure"]] == [True]
    finally:
        stop(daemon)

    # Assert: a restart, three beats long (two flag a part), adopts nothing again
    again = start_daemon(venue, state, tmp_path)
    try:
        wait_for(lambda: beats_since_start(state) >= 3, "three heartbeats of the restarted daemon")
        assert list(journal(state)) == [pid]
        assert venue.client_ids() - before == {f"{pid}-sl1", f"{pid}-tp1"}
    finally:
        stop(again)
