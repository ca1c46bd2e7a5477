"""`bot cancel` and `bot close` against `bot paper serve`, checked from the venue's REST API.

No daemon: the command takes the lock, reconciles, applies the operator event and follows it;
when it returns, the venue shows the order cancelled or the position flat with no leg left.
With `bot run` holding the state dir: the command leaves a request and waits for the daemon's
effect. Refusals: exit 1, one line on stderr, the journal and the venue untouched. A daemon that
is gone before it took the request: exit 1, and the request stays for the next `bot run`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.engine import open_entry, step
from bot_cli.core.events import EntryAccepted, EntryFilled
from bot_cli.core.model import EntrySpec, OrderType, Side, Status
from bot_cli.ops.exit import NOT_SETTLED, cancel_refusal, close_refusal
from bot_cli.store import requests
from tests.cli.test_enter import HOLDER, SL, TP, Venue, bot, journal, start_venue, stop_venue, wait_for


pytestmark = pytest.mark.e2e
SYMBOL = "BTCUSDT"


# -- the venue's side ---------------------------------------------------------------------


def open_orders(venue: Venue, pid: str) -> list[dict[str, Any]]:
    rows = venue.signed_get("/fapi/v1/openOrders", symbol=SYMBOL)
    return [o for o in rows if o["clientOrderId"].startswith(f"{pid}-")]


def open_algos(venue: Venue, pid: str) -> list[dict[str, Any]]:
    return venue.algos(pid)  # GET /fapi/v1/openAlgoOrders, this entry's


def order_status(venue: Venue, cid: str) -> str:
    return str(venue.signed_get("/fapi/v1/order", symbol=SYMBOL, origClientOrderId=cid)["status"])


def position(venue: Venue) -> Decimal:
    rows = venue.signed_get("/fapi/v2/positionRisk", symbol=SYMBOL)
    return sum((Decimal(r["positionAmt"]) for r in rows), Decimal(0))


def enter(venue: Venue, state: Path, *args: str) -> str:
    """`bot enter --json` with no daemon: the new entry's id."""
    _, out, err = bot(venue, state, "enter", SYMBOL, *args, "--json")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, err
    return str(json.loads(lines[-1])["id"])


def protected(venue: Venue, state: Path) -> str:
    """A market buy, protected before `bot enter` returns."""
    pid = enter(venue, state, "buy", "0.010", "--sl", SL, "--tp", TP)
    assert len(open_algos(venue, pid)) == 2
    return pid


def resting(venue: Venue, state: Path) -> str:
    """A limit buy below the market: OPEN on the venue, nothing filled."""
    pid = enter(venue, state, "buy", "0.010", "--price", "96000", "--sl", SL, "--tp", TP)
    assert order_status(venue, f"{pid}-e") == "NEW"
    return pid


def archived_status(state: Path, pid: str) -> str | None:
    from bot_cli.state_store import PendingEntryStore

    with PendingEntryStore(state) as store:
        lines = [a for a in store.archived() if a["id"] == pid]
    return str(lines[-1]["rec"]["status"]) if lines else None


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    v = start_venue(tmp_path, stacking=True)  # several entries on BTCUSDT, closed one by one
    yield v
    stop_venue(v)


# -- no daemon ------------------------------------------------------------------------------


def test_cancel_alone_cancels_the_resting_order_on_the_venue(venue: Venue, tmp_path: Path) -> None:
    """A limit entry resting OPEN: `bot cancel` exits 0, archived CANCELED, the venue's order CANCELED."""
    state = tmp_path / "state"
    pid = resting(venue, state)

    code, out, err = bot(venue, state, "cancel", pid)

    assert code == 0, err
    assert out == f"entry {pid} ({SYMBOL}): CANCELED - canceled with no fill [by this process]\n"
    assert order_status(venue, f"{pid}-e") == "CANCELED"
    assert archived_status(state, pid) == "CANCELED"
    assert pid not in journal(state)


def test_close_alone_flattens_the_share_and_cancels_both_legs(venue: Venue, tmp_path: Path) -> None:
    """A protected entry: `bot close ID` exits 0, archived CLOSED; the venue shows the position flat
    and neither leg open."""
    state = tmp_path / "state"
    pid = protected(venue, state)
    assert position(venue) == Decimal("0.010")

    code, out, err = bot(venue, state, "close", pid, "--json")

    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert (result["id"], result["state"], result["by"]) == (pid, "CLOSED", "this process")
    assert position(venue) == 0
    assert open_algos(venue, pid) == []
    assert archived_status(state, pid) == "CLOSED"


def test_close_symbol_closes_each_entry_and_leaves_a_working_one(venue: Venue, tmp_path: Path) -> None:
    """Two protected entries and one resting on BTCUSDT: `bot close BTCUSDT` closes both shares;
    the resting entry order is not part of the position and keeps working."""
    state = tmp_path / "state"
    first, second, working = protected(venue, state), protected(venue, state), resting(venue, state)
    assert position(venue) == Decimal("0.020")

    code, out, err = bot(venue, state, "close", "btcusdt")

    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == sorted([first, second])
    assert position(venue) == 0
    assert open_algos(venue, first) == open_algos(venue, second) == []
    assert order_status(venue, f"{working}-e") == "NEW"
    assert journal(state)[working]["status"] == "OPEN"


def test_cancel_with_close_of_a_resting_entry_is_a_plain_cancel(venue: Venue, tmp_path: Path) -> None:
    """--close with nothing filled: nothing to close, the order is cancelled, exit 0."""
    state = tmp_path / "state"
    pid = resting(venue, state)

    code, _, err = bot(venue, state, "cancel", pid, "--close")

    assert code == 0, err
    assert order_status(venue, f"{pid}-e") == "CANCELED"
    assert archived_status(state, pid) == "CANCELED"


# -- refusals: exit 1, one line, nothing changed ------------------------------------------


def test_refusals_change_nothing(venue: Venue, tmp_path: Path) -> None:
    """Unknown id, nothing to cancel, nothing to close, an archived id, a symbol with no share:
    one line each on stderr; the journal and the venue's open orders unchanged."""
    state = tmp_path / "state"
    done, working = protected(venue, state), resting(venue, state)
    assert bot(venue, state, "cancel", working)[0] == 0
    pid = protected(venue, state)
    rest = resting(venue, state)
    before = ((state / "pending_entries.jsonl").read_bytes(), open_algos(venue, pid), open_orders(venue, rest))
    cases = {
        ("cancel", "bc0000000000nope"): "error: no pending entry bc0000000000nope in",
        ("cancel", pid): f"error: entry {pid} has nothing to cancel: its entry order is over (0.010 of 0.010 "
                         f"filled); `bot close {pid}` closes its share",
        ("close", rest): f"error: entry {rest} is OPEN with nothing filled: nothing to close; "
                         f"`bot cancel {rest}` cancels its order",
        ("close", working): f"error: entry {working} is no longer pending: archived ",
        ("close", "ETHUSDT"): "error: no pending entry on ETHUSDT (nor an entry with that id)",
    }
    for args, line in cases.items():
        code, out, err = bot(venue, state, *args)
        assert (code, out) == (1, ""), args
        assert err.startswith(line), err
        assert err.count("\n") == 1, err
        assert "Traceback" not in err, err
    after = ((state / "pending_entries.jsonl").read_bytes(), open_algos(venue, pid), open_orders(venue, rest))
    assert after == before
    assert done  # untouched too: still protected
    assert len(open_algos(venue, done)) == 2


@pytest.mark.parametrize(("status", "filled", "cancel", "close"), [
    pytest.param(Status.OPEN, "0", None, "nothing filled", id="OPEN: cancel yes, close no"),
    pytest.param(Status.PROTECTED, "0.010", "nothing to cancel", None, id="PROTECTED: close yes, cancel no"),
])
def test_what_can_take_a_request_is_decided_from_the_entry(
    status: Status, filled: str, cancel: str | None, close: str | None
) -> None:
    """The refusals are pure: decided from the entry alone (and the lifecycle table)."""
    spec = EntrySpec(SYMBOL, Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal(96000), Decimal(SL), Decimal(TP))
    p, _ = open_entry("bc0aaaaaaaaaaaaa", spec, 1, 5000)  # type: ignore[arg-type]
    p, _ = step(p, EntryAccepted(p.pending_id, 1), 2)
    if filled != "0":
        p, _ = step(p, EntryFilled(p.pending_id, 1, Decimal(filled), Decimal(96000)), 3)
    assert p.status in (status, Status.PROTECTING)
    for found, expected in ((cancel_refusal(p), cancel), (close_refusal(p), close)):
        assert (found is None) if expected is None else (expected in (found or "")), found


# -- a daemon holds the state dir ---------------------------------------------------------


def start_daemon(venue: Venue, state: Path, root: Path) -> subprocess.Popen[bytes]:
    """`bot run --no-live`, ready when its --ready-file appears (first reconcile done)."""
    ready, log = root / "ready.json", root / "run.log"
    argv = [sys.executable, "-m", "bot_cli", "--state-dir", str(state), "--config", str(venue.config),
            "run", "--no-live", "--ready-file", str(ready)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        return ready.exists()

    wait_for(up, "`bot run` to write its ready file")
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_with_a_daemon_cancel_and_close_go_through_it(venue: Venue, tmp_path: Path) -> None:
    """`bot run` holds the state dir: `bot cancel` and `bot close` leave requests; the daemon acts,
    the commands say so (by bot run) and the venue shows the order cancelled, the position flat."""
    state = tmp_path / "state"
    pid, rest = protected(venue, state), resting(venue, state)
    daemon = start_daemon(venue, state, tmp_path)
    try:
        code, out, err = bot(venue, state, "cancel", rest)
        assert code == 0, err
        assert out == f"entry {rest} ({SYMBOL}): CANCELED - canceled with no fill [by bot run (pid {daemon.pid})]\n"
        assert order_status(venue, f"{rest}-e") == "CANCELED"

        code, out, err = bot(venue, state, "close", pid, "--json")
        assert code == 0, err
        (result,) = json.loads(out)["results"]
        assert result["by"] == f"bot run (pid {daemon.pid})"
        assert result["state"] in ("EXITING", "CLOSED")
        wait_for(lambda: position(venue) == 0 and not open_algos(venue, pid), "the venue flat, no leg open")
        wait_for(lambda: archived_status(state, pid) == "CLOSED", "the entry archived CLOSED")
        assert requests.pending(state) == []
    finally:
        stop(daemon)


HOLDER_PID = HOLDER.replace('print("held", flush=True)', 'print(os.getpid(), flush=True)').replace(
    "import sys, time", "import os, sys, time")


def test_a_daemon_gone_before_taking_the_request_leaves_it_for_the_next_run(venue: Venue, tmp_path: Path) -> None:
    """The lock's holder never takes the request, then dies: exit 1, one line saying the request
    stays; it is still in requests/, and the venue's order still rests."""
    state = tmp_path / "state"
    rest = resting(venue, state)
    with subprocess.Popen([sys.executable, "-c", HOLDER_PID, str(state)], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == str(holder.pid)
        argv = [sys.executable, "-m", "bot_cli", "--state-dir", str(state), "--config", str(venue.config),
                "cancel", rest]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cancel:
            try:
                wait_for(lambda: requests.pending(state), "the request file")
                holder.kill()
                holder.wait(10)
                _out, err = cancel.communicate(timeout=20)
            finally:
                cancel.kill()
                holder.kill()
    assert cancel.returncode == 1
    assert err == (f"error: the daemon (pid {holder.pid}) stopped before taking the request to cancel {rest}:"
                   " the request stays in the state dir and the next `bot run` applies it\n")
    assert [(r.pending_id, r.verb) for r in requests.pending(state)] == [(rest, "cancel")]
    assert order_status(venue, f"{rest}-e") == "NEW"


def test_a_request_not_taken_in_time_exits_3(venue: Venue, tmp_path: Path) -> None:
    """The holder lives but never takes it: exit 3 after --timeout, one warning line; it stays."""
    state = tmp_path / "state"
    rest = resting(venue, state)
    with subprocess.Popen([sys.executable, "-c", HOLDER_PID, str(state)], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == str(holder.pid)
            code, out, err = bot(venue, state, "cancel", rest, "--timeout", "0.5")
        finally:
            holder.kill()
    assert code == NOT_SETTLED == 3
    assert out == f"entry {rest} ({SYMBOL}): OPEN - entry order still working [by bot run (pid {holder.pid})]\n"
    assert err == (f"warning: the daemon (pid {holder.pid}) has not taken the request to cancel {rest} in 0.5s:"
                   " it stays for the daemon; see `bot status`\n")
    assert [r.pending_id for r in requests.pending(state)] == [rest]


def test_an_unreachable_venue_or_an_unreadable_record_is_one_line(tmp_path: Path) -> None:
    """No daemon and no venue: exit 1, one line, the journal untouched; an unreadable record is
    refused before any venue is asked."""
    from typer.testing import CliRunner

    from bot_cli.cli import app
    from bot_cli.state_store import PendingEntryStore
    from bot_cli.store.codec import encode
    from tests.cli.test_enter import free_port

    state, config = tmp_path / "state", tmp_path / "bot.toml"
    config.write_text(f"[venue]\nposition_mode = 'one-way'\nrest_url = 'http://127.0.0.1:{free_port()}'\n")
    spec = EntrySpec(SYMBOL, Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal(96000), Decimal(SL), Decimal(TP))
    p, _ = open_entry("bc0aaaaaaaaaaaaa", spec, 1, 5000)  # type: ignore[arg-type]
    p, _ = step(p, EntryAccepted(p.pending_id, 1), 2)
    with PendingEntryStore(state) as store:
        store.save(p.pending_id, encode(p))
        store.save("bc0bbbbbbbbbbbbb", {"symbol": SYMBOL})
    before = (state / "pending_entries.jsonl").read_bytes()
    for pid, words in ((p.pending_id, "venue"), ("bc0bbbbbbbbbbbbb", "the record of bc0bbbbbbbbbbbbb cannot be read")):
        result = CliRunner().invoke(app, ["--state-dir", str(state), "--config", str(config), "cancel", pid])
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        assert words in result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    assert (state / "pending_entries.jsonl").read_bytes() == before


# -- a partly filled entry: cancel the rest, then protect or close what filled --------------


def part_filled(venue: Venue, state: Path) -> tuple[str, Decimal]:
    """A limit buy the market crosses for one matching step: part of it fills, the rest rests."""
    pid = enter(venue, state, "buy", "0.010", "--price", "96900", "--sl", SL, "--tp", TP)
    cid = f"{pid}-e"

    def filled() -> Decimal:
        return Decimal(venue.signed_get("/fapi/v1/order", symbol=SYMBOL, origClientOrderId=cid)["executedQty"])

    venue.set_price(SYMBOL, "96800")
    try:
        qty = wait_for(lambda: filled() > 0 and filled(), "a first fill of the entry", timeout=10)
    finally:
        venue.set_price(SYMBOL, "97000")
    assert qty < Decimal("0.010"), "the whole order filled in one step"
    return pid, filled()


def test_cancel_through_the_daemon_keeps_what_filled_protected(venue: Venue, tmp_path: Path) -> None:
    """Partly filled under `bot run`: `bot cancel` cancels the rest; the filled part stays protected
    (the venue: the order CANCELED with its fill, SL and TP for exactly that quantity)."""
    state = tmp_path / "state"
    daemon = start_daemon(venue, state, tmp_path)
    try:
        pid, _ = part_filled(venue, state)
        wait_for(lambda: len(open_algos(venue, pid)) == 2, "the filled part protected")
        code, out, err = bot(venue, state, "cancel", pid, "--json")
        assert code == 0, err
        (result,) = json.loads(out)["results"]
        order = venue.signed_get("/fapi/v1/order", symbol=SYMBOL, origClientOrderId=f"{pid}-e")
        assert order["status"] == "CANCELED"
        assert result["filled_quantity"] == order["executedQty"]

        def legs_match() -> bool:
            legs = open_algos(venue, pid)
            return len(legs) == 2 and all(Decimal(a["quantity"]) == Decimal(order["executedQty"]) for a in legs)

        wait_for(legs_match, "one SL and one TP for the filled quantity")
        assert position(venue) == Decimal(order["executedQty"])
    finally:
        stop(daemon)


def test_cancel_close_alone_closes_what_filled(venue: Venue, tmp_path: Path) -> None:
    """Partly filled while no daemon ran: `bot cancel --close` reconciles first, cancels the rest,
    closes the filled part at market; the venue ends flat with no leg open."""
    state = tmp_path / "state"
    pid, qty = part_filled(venue, state)
    assert position(venue) == qty

    code, out, err = bot(venue, state, "cancel", pid, "--close")

    assert code == 0, err
    assert out.startswith(f"entry {pid} ({SYMBOL}): CLOSED - ")
    assert order_status(venue, f"{pid}-e") == "CANCELED"
    assert position(venue) == 0
    assert open_algos(venue, pid) == []
