"""`bot history`: the archive newest first (filtered by --since), and one entry's whole story
from the journal or the archive: its notes with their times, its legs and what took its share."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.cli.history import parse_since
from bot_cli.core.engine import open_entry, step
from bot_cli.core.events import EntryAccepted, EntryCanceled, EntryFilled, ProtectionReport
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import AlgoStatus, EntrySpec, OrderType, Pending, Side
from bot_cli.ops.journal import iso
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


runner = CliRunner()
DAY = 86_400_000
T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"),
                 Decimal("63000.0"), Decimal("66000.0"))


def bot(state: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--state-dir", str(state), "history", *args])
    return result.exit_code, result.stdout, result.stderr


def canceled(at: int, n: int) -> Pending:
    p, _ = open_entry(make_pending_id(at, n), SPEC, at, 5000)
    p, _ = step(p, EntryAccepted(p.pending_id, n), at + 1)
    p, _ = step(p, EntryCanceled(p.pending_id, n), at + 2)
    return p


def protected(at: int, n: int) -> Pending:
    p, _ = open_entry(make_pending_id(at, n), SPEC, at, 5000)
    p, _ = step(p, EntryFilled(p.pending_id, n, Decimal("0.010"), Decimal("64000.0")), at + 1)
    for leg in p.protections:
        p, _ = step(p, ProtectionReport(p.pending_id, leg.client_id, AlgoStatus.NEW), at + 2)
    return p


class Clock:
    """The archive's clock: each archive line is written at the time a test sets."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """Three entries archived a day apart (oldest first), one protected entry still pending."""
    path, clock = tmp_path / "state", Clock()
    with PendingEntryStore(path, clock_ms=clock) as store:
        for day in range(3):
            clock.now = T0 + day * DAY
            p = canceled(clock.now - 10, day)
            store.save(p.pending_id, encode(p))
            store.remove(p.pending_id, "canceled with no fill", record=encode(p))
        live = protected(T0, 9)
        store.save(live.pending_id, encode(live))
    return path


def archived_ids(state: Path) -> list[str]:
    with PendingEntryStore(state) as store:
        return [a["id"] for a in store.archived()]


def test_the_archive_is_listed_newest_first(state: Path) -> None:
    """Without ID: every archived entry, newest first, with its final state, reason and time."""
    code, out, _ = bot(state)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "symbol", "side", "qty", "filled", "state", "reason", "archived"]
    assert [line.split()[0] for line in lines[1:]] == archived_ids(state)[::-1]
    assert "CANCELED" in lines[1]
    assert "canceled with no fill" in lines[1]
    assert lines[1].endswith(iso(T0 + 2 * DAY))
    assert lines[3].endswith("2025-11-24T16:00:00Z")


def test_since_keeps_what_was_archived_since(state: Path) -> None:
    """--since an ISO time, as JSON: only the last two days' lines."""
    code, out, _ = bot(state, "--since", "2025-11-25T00:00Z", "--json")
    assert code == 0
    rows = json.loads(out)["archive"]
    assert [r["id"] for r in rows] == archived_ids(state)[:0:-1]
    assert rows[0] == {"id": rows[0]["id"], "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.010",
                       "filled_quantity": "0", "state": "CANCELED", "reason": "canceled with no fill",
                       "archived_at": T0 + 2 * DAY}


def test_an_archived_entry_shows_every_note_with_its_time(state: Path) -> None:
    """With ID: from the archive, every note the lifecycle kept, with the millisecond."""
    pid = archived_ids(state)[0]
    code, out, _ = bot(state, pid, "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["where"], doc["state"], doc["archive_reason"]) == ("archive", "CANCELED", "canceled with no fill")
    texts = [n["text"] for n in doc["history"]]
    assert texts[0] == "entry requested"
    assert "SUBMITTING -> OPEN on EntryAccepted" in texts
    assert doc["history"][-1]["time"] == "2025-11-24T15:59:59.992Z"
    code, out, _ = bot(state, pid)
    assert out.splitlines()[0] == (f"entry {pid}: BTCUSDT BUY 0.010 LIMIT at 64000.0, stop-loss 63000.0,"
                                   " take-profit 66000.0 (BOTH)")
    assert "state: CANCELED - canceled with no fill; archived 2025-11-24T16:00:00Z\n" in out


def test_a_pending_entry_shows_its_legs_and_share(state: Path) -> None:
    """With the id of a protected entry still in the journal: its live legs and its share."""
    with PendingEntryStore(state) as store:
        (pid,) = store.load_all()
    code, out, _ = bot(state, pid, "--json")
    doc = json.loads(out)
    assert (code, doc["where"], doc["state"], doc["share"]) == (0, "journal", "PROTECTED", "0.010")
    assert [(x["leg"], x["quantity"], x["trigger"], x["state"]) for x in doc["legs"]] == [
        ("sl1", "0.010", "63000.0", "LIVE"), ("tp1", "0.010", "66000.0", "LIVE")]
    code, out, _ = bot(state, pid)
    assert f"{pid}-sl1" in out
    assert "63000.0" in out
    assert "in the journal" in out


def test_since_filters_an_entrys_notes(state: Path) -> None:
    """--since with ID keeps the notes from then on."""
    pid = archived_ids(state)[0]  # its notes are from T0 - 10 ms to T0 - 8 ms
    all_notes = json.loads(bot(state, pid, "--json")[1])["history"]
    assert json.loads(bot(state, pid, "--since", "2025-11-24T15:59Z", "--json")[1])["history"] == all_notes
    assert json.loads(bot(state, pid, "--since", "2025-11-24T16:00Z", "--json")[1])["history"] == []


@pytest.mark.parametrize("args", [["bc0000000000nope"], ["--since", "yesterday"], ["--since", "5x"]])
def test_errors_are_one_line(state: Path, args: list[str]) -> None:
    """An unknown id, a --since that is neither a duration nor a time: exit 1, one line."""
    code, out, err = bot(state, *args)
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_an_empty_state_dir_has_an_empty_archive(tmp_path: Path) -> None:
    """No state dir yet: nothing archived, and nothing is created."""
    code, out, _ = bot(tmp_path / "none", "--json")
    assert (code, json.loads(out)) == (0, {"archive": []})
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(("text", "ago_ms"), [
    ("90s", 90_000), ("30m", 1_800_000), ("2h", 7_200_000), ("1d", DAY), ("1w", 7 * DAY), ("1h30m", 5_400_000),
])
def test_durations_count_back_from_now(text: str, ago_ms: int) -> None:
    assert parse_since(text, T0) == T0 - ago_ms


@pytest.mark.parametrize(("text", "at"), [
    ("2025-11-24", T0 - 16 * 3_600_000), ("2025-11-24T16:00Z", T0), ("2025-11-24T17:00+01:00", T0),
    ("2025-11-24T16:00:00", T0),
])
def test_iso_times_are_utc_unless_they_say_otherwise(text: str, at: int) -> None:
    assert parse_since(text, 0) == at
