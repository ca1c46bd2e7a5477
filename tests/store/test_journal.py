"""The pending-entry journal: durable saves, archived removes, repair of bad files, sharing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot_cli.state_store import (
    InvalidRecord,
    PendingEntryStore,
    SchemaVersionError,
    StateDirError,
    UnknownEntry,
)

from .conftest import NOW_MS, OpenStore
from .writer_proc import Acks, context_for


WRITER = Path(__file__).with_name("writer_proc.py")


def journal_lines(store: PendingEntryStore) -> list[bytes]:
    return store.journal_path.read_bytes().splitlines()


def put_line(entry_id: str, rec: dict[str, Any], v: int = 1) -> bytes:
    line = {"v": v, "op": "put", "id": entry_id, "rec": rec}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the fd of every os.fsync from now on (still syncing)."""
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return fsyncs


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every state file's bytes; the empty journal.lock, created on first use, is not state."""
    files = (p for p in sorted(directory.iterdir()) if p.is_file() and p.name != "journal.lock")
    return {p.name: p.read_bytes() for p in files}


# -- save, load, remove ----------------------------------------------------------------------


def test_saved_record_is_loaded_by_a_fresh_instance(open_store: OpenStore) -> None:
    """A saved record is read back, equal, by another instance."""
    open_store().save("e1", {"symbol": "BTCUSDT", "qty": "0.01", "sl": {"trigger": "60000"}})

    loaded = open_store().load_all()

    assert loaded == {"e1": {"symbol": "BTCUSDT", "qty": "0.01", "sl": {"trigger": "60000"}}}


def test_latest_save_of_an_id_wins(open_store: OpenStore) -> None:
    """Saving an id again replaces its record."""
    store = open_store()
    store.save("e1", {"state": "new"})
    store.save("e1", {"state": "filled"})

    assert open_store().load_all() == {"e1": {"state": "filled"}}


def test_save_many_stores_all_with_one_fsync(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """save_many writes every record with a single fsync."""
    store = open_store()
    store.save("warm-up", {})  # creates the files, whose directory fsyncs are not counted
    fsyncs = count_fsyncs(monkeypatch)

    store.save_many([("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])

    assert len(fsyncs) == 1
    assert open_store().load_all() == {"warm-up": {}, "a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}}


def test_save_is_one_fsync(open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """save() costs one fsync once the files exist."""
    store = open_store()
    store.save("warm-up", {})
    fsyncs = count_fsyncs(monkeypatch)

    store.save("e1", {"n": 1})

    assert len(fsyncs) == 1


def test_remove_archives_the_last_saved_record(open_store: OpenStore) -> None:
    """remove() archives the last saved record with reason and time, and drops it from the journal."""
    store = open_store()
    store.save("e1", {"state": "new"})
    store.save("e1", {"state": "protected"})
    store.save("e2", {"state": "new"})

    store.remove("e1", "protected")

    fresh = open_store()
    assert fresh.load_all() == {"e2": {"state": "new"}}
    assert fresh.archived() == [
        {"v": 1, "id": "e1", "reason": "protected", "at_ms": NOW_MS, "rec": {"state": "protected"}}
    ]


def test_a_remove_that_died_between_the_archive_and_the_journal_is_archived_once(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive line is durable first; a crash before the journal's del line leaves the entry
    live. The next remove finishes the job: the del line, and no second archive line."""
    store = open_store()
    store.save("e1", {"state": "protected"})
    store.save("e2", {"state": "new"})

    def crash(*_: object) -> None:
        raise SystemExit("killed between the two appends")

    monkeypatch.setattr(store, "_append_journal", crash)
    with pytest.raises(SystemExit):
        store.remove("e1", "protected")
    monkeypatch.undo()
    restarted = open_store()
    assert "e1" in restarted.load_all()  # still live: the del line never landed
    restarted.remove("e2", "canceled")  # another entry archived meanwhile

    restarted.remove("e1", "protected")

    fresh = open_store()
    assert fresh.load_all() == {}
    assert [a["id"] for a in fresh.archived()] == ["e1", "e2"]


def test_remove_archives_the_given_record(open_store: OpenStore) -> None:
    """remove(record=...) archives that record instead of the saved one."""
    store = open_store()
    store.save("e1", {"state": "new"})

    store.remove("e1", "cancelled", record={"state": "cancelled", "history": ["new", "cancel"]})

    assert [a["rec"] for a in open_store().archived()] == [
        {"state": "cancelled", "history": ["new", "cancel"]}
    ]


def test_remove_of_unknown_id_raises_and_writes_nothing(
    open_store: OpenStore, state_dir: Path
) -> None:
    """remove() of an id not in the journal raises UnknownEntry and leaves every file as it was."""
    store = open_store()
    store.save("e1", {})
    before = snapshot(state_dir)

    with pytest.raises(UnknownEntry) as caught:
        store.remove("nope", "cancelled")

    assert caught.value.entry_id == "nope"
    assert "nope" in str(caught.value)
    assert str(store.journal_path) in str(caught.value)
    assert snapshot(state_dir) == before


def test_removed_id_cannot_be_removed_twice(open_store: OpenStore) -> None:
    """A second remove() of the same id raises UnknownEntry; the archive has one line."""
    store = open_store()
    store.save("e1", {})
    store.remove("e1", "filled")

    with pytest.raises(UnknownEntry):
        open_store().remove("e1", "filled")
    assert len(open_store().archived()) == 1


@pytest.mark.parametrize(
    ("entry_id", "record"),
    [
        pytest.param("e1", {"price": float("nan")}, id="NaN is not JSON"),
        pytest.param("e1", {"when": object()}, id="arbitrary object"),
        pytest.param("", {}, id="empty id"),
        pytest.param("e1", ["not", "a", "mapping"], id="record is not a mapping"),
    ],
)
def test_unstorable_record_raises_and_writes_nothing(
    open_store: OpenStore, state_dir: Path, entry_id: str, record: Any
) -> None:
    """A record that cannot be stored as JSON raises InvalidRecord before anything is written."""
    store = open_store()
    store.save("ok", {})
    before = snapshot(state_dir)

    with pytest.raises(InvalidRecord):
        store.save(entry_id, record)

    assert snapshot(state_dir) == before


def test_returned_records_belong_to_the_caller(open_store: OpenStore) -> None:
    """Mutating a loaded record changes neither the store nor later loads."""
    store = open_store()
    store.save("e1", {"history": ["new"]})
    store.load_all()["e1"]["history"].append("mutated")

    assert store.load_all() == {"e1": {"history": ["new"]}}


# -- repair of bad files -----------------------------------------------------------------


def test_torn_last_line_is_cut_off_with_a_warning(open_store: OpenStore) -> None:
    """A crash mid-append leaves a torn last line: it is dropped, the file truncated, a warning said."""
    first = open_store()
    first.save("e1", {"n": 1})
    first.save("e2", {"n": 2})
    intact = first.journal_path.read_bytes()
    with first.journal_path.open("ab") as f:
        f.write(b'{"v":1,"op":"put","id":"e3","rec":{"n"')
    seen: list[str] = []

    fresh = open_store(on_warning=seen.append)
    loaded = fresh.load_all()

    assert loaded == {"e1": {"n": 1}, "e2": {"n": 2}}
    assert fresh.journal_path.read_bytes() == intact
    assert len(seen) == 1
    assert "incomplete last line" in seen[0]
    assert fresh.warnings == seen


def test_garbled_complete_last_line_is_dropped(open_store: OpenStore) -> None:
    """An unparseable last line with its newline counts as torn: dropped, not quarantined."""
    first = open_store()
    first.save("e1", {"n": 1})
    intact = first.journal_path.read_bytes()
    with first.journal_path.open("ab") as f:
        f.write(b'{"v":1,"op":"pu\x00\x00\n')

    fresh = open_store()

    assert fresh.load_all() == {"e1": {"n": 1}}
    assert fresh.journal_path.read_bytes() == intact
    assert not fresh.quarantine_path.exists()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param(b"{not json", "not valid JSON", id="bad JSON"),
        pytest.param(b"[1, 2]", "not a JSON object", id="JSON but not an object"),
        pytest.param(b'{"op":"put","id":"x","rec":{}}', "no schema version", id="no version"),
        pytest.param(b'{"v":1,"op":"put","rec":{}}', "no entry id", id="no id"),
        pytest.param(b'{"v":1,"op":"put","id":"x"}', "neither a put", id="put without record"),
        pytest.param(b'{"v":1,"op":"del","id":"x"}', "neither a put", id="del without reason"),
        pytest.param(b'{"v":1,"op":"zap","id":"x"}', "neither a put", id="unknown op"),
        pytest.param(b"\xff\xfe garbage", "not valid JSON", id="not UTF-8"),
    ],
)
def test_unreadable_middle_line_is_quarantined(open_store: OpenStore, bad: bytes, why: str) -> None:
    """An unreadable line before the last goes to quarantine with its line number; others are kept."""
    first = open_store()
    first.journal_path.write_bytes(
        put_line("e1", {"n": 1}) + bad + b"\n" + put_line("e2", {"n": 2})
    )

    fresh = open_store()
    loaded = fresh.load_all()

    assert loaded == {"e1": {"n": 1}, "e2": {"n": 2}}
    assert len(fresh.warnings) == 1
    assert str(fresh.journal_path) in fresh.warnings[0]
    assert "line 2" in fresh.warnings[0]
    assert why in fresh.warnings[0]
    [quarantined] = [json.loads(x) for x in fresh.quarantine_path.read_bytes().splitlines()]
    assert quarantined["file"] == "pending_entries.jsonl"
    assert quarantined["line"] == 2
    assert quarantined["text"].encode("utf-8", "surrogateescape") == bad
    assert journal_lines(fresh) == [
        put_line("e1", {"n": 1}).strip(),
        put_line("e2", {"n": 2}).strip(),
    ]


def test_quarantined_line_is_not_reported_again(open_store: OpenStore) -> None:
    """After quarantine the journal is rewritten, so the next load has no warning."""
    store = open_store()
    store.journal_path.write_bytes(b"garbage\n" + put_line("e1", {}))
    open_store().load_all()

    again = open_store()

    assert again.load_all() == {"e1": {}}
    assert again.warnings == []
    assert len(again.quarantine_path.read_bytes().splitlines()) == 1


def test_unknown_schema_version_raises_and_changes_nothing(
    open_store: OpenStore, state_dir: Path
) -> None:
    """A line from a newer bot_cli raises SchemaVersionError naming file and line; nothing is touched."""
    store = open_store()
    store.journal_path.write_bytes(
        put_line("e1", {}) + b"garbage\n" + put_line("e2", {}, v=2) + b'{"v":1,"op":"pu'
    )
    before = snapshot(state_dir)

    with pytest.raises(SchemaVersionError) as caught:
        store.load_all()

    assert (caught.value.line, caught.value.version) == (3, 2)
    assert str(store.journal_path) in str(caught.value)
    assert "line 3" in str(caught.value)
    assert snapshot(state_dir) == before
    assert store.warnings == []


def test_unknown_schema_version_blocks_writes_too(open_store: OpenStore, state_dir: Path) -> None:
    """A save into a journal from a newer bot_cli raises and appends nothing."""
    store = open_store()
    store.journal_path.write_bytes(put_line("e1", {}, v=2))
    before = snapshot(state_dir)

    with pytest.raises(SchemaVersionError):
        store.save("e2", {})

    assert snapshot(state_dir) == before


def test_unknown_schema_version_in_archive_raises(open_store: OpenStore) -> None:
    """archived() raises SchemaVersionError for an archive line from a newer bot_cli."""
    store = open_store()
    store.archive_path.write_bytes(b'{"v":1,"id":"a","reason":"x"}\n{"v":7,"id":"b"}\n')

    with pytest.raises(SchemaVersionError) as caught:
        store.archived()

    assert caught.value.line == 2


def test_torn_archive_tail_is_cut_before_the_next_append(open_store: OpenStore) -> None:
    """A torn archive line is cut before remove() appends, so the new line stays readable."""
    store = open_store()
    store.save("e1", {"n": 1})
    store.archive_path.write_bytes(b'{"v":1,"id":"old","reason":"x","rec":{}}\n{"v":1,"id":"to')

    store.remove("e1", "filled")

    assert [a["id"] for a in open_store().archived()] == ["old", "e1"]
    assert any("incomplete last line" in w for w in store.warnings)


# -- the state directory -----------------------------------------------------------------


def test_missing_dir_is_created_0700_and_files_0600(open_store: OpenStore, state_dir: Path) -> None:
    """The store creates its directory 0700 and every file 0600."""
    store = open_store()
    store.save("e1", {})
    store.save("e2", {})
    store.remove("e1", "cancelled")
    store.compact()
    with store.journal_path.open("ab") as f:
        f.write(b"garbage\n" + put_line("e3", {}))
    open_store().load_all()  # quarantines, so that file exists too

    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state_dir.iterdir()}
    assert set(modes) == {
        "pending_entries.jsonl",
        "archive.jsonl",
        "journal.lock",
        "pending_entries.quarantine.jsonl",
    }
    assert set(modes.values()) == {0o600}


def test_state_path_that_is_a_file_raises(tmp_path: Path) -> None:
    """A state path that is a regular file raises StateDirError naming it; the file is untouched."""
    path = tmp_path / "state"
    path.write_bytes(b"not a dir")

    with pytest.raises(StateDirError) as caught:
        PendingEntryStore(path)

    assert str(path) in str(caught.value)
    assert "not a directory" in str(caught.value)
    assert path.read_bytes() == b"not a dir"


def test_state_dir_under_a_file_raises(tmp_path: Path) -> None:
    """A state dir that cannot be created raises StateDirError."""
    (tmp_path / "file").write_bytes(b"")

    with pytest.raises(StateDirError) as caught:
        PendingEntryStore(tmp_path / "file" / "state")

    assert "cannot be created" in str(caught.value)


def test_unwritable_state_dir_raises(state_dir: Path) -> None:
    """A state dir we may not write to raises StateDirError telling to fix permissions."""
    state_dir.mkdir(mode=0o500)
    if os.access(state_dir, os.W_OK):
        pytest.skip("running as a user whom chmod 0500 does not stop (root)")

    with pytest.raises(StateDirError) as caught:
        PendingEntryStore(state_dir)

    assert "not writable" in str(caught.value)
    assert list(state_dir.iterdir()) == []


# -- several instances and processes ---------------------------------------------------------


def test_poll_reports_what_another_instance_wrote(open_store: OpenStore) -> None:
    """poll() returns the net changes by another instance, not the poller's own writes."""
    writer, watcher = open_store(), open_store()
    writer.save("e1", {"n": 1})
    assert watcher.load_all() == {"e1": {"n": 1}}
    watcher.save("own", {"n": 0})

    writer.save("e2", {"n": 2})
    writer.save("e1", {"n": 11})
    writer.save("e3", {"n": 3})
    writer.remove("e3", "cancelled")  # came and went between two polls: not a change
    writer.save("e4", {"n": 4})
    changes = watcher.poll()

    assert dict(changes) == {"e1": {"n": 11}, "e2": {"n": 2}, "e4": {"n": 4}}
    assert watcher.poll() == []
    writer.remove("e2", "filled")
    assert watcher.poll() == [("e2", None)]


def test_first_poll_reports_every_live_record(open_store: OpenStore) -> None:
    """An instance that never read reports every live record on its first poll()."""
    open_store().save_many([("a", {}), ("b", {})])

    assert sorted(open_store().poll()) == [("a", {}), ("b", {})]


def test_changes_seen_during_a_write_are_still_polled(open_store: OpenStore) -> None:
    """Changes read while catching up for a save are reported by the next poll()."""
    writer, watcher = open_store(), open_store()
    watcher.load_all()
    writer.save("theirs", {"n": 1})

    watcher.save("mine", {"n": 2})

    assert watcher.poll() == [("theirs", {"n": 1})]


def test_poll_after_another_instance_compacted(open_store: OpenStore) -> None:
    """When another instance compacts (new inode), poll() still reports exactly the differences."""
    writer, watcher = open_store(), open_store()
    writer.save_many([("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])
    watcher.load_all()

    writer.remove("a", "filled")
    writer.save("b", {"n": 22})
    writer.compact()
    writer.save("d", {"n": 4})
    changes = watcher.poll()

    assert dict(changes) == {"a": None, "b": {"n": 22}, "d": {"n": 4}}
    assert watcher.load_all() == {"b": {"n": 22}, "c": {"n": 3}, "d": {"n": 4}}


def test_write_after_another_instance_compacted(open_store: OpenStore) -> None:
    """A save after someone else's compaction lands in the new file and nothing is lost."""
    first, second = open_store(), open_store()
    first.save("a", {})
    second.save("b", {})
    first.compact()

    second.save("c", {})

    assert open_store().load_all() == {"a": {}, "b": {}, "c": {}}


def test_journal_compacts_itself_when_long(open_store: OpenStore) -> None:
    """Past 1000 lines (and 4 x live records) the journal is rewritten with the live puts only."""
    store = open_store()

    store.save_many([("e1", {"n": n}) for n in range(1001)])

    assert journal_lines(store) == [put_line("e1", {"n": 1000}).strip()]
    assert open_store().load_all() == {"e1": {"n": 1000}}


def test_two_writer_processes_lose_nothing(state_dir: Path, open_store: OpenStore) -> None:
    """Two processes saving, removing and compacting at once: every acknowledged action is kept."""
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                "write",
                str(state_dir),
                "--prefix",
                prefix,
                "--count",
                "150",
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed, prefix in enumerate(["a-", "b-"])
    ]
    acks = Acks()
    for proc in writers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        acks.add(out.splitlines(keepends=True))

    store = open_store()
    live, archived = store.load_all(), {a["id"] for a in store.archived()}

    assert len(acks.saved) == 300
    assert len(acks.removed) == 74
    assert live == {i: context_for(i, n) for i, n in acks.saved.items() if i not in acks.removed}
    assert acks.removed <= archived
    assert store.warnings == []
