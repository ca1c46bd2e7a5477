"""`bot pending drop` beside a daemon writing the same journal: what was decided is what is archived.

The daemon is a second PendingEntryStore on the same state dir. The drop's store is wrapped so
that, just before the drop's compare-and-swap, the daemon writes: the interleaving the issue
describes (a REQUESTED entry claimed and sent between the decision and the archive), made
deterministic. An entry whose record changed is not dropped and nothing of it is archived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.engine import open_entry, request_entry, step
from bot_cli.core.events import EntryAccepted, EntryClaimed, EntryPartiallyFilled
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Pending, Side
from bot_cli.ops import drop as ops
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import decode, encode


NOW = 1_764_000_000_000
SPEC = EntrySpec(
    "BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"), Decimal("63000.0"), Decimal("66000.0")
)
Daemon = Callable[[PendingEntryStore], None]


class DaemonWritesFirst(PendingEntryStore):
    """The drop's store: the first time it is about to compare and archive, the daemon writes."""

    def __init__(self, path: Path, daemon: Daemon) -> None:
        super().__init__(path)
        self._daemon: Daemon | None = daemon

    def remove_if(
        self, client_order_id: str, reason: str, *, expected: Mapping[str, Any],
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        if self._daemon is not None:
            daemon, self._daemon = self._daemon, None
            with PendingEntryStore(self.path) as other:  # another process, as far as the files go
                daemon(other)
        return super().remove_if(client_order_id, reason, expected=expected, record=record)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def save(state: Path, p: Pending) -> Pending:
    with PendingEntryStore(state) as store:
        store.save(p.pending_id, encode(p))
    return p


def requested(state: Path, n: int = 0) -> Pending:
    """An entry `bot enter` left for the daemon to send: nothing on the exchange yet."""
    p, _ = request_entry(make_pending_id(NOW, n), SPEC, NOW, 5000)
    return save(state, p)


def claim(p: Pending) -> Daemon:
    """The daemon takes the REQUESTED entry: SUBMITTING, persisted before its order is sent."""
    def write(store: PendingEntryStore) -> None:
        q, _ = step(p, EntryClaimed(p.pending_id), NOW + 10)
        assert store.update(p.pending_id, encode(q))
    return write


def journal(state: Path) -> dict[str, Pending]:
    with PendingEntryStore(state) as store:
        return {k: decode(r) for k, r in store.load_all().items()}


def archived(state: Path) -> list[str]:
    with PendingEntryStore(state) as store:
        return [line["id"] for line in store.archived()]


def test_an_entry_the_daemon_claims_before_the_archive_is_not_dropped(state: Path) -> None:
    """REQUESTED when decided (safe to drop), SUBMITTING by the time of the archive: the drop
    is refused for it, naming what it is now; the daemon's record stays, nothing is archived."""
    p = requested(state)
    with DaemonWritesFirst(state, claim(p)) as store:
        result = ops.drop_pending(store, [p.pending_id], now_ms=NOW + 20)
    assert (result.dropped, result.gone, result.changed) == ([], [], {p.pending_id: "SUBMITTING"})
    assert result.refusal() == (f"{p.pending_id} changed while deciding (now SUBMITTING): nothing was"
                                " dropped; look again with `bot pending list`")
    assert journal(state)[p.pending_id].status.value == "SUBMITTING"
    assert archived(state) == []


def test_a_fill_that_moves_the_record_refuses_even_a_forced_drop(state: Path) -> None:
    """--force drops a working entry, but only as it was decided on: a fill recorded meanwhile
    (OPEN -> PARTIALLY_FILLED, its legs on the way) leaves it to the daemon."""
    pid = make_pending_id(NOW, 1)
    p, _ = open_entry(pid, SPEC, NOW, 5000)
    p = save(state, step(p, EntryAccepted(pid, 10), NOW + 1)[0])

    def fill(store: PendingEntryStore) -> None:
        q, _ = step(p, EntryPartiallyFilled(pid, 10, Decimal("0.004"), Decimal("64000.0")), NOW + 10)
        assert store.update(pid, encode(q))

    with DaemonWritesFirst(state, fill) as store:
        result = ops.drop_pending(store, [pid], now_ms=NOW + 20, force=True)
    assert (result.dropped, result.changed) == ([], {pid: "PARTIALLY_FILLED"})
    assert journal(state)[pid].filled_qty == Decimal("0.004")
    assert archived(state) == []


def test_only_the_entry_that_changed_is_refused(state: Path) -> None:
    """Each entry is compared on its own: the unchanged one is dropped, the claimed one is not,
    and the refusal says which."""
    first, second = requested(state, 1), requested(state, 2)
    with DaemonWritesFirst(state, claim(first)) as store:
        result = ops.drop_pending(store, [first.pending_id, second.pending_id], now_ms=NOW + 20)
    assert result.dropped == [second.pending_id]
    assert result.changed == {first.pending_id: "SUBMITTING"}
    assert f": {first.pending_id} not dropped; look again" in (result.refusal() or "")
    assert list(journal(state)) == [first.pending_id]
    assert archived(state) == [second.pending_id]


def test_an_entry_the_daemon_archived_meanwhile_is_gone_not_refused(state: Path) -> None:
    """Archived by the daemon (say, the request expired) before the drop's archive: it has left
    the journal as the operator wanted; reported gone, archived once, no refusal."""
    p = requested(state)

    def expire(store: PendingEntryStore) -> None:
        store.remove(p.pending_id, "not placed")

    with DaemonWritesFirst(state, expire) as store:
        result = ops.drop_pending(store, [p.pending_id], now_ms=NOW + 20)
    assert (result.dropped, result.gone, result.changed) == ([], [p.pending_id], {})
    assert result.refusal() is None
    assert archived(state) == [p.pending_id]


def test_without_a_writer_in_between_the_decided_record_is_archived(state: Path) -> None:
    """The wrapper's daemon writing nothing: the drop archives the entry as the lifecycle dropped it."""
    p = requested(state)
    with DaemonWritesFirst(state, lambda _store: None) as store:
        result = ops.drop_pending(store, [p.pending_id], now_ms=NOW + 20)
    assert (result.dropped, result.changed) == ([p.pending_id], {})
    assert journal(state) == {}
    with PendingEntryStore(state) as store:
        assert store.archived()[-1]["rec"]["status"] == "DROPPED"


def test_the_plan_is_what_counts_not_a_later_read(state: Path) -> None:
    """A drop decided from a plan read earlier (before the operator's answer) archives only that
    record: a claim after the plan was read, even long before the archive, is refused."""
    p = requested(state)
    with PendingEntryStore(state) as store:
        plan = ops.plan_drop(store, [p.pending_id])
        with PendingEntryStore(state) as daemon:
            claim(p)(daemon)
        result = ops.drop_planned(store, plan, now_ms=NOW + 20)
    assert result.changed == {p.pending_id: "SUBMITTING"}
    assert archived(state) == []
