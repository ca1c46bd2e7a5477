"""`bot pending list` and `bot pending drop` through the real command line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.core.engine import open_entry, step
from bot_cli.core.events import EntryAccepted, EntryPartiallyFilled
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


runner = CliRunner()
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"), Decimal("63000.0"), Decimal("66000.0"))


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
    result = runner.invoke(app, ["--state-dir", str(state), *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_every_column(state: Path) -> None:
    """The table names id, symbol, side, quantities, state, entry client id, SL, TP and age."""
    code, out, _ = bot(state, "pending", "list")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:6] == ["id", "symbol", "side", "qty", "filled", "state"]
    assert "PARTIALLY_FILLED" in out and "OPEN" in out and "63000.0" in out and "66000.0" in out


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
    assert code == 0 and json.loads(out) == {"pending": []}


def test_drop_unknown_id_fails_and_changes_nothing(state: Path) -> None:
    """An unknown id is exit 1 with a clear message; the journal is untouched."""
    before = (state / "pending_entries.jsonl").read_bytes()
    code, _, err = bot(state, "pending", "drop", "bcnope000000", "--yes", "--force")
    assert code == 1
    assert "no pending entry bcnope000000" in err and "bot pending list" in err
    assert (state / "pending_entries.jsonl").read_bytes() == before


def test_drop_moves_the_record_to_the_archive(state: Path) -> None:
    """--yes --force drops without asking; the record is archived with reason 'dropped'."""
    pid = json.loads(bot(state, "pending", "list", "--json")[1])["pending"][0]["id"]
    code, out, _ = bot(state, "pending", "drop", pid, "--yes", "--force")
    assert code == 0 and f"dropped 1: {pid}" in out
    with PendingEntryStore(state) as store:
        assert pid not in store.load_all()
        archived = [a for a in store.archived() if a["id"] == pid]
    assert archived[-1]["reason"] == "dropped"
    assert archived[-1]["rec"]["pending_id"] == pid


def test_drop_asks_first(state: Path) -> None:
    """Without --yes the operator is asked; answering no changes nothing."""
    pid = json.loads(bot(state, "pending", "list", "--json")[1])["pending"][0]["id"]
    code, out, _ = bot(state, "pending", "drop", pid, "--force", input="n\n")
    assert code == 1 and "Drop 1 pending entry" in out
    with PendingEntryStore(state) as store:
        assert pid in store.load_all()


def test_a_bad_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A config error surfaces as one sentence, no traceback."""
    cfg = tmp_path / "bot.toml"
    cfg.write_text("[venue]\nkind = 'nope'\n")
    result = runner.invoke(app, ["--config", str(cfg), "recover", "--dry-run"])
    assert result.exit_code == 1
    assert "venue.kind = 'nope'" in result.stderr and "Traceback" not in result.stderr
