"""`bot pending list` and `bot pending drop` through the real command line; a forced drop's
cancels are checked on `bot paper serve`'s REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.core.engine import open_entry, request_entry, step
from bot_cli.core.events import EntryAccepted, EntryPartiallyFilled
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.ops import drop as ops
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode
from tests.e2e.harness import free_port


runner = CliRunner()
SPEC = EntrySpec(
    "BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"), Decimal("63000.0"), Decimal("66000.0")
)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir with two entries: one open, one partially filled."""
    path = tmp_path / "state"
    now = 1_764_000_000_000
    with PendingEntryStore(path) as store:
        for i in range(2):
            pid = make_pending_id(now + i, i)
            p, _ = open_entry(pid, SPEC, now, 5000)
            p, _ = step(p, EntryAccepted(pid, 10 + i), now + 1)
            if i:
                p, _ = step(p, EntryPartiallyFilled(pid, 10 + i, Decimal("0.004"), Decimal("64000.0")), now + 2)
            store.save(pid, encode(p))
    return path


def bot(state: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    """The CLI on ``state``, with a paper venue of its own on a free port (never the default)."""
    config = state.parent / "bot.toml"
    if not config.exists():
        config.write_text(f"[paper]\nport = {free_port()}\n")
    result = runner.invoke(app, ["--state-dir", str(state), "--config", str(config), *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_every_column(state: Path) -> None:
    """The table names id, symbol, side, quantities, state, entry client id, SL, TP and age."""
    code, out, _ = bot(state, "pending", "list")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:6] == ["id", "symbol", "side", "qty", "filled", "state"]
    assert "PARTIALLY_FILLED" in out
    assert "OPEN" in out
    assert "63000.0" in out
    assert "66000.0" in out


def test_list_json_is_machine_readable(state: Path) -> None:
    """--json gives the same rows as data, quantities as decimal strings."""
    code, out, _ = bot(state, "pending", "list", "--json")
    assert code == 0
    rows = json.loads(out)["pending"]
    assert [r["state"] for r in rows] == ["OPEN", "PARTIALLY_FILLED"]
    assert rows[1]["filled_quantity"] == "0.004"
    assert rows[0]["entry_client_id"] == rows[0]["id"] + "-e"
    assert set(rows[0]) >= {"id", "symbol", "side", "quantity", "stop_loss", "take_profit", "age_seconds"}


def test_list_of_an_empty_state_dir(tmp_path: Path) -> None:
    """No journal yet: an empty list, not an error."""
    code, out, _ = bot(tmp_path / "new", "pending", "list", "--json")
    assert code == 0
    assert json.loads(out) == {"pending": []}


def test_drop_unknown_id_fails_and_changes_nothing(state: Path) -> None:
    """An unknown id is exit 1 with a clear message; the journal is untouched."""
    before = (state / "pending_entries.jsonl").read_bytes()
    code, _, err = bot(state, "pending", "drop", "bcnope000000", "--yes", "--force")
    assert code == 1
    assert "no pending entry bcnope000000" in err
    assert "bot pending list" in err
    assert (state / "pending_entries.jsonl").read_bytes() == before


def test_drop_moves_the_record_to_the_archive(state: Path) -> None:
    """--yes --force drops without asking; the record is archived with reason 'dropped'."""
    pid = json.loads(bot(state, "pending", "list", "--json")[1])["pending"][0]["id"]
    code, out, _ = bot(state, "pending", "drop", pid, "--yes", "--force")
    assert code == 0
    assert f"dropped 1: {pid}" in out
    with PendingEntryStore(state) as store:
        assert pid not in store.load_all()
        archived = [a for a in store.archived() if a["id"] == pid]
    assert archived[-1]["reason"] == "dropped"
    assert archived[-1]["rec"]["pending_id"] == pid


def test_drop_asks_first(state: Path) -> None:
    """Without --yes the operator is asked; answering no changes nothing."""
    pid = json.loads(bot(state, "pending", "list", "--json")[1])["pending"][0]["id"]
    code, out, _ = bot(state, "pending", "drop", pid, "--force", input="n\n")
    assert code == 1
    assert "Drop 1 pending entry" in out
    with PendingEntryStore(state) as store:
        assert pid in store.load_all()


def test_a_bad_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A config error surfaces as one sentence, no traceback."""
    cfg = tmp_path / "bot.toml"
    cfg.write_text("[venue]\nkind = 'nope'\n")
    result = runner.invoke(app, ["--config", str(cfg), "recover", "--dry-run"])
    assert result.exit_code == 1
    assert "venue.kind = 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


# -- records the bot cannot read ----------------------------------------------------------


def save(state: Path, key: str, record: dict[str, Any]) -> None:
    with PendingEntryStore(state) as store:
        store.save(key, record)


def first_record(state: Path) -> tuple[str, dict[str, Any]]:
    with PendingEntryStore(state) as store:
        return next(iter(store.load_all().items()))


def test_an_undecodable_record_is_listed_as_unreadable(state: Path) -> None:
    """A record whose leg state codec refuses: one row, state UNREADABLE, id its key, the reason;
    and a warning on stderr saying what to do."""
    pid, record = first_record(state)
    bad = {**record, "status": "PARTIALLY_FILLED",
           "protections": [{**leg, "state": "ON_FIRE"} for leg in encode_legs(record)]}
    save(state, pid, bad)
    code, out, err = bot(state, "pending", "list", "--json")
    assert code == 0
    row = next(r for r in json.loads(out)["pending"] if r["id"] == pid)
    assert row["state"] == "UNREADABLE"
    assert "ON_FIRE" in row["reason"]
    assert row["symbol"] == "BTCUSDT"
    assert row["entry_client_id"] is None
    assert f"bot pending drop --force {pid}" in err
    code, out, _ = bot(state, "pending", "list")
    line = next(x for x in out.splitlines() if x.startswith(pid))
    assert "UNREADABLE" in line.split()


def encode_legs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's legs, or one made up when it has none (an OPEN entry)."""
    return record["protections"] or [{"leg": "sl", "gen": 1, "client_id": "x-sl1", "quantity": "0.004",
                                      "trigger_price": "63000.0", "state": "LIVE", "sent_at": 1}]


def test_a_plain_context_is_listed_and_dropped_only_with_force(state: Path) -> None:
    """The seed's save(client_order_id, context) with a context codec never wrote: listed as
    UNREADABLE with what can be read of it; a drop needs --force, then archives it as it was."""
    context = {"symbol": "ETHUSDT", "side": "SELL", "quantity": "0.5", "sl": "3100"}
    save(state, "seed-order-1", context)
    _, out, _ = bot(state, "pending", "list", "--json")
    row = next(r for r in json.loads(out)["pending"] if r["id"] == "seed-order-1")
    assert (row["state"], row["symbol"], row["quantity"]) == ("UNREADABLE", "ETHUSDT", "0.5")
    assert "plain context" in row["reason"]
    assert row["age_seconds"] is None
    before = (state / "pending_entries.jsonl").read_bytes()
    code, _, err = bot(state, "pending", "drop", "seed-order-1", "--yes")
    assert code == 1
    assert "cannot be read" in err
    assert "--force" in err
    assert (state / "pending_entries.jsonl").read_bytes() == before
    code, out, err = bot(state, "pending", "drop", "seed-order-1", "--yes", "--force")
    assert code == 0
    assert "dropped 1: seed-order-1" in out
    assert "seed-order-1 dropped" in err
    assert "never checked" in err
    with PendingEntryStore(state) as store:
        assert "seed-order-1" not in store.load_all()
        assert store.archived()[-1]["rec"] == context


# -- drop safety ----------------------------------------------------------------------------


def ids_by_state(state: Path) -> dict[str, str]:
    return {r["state"]: r["id"] for r in json.loads(bot(state, "pending", "list", "--json")[1])["pending"]}


def test_drop_refuses_a_working_entry_without_force(state: Path) -> None:
    """The journal says the entry order may still work: refused from the journal alone (no
    exchange needed), one line naming the order; nothing changed."""
    pid = ids_by_state(state)["OPEN"]
    before = (state / "pending_entries.jsonl").read_bytes()
    code, _, err = bot(state, "pending", "drop", pid, "--yes")
    assert code == 1
    assert f"entry order {pid}-e (OPEN) may still be working on the exchange" in err
    assert "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert (state / "pending_entries.jsonl").read_bytes() == before


def test_force_drops_through_the_lifecycle_and_warns_what_stays_live(state: Path) -> None:
    """--force --keep-orders: archived as DROPPED by the core's OperatorDrop, with a warning
    naming the entry order and both protective orders left on the exchange."""
    pid = ids_by_state(state)["PARTIALLY_FILLED"]
    code, _, err = bot(state, "pending", "drop", pid, "--yes", "--force", "--keep-orders")
    assert code == 0
    for live in (f"{pid}-e (PARTIALLY_FILLED)", f"stop-loss {pid}-sl1", f"take-profit {pid}-tp1"):
        assert live in err
    with PendingEntryStore(state) as store:
        archived = store.archived()[-1]
    assert archived["reason"] == "dropped"
    assert archived["rec"]["status"] == "DROPPED"
    assert archived["rec"]["history"][-1][1] == "PARTIALLY_FILLED -> DROPPED on OperatorDrop"


def test_a_safe_entry_drops_without_force(tmp_path: Path) -> None:
    """An entry not sent yet leaves nothing on the exchange: ops drops it unforced."""
    now = 1_764_000_000_000
    pid = make_pending_id(now, 7)
    p, _ = request_entry(pid, SPEC, now, 5000)
    with PendingEntryStore(tmp_path) as store:
        store.save(pid, encode(p))
        result = ops.drop_pending(store, [pid], now_ms=now + 1)
        assert result.dropped == [pid]
        assert result.left_live == {}
        assert store.load_all() == {}
        assert store.archived()[-1]["rec"]["status"] == "DROPPED"


def test_ops_refuses_unforced_and_changes_nothing(state: Path) -> None:
    """ops.drop_pending checks again itself: the journal read then is what counts."""
    ids = ids_by_state(state)
    with PendingEntryStore(state) as store:
        with pytest.raises(ops.DropRefused, match="may still be working"):
            ops.drop_pending(store, list(ids.values()), now_ms=1)
        assert set(store.load_all()) == set(ids.values())


# -- --all: shares and legs -------------------------------------------------------------------


def test_list_all_shows_each_entrys_share_and_its_legs(state: Path) -> None:
    """--all: the partly filled entry's share, and its legs with client id, quantity, trigger, state."""
    code, out, _ = bot(state, "pending", "list", "--all", "--json")
    assert code == 0
    rows = {r["state"]: r for r in json.loads(out)["pending"]}
    assert (rows["OPEN"]["share"], rows["OPEN"]["legs"]) == ("0", [])
    pf = rows["PARTIALLY_FILLED"]
    assert pf["share"] == "0.004"
    assert [(x["client_id"], x["leg"], x["quantity"], x["trigger"]) for x in pf["legs"]] == [
        (f"{pf['id']}-sl1", "sl1", "0.004", "63000.0"), (f"{pf['id']}-tp1", "tp1", "0.004", "66000.0")]
    code, out, _ = bot(state, "pending", "list", "--all")
    assert "share" in out.splitlines()[0].split()
    assert f"{pf['id']}-sl1" in out
    assert f"{pf['id']}-tp1" in out


# -- drop --force cancels what the entry left working (paper venue) ---------------------------


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Any]:
    from tests.cli.test_enter import start_venue, stop_venue

    v = start_venue(tmp_path)
    yield v
    stop_venue(v)


def drop(venue: Any, state: Path, *args: str) -> tuple[int, str, str]:
    from tests.cli.test_enter import bot as bot_with

    return bot_with(venue, state, "pending", "drop", *args, "--yes", "--force")


@pytest.mark.e2e
def test_force_drop_cancels_a_resting_entry_order(venue: Any, tmp_path: Path) -> None:
    """An OPEN entry: --force cancels its order on the venue first, says so, and drops it."""
    from tests.cli.test_cancel_close import order_status, resting

    state = tmp_path / "state"
    pid = resting(venue, state)
    code, out, err = drop(venue, state, pid)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"{pid}: cancelled on the exchange: {pid}-e"
    assert order_status(venue, f"{pid}-e") == "CANCELED"
    with PendingEntryStore(state) as store:
        assert pid not in store.load_all()
        assert store.archived()[-1]["rec"]["status"] == "DROPPED"


@pytest.mark.e2e
def test_force_drop_of_a_protected_entry_cancels_its_legs_and_names_the_open_share(venue: Any, tmp_path: Path) -> None:
    """A protected entry: its SL and TP are cancelled on the venue; the position stays, and the one
    warning says so."""
    from tests.cli.test_cancel_close import open_algos, position, protected

    state = tmp_path / "state"
    pid = protected(venue, state)
    code, out, err = drop(venue, state, pid)
    assert code == 0
    assert out.splitlines()[0] == f"{pid}: cancelled on the exchange: {pid}-sl1, {pid}-tp1"
    assert open_algos(venue, pid) == []
    assert position(venue) == Decimal("0.010")
    assert err == (f"warning: {pid} dropped; left on the exchange, with nothing following it now: its share"
                   " of 0.010 BTCUSDT stays open with no stop-loss; close it on the exchange\n")


@pytest.mark.e2e
def test_keep_orders_leaves_them_working_and_says_so(venue: Any, tmp_path: Path) -> None:
    """--keep-orders: the old behaviour, the order still rests on the venue; a warning names it."""
    from tests.cli.test_cancel_close import order_status, resting

    state = tmp_path / "state"
    pid = resting(venue, state)
    code, _, err = drop(venue, state, pid, "--keep-orders")
    assert code == 0
    assert f"entry order {pid}-e (OPEN)" in err
    assert order_status(venue, f"{pid}-e") == "NEW"


def test_force_drop_with_the_venue_unreachable_drops_nothing(state: Path, tmp_path: Path) -> None:
    """Cancelling needs the exchange: unreachable, exit 1, one line, the journal untouched."""
    from tests.cli.test_enter import free_port

    config = tmp_path / "bot.toml"
    config.write_text(f"[venue]\nposition_mode = 'one-way'\nrest_url = 'http://127.0.0.1:{free_port()}'\n")
    pid = ids_by_state(state)["OPEN"]
    before = (state / "pending_entries.jsonl").read_bytes()
    result = runner.invoke(app, ["--state-dir", str(state), "--config", str(config), "pending", "drop", pid,
                                 "--yes", "--force"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert result.stderr.endswith("; nothing was dropped (--keep-orders drops without cancelling)\n")
    assert (state / "pending_entries.jsonl").read_bytes() == before


@pytest.mark.e2e
def test_force_drop_beside_a_running_daemon_leaves_no_leg_replaced(venue: Any, tmp_path: Path) -> None:
    """With `bot run` following the entry: the drop lands first, then its legs are cancelled, so
    the daemon (which would replace a leg cancelled under a live entry) places none again."""
    import time

    from tests.cli.test_cancel_close import enter, open_algos, start_daemon, stop
    from tests.cli.test_enter import SL, TP, wait_for

    state = tmp_path / "state"
    daemon = start_daemon(venue, state, tmp_path)
    try:
        pid = enter(venue, state, "buy", "0.010", "--sl", SL, "--tp", TP)
        wait_for(lambda: len(open_algos(venue, pid)) == 2, "the daemon to protect the entry")
        code, out, err = drop(venue, state, pid)
        assert code == 0, err
        assert out.splitlines()[0] == f"{pid}: cancelled on the exchange: {pid}-sl1, {pid}-tp1"
        end = time.monotonic() + 2.0  # the daemon reacts within 0.1 s: nothing may come back meanwhile
        while time.monotonic() < end:
            assert open_algos(venue, pid) == []
            time.sleep(0.1)
        assert daemon.poll() is None
    finally:
        stop(daemon)
