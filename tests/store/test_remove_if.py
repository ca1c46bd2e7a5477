"""`PendingEntryStore.remove_if`: archive a record only while it is still the one the caller read.

Two instances on one state dir stand for two processes: the caller (an operator's drop) and
another writer (the daemon). What the other one wrote in between is read under the same lock
hold as the comparison, so a record changed or archived meanwhile is never archived.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot_cli.state_store import InvalidRecord

from .conftest import OpenStore


REQUESTED = {"status": "REQUESTED", "quantity": "0.010", "history": [[1, "requested"]]}
SUBMITTING = {**REQUESTED, "status": "SUBMITTING"}


def files(directory: Path) -> dict[str, bytes]:
    """Every state file's bytes (the lock file is not state)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "journal.lock"}


def test_an_unchanged_record_is_archived(open_store: OpenStore) -> None:
    """The record is still the one read: archived with the record given, gone from the journal."""
    store = open_store()
    store.save("a", REQUESTED)
    read = store.load_all()["a"]
    dropped = {**read, "status": "DROPPED"}
    assert store.remove_if("a", "dropped", expected=read, record=dropped) is True
    assert store.load_all() == {}
    assert [(x["id"], x["reason"], x["rec"]) for x in store.archived()] == [("a", "dropped", dropped)]


def test_without_a_record_the_live_one_is_archived(open_store: OpenStore) -> None:
    """As `remove`: no record given, the journal's own is archived (an unreadable one, as it is)."""
    store = open_store()
    store.save("a", REQUESTED)
    assert store.remove_if("a", "dropped", expected=REQUESTED) is True
    assert store.archived()[-1]["rec"] == REQUESTED


def test_a_record_another_process_changed_is_not_archived(open_store: OpenStore, state_dir: Path) -> None:
    """The daemon claimed the entry after the caller read it: False, and not a byte written."""
    caller, daemon = open_store(), open_store()
    caller.save("a", REQUESTED)
    read = caller.load_all()["a"]
    daemon.update("a", SUBMITTING)
    before = files(state_dir)
    assert caller.remove_if("a", "dropped", expected=read, record={**read, "status": "DROPPED"}) is False
    assert files(state_dir) == before
    assert caller.load_all() == {"a": SUBMITTING}


def test_a_record_another_process_archived_is_not_archived_again(open_store: OpenStore, state_dir: Path) -> None:
    """Gone from the journal: False (not UnknownEntry), and the archive keeps its one line."""
    caller, daemon = open_store(), open_store()
    caller.save("a", REQUESTED)
    read = caller.load_all()["a"]
    daemon.remove("a", "canceled")
    before = files(state_dir)
    assert caller.remove_if("a", "dropped", expected=read) is False
    assert files(state_dir) == before
    assert [x["reason"] for x in caller.archived()] == ["canceled"]


def test_records_are_compared_as_data_not_as_bytes(open_store: OpenStore) -> None:
    """The same record with its keys in another order is the same record."""
    store = open_store()
    store.save("a", REQUESTED)
    reordered: dict[str, Any] = dict(reversed(list(REQUESTED.items())))
    assert store.remove_if("a", "dropped", expected=reordered) is True


def test_a_change_rewritten_back_counts_as_unchanged(open_store: OpenStore) -> None:
    """Only the content counts: a record rewritten to the very same value is still the one read."""
    caller, other = open_store(), open_store()
    caller.save("a", REQUESTED)
    read = caller.load_all()["a"]
    other.update("a", dict(REQUESTED))
    assert caller.remove_if("a", "dropped", expected=read) is True


def test_an_empty_reason_is_refused_and_writes_nothing(open_store: OpenStore, state_dir: Path) -> None:
    """The archive needs a reason, as for `remove`."""
    store = open_store()
    store.save("a", REQUESTED)
    before = files(state_dir)
    with pytest.raises(InvalidRecord, match="non-empty reason"):
        store.remove_if("a", "", expected=REQUESTED)
    assert files(state_dir) == before
