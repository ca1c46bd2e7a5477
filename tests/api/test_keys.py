"""The idempotency-key log: durable before the entry, shared between processes, crash-proof."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.api.keys import LOG_NAME, Keys, key_problem
from bot_cli.core.model import EntrySpec, OrderType, PendingId, Side, Status
from bot_cli.errors import BotError
from bot_cli.state_store import PendingEntryStore
from tests.inbox import journal, keys_written


SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, None,
                 Decimal(90000), Decimal(99000))  # fmt: skip
A_LINE = b'{"key": "a", "id": "bc00000000000001", "at": 1}\n'


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_a_claim_writes_the_key_then_the_entry_and_a_second_claim_finds_it(tmp_path: Path) -> None:
    with PendingEntryStore(tmp_path) as store:
        keys = Keys(tmp_path)
        first = keys.claim(store, "k", SPEC, now_ms(), 5000)
        second = keys.claim(store, "k", SPEC, now_ms(), 5000)

    assert first.new
    assert not second.new
    assert second.pending.pending_id == first.pending.pending_id
    assert first.pending.status is Status.REQUESTED
    written = [(r["key"], r["id"]) for r in keys_written(tmp_path)]
    assert written == [("k", first.pending.pending_id)]
    assert list(journal(tmp_path)) == [first.pending.pending_id]


def test_another_process_sees_a_key_claimed_after_it_first_looked(tmp_path: Path) -> None:
    """Each process reads only what was appended since it last looked."""
    mine, theirs = Keys(tmp_path), Keys(tmp_path)
    assert not theirs.used("k")
    with PendingEntryStore(tmp_path) as store:
        pid = mine.claim(store, "k", SPEC, now_ms(), 5000).pending.pending_id

        assert theirs.used("k")
        found = theirs.lookup(store, "k")
        assert found is not None
        assert found.pending_id == pid
        assert not theirs.claim(store, "k", SPEC, now_ms(), 5000).new


def test_many_threads_claiming_one_key_save_one_entry(tmp_path: Path) -> None:
    claims = []
    with PendingEntryStore(tmp_path) as store:
        keys = [Keys(tmp_path) for _ in range(8)]  # as if eight processes
        def claim(k: Keys) -> None:
            claims.append(k.claim(store, "k", SPEC, now_ms(), 5000))

        threads = [threading.Thread(target=claim, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert sorted(c.new for c in claims) == [False] * 7 + [True]
    assert len({c.pending.pending_id for c in claims}) == 1
    assert len(journal(tmp_path)) == 1


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    """A crash mid-append: that key was never claimed (its entry was never saved)."""
    (tmp_path / LOG_NAME).write_bytes(A_LINE + b'{"key": "b", "id": "bc0')

    keys = Keys(tmp_path)
    with PendingEntryStore(tmp_path) as store:
        assert keys.used("a")
        assert not keys.used("b")
        claimed = keys.claim(store, "b", SPEC, now_ms(), 5000)

    assert claimed.new
    assert [r["key"] for r in keys_written(tmp_path)] == ["a", "b"]


def test_a_key_whose_entry_was_never_saved_gets_it_under_the_same_id(tmp_path: Path) -> None:
    left = Keys(tmp_path)
    left._append("k", PendingId("bc00000000000001"), 1)  # the crash came before the save

    with PendingEntryStore(tmp_path) as store:
        claimed = Keys(tmp_path).claim(store, "k", SPEC, now_ms(), 5000)

    assert claimed.new
    assert claimed.pending.pending_id == "bc00000000000001"
    assert len(keys_written(tmp_path)) == 1


def test_an_unreadable_line_stops_every_claim(tmp_path: Path) -> None:
    """A key lost to a damaged line could send an entry twice: refuse, naming the line."""
    (tmp_path / LOG_NAME).write_bytes(A_LINE + b"not json\n")

    unreadable = pytest.raises(BotError, match=r"keys.jsonl line 2 is unreadable")
    with PendingEntryStore(tmp_path) as store, unreadable:
        Keys(tmp_path).claim(store, "b", SPEC, now_ms(), 5000)
    assert journal(tmp_path) == {}


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param("tv-{{ticker}}-{{time}}", None, id="a template's key"),
        pytest.param("é-ü-日本", None, id="unicode"),
        pytest.param("", "key must be a non-empty string", id="empty"),
        pytest.param(7, "key must be a non-empty string", id="not a string"),
        pytest.param("x" * 129, "key is 129 characters long; at most 128", id="too long"),
        pytest.param("a\tb", "key must be printable characters only", id="a tab"),
    ],
)
def test_what_a_key_may_be(key: object, problem: str | None) -> None:
    assert key_problem(key) == problem
