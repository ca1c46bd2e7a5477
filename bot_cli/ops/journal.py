"""The journal and the archive as an operator sees them: entries, unreadable records, lookups.

Reads only: nothing here writes the state dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from bot_cli.state_store import JOURNAL_NAME, PendingEntryStore
from bot_cli.store.listing import listing


if TYPE_CHECKING:
    from bot_cli.core.model import Pending, PendingId

UNREADABLE = "UNREADABLE"  # the state shown for a journal record the bot cannot decode


# -- the journal as the operator sees it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A journal record the bot cannot decode: the daemon skips it and follows none of its orders."""

    key: str
    reason: str

    @property
    def advice(self) -> str:
        return f"inspect it in {JOURNAL_NAME}, then `bot pending drop --force {self.key}`"


def decode_record(key: str, record: dict[str, Any]) -> Pending | Unreadable:
    """The entry a record holds, or why the bot cannot read it (what `bot run` skips)."""
    from bot_cli.store.codec import CorruptRecord, decode

    if "rv" not in record:
        return Unreadable(key, "no record version 'rv': a plain context, not an entry record bot_cli wrote")
    try:
        return decode(record)
    except (CorruptRecord, ArithmeticError, RecursionError) as err:  # codec lets a few slip out
        return Unreadable(key, str(err) or type(err).__name__)


def read_journal(store: PendingEntryStore) -> tuple[dict[PendingId, Pending], dict[str, Unreadable]]:
    """Every journal record: the entries decoded, and the records the bot cannot read."""
    from bot_cli.core.model import PendingId

    entries: dict[PendingId, Pending] = {}
    unreadable: dict[str, Unreadable] = {}
    for key, record in store.load_all().items():
        found = decode_record(key, record)
        if isinstance(found, Unreadable):
            unreadable[key] = found
        else:
            entries[PendingId(key)] = found
    return entries, unreadable


def find_unreadable(store: PendingEntryStore) -> list[Unreadable]:
    """The records the bot cannot decode; decodes only those the quick check is unsure of."""
    found = (decode_record(k, r) for k, r in store.load_all().items() if listing(r) is None)
    return [u for u in found if isinstance(u, Unreadable)]


class PendingRow(NamedTuple):
    """One line of `bot pending list`; values as the journal holds them (decimal strings).

    A NamedTuple, not a frozen dataclass: 10,000 of them build in a third of the time."""

    pending_id: str
    symbol: str
    side: str
    quantity: str
    filled: str
    status: str
    stop_loss: str
    take_profit: str | None
    created_at: int | None
    reason: str

    @classmethod
    def of(cls, p: Pending) -> PendingRow:
        s, tp = p.spec, p.spec.take_profit
        return cls(p.pending_id, s.symbol, s.side.value, str(s.quantity), str(p.filled_qty), p.status.value,
                   str(s.stop_loss), None if tp is None else str(tp), p.created_at, p.reason)

    @classmethod
    def unreadable(cls, u: Unreadable, record: dict[str, Any]) -> PendingRow:
        """What a person can still make out of the record; "?" for the rest."""
        def text(key: str) -> str:
            value = record.get(key)
            return value if isinstance(value, str) else "?"

        created, tp = record.get("created_at"), record.get("take_profit")
        return cls(u.key, text("symbol"), text("side"), text("quantity"), text("filled_qty"), UNREADABLE,
                   text("stop_loss"), tp if isinstance(tp, str) else None,
                   created if type(created) is int else None, u.reason)

    @property
    def entry_client_id(self) -> str | None:
        return None if self.status == UNREADABLE else f"{self.pending_id}-e"  # core.ids.client_id(pid, Leg.ENTRY)

    def age_s(self, now_ms: int) -> float | None:
        return None if self.created_at is None else max(0.0, (now_ms - self.created_at) / 1000)

    def as_json(self, now_ms: int) -> dict[str, Any]:
        age = self.age_s(now_ms)
        return {
            "id": self.pending_id, "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
            "filled_quantity": self.filled, "state": self.status, "entry_client_id": self.entry_client_id,
            "stop_loss": self.stop_loss, "take_profit": self.take_profit,
            "age_seconds": None if age is None else round(age, 1), "reason": self.reason,
        }


def list_pending(store: PendingEntryStore) -> tuple[list[PendingRow], list[str]]:
    """The journal's entries as display rows by id, unreadable ones included, and warnings."""
    rows: list[PendingRow] = []
    problems = []
    for key, record in store.load_all().items():
        fields = listing(record)  # quick, and sure; otherwise decode to know
        if fields is not None:
            rows.append(PendingRow(*fields))
            continue
        found = decode_record(key, record)
        if isinstance(found, Unreadable):
            rows.append(PendingRow.unreadable(found, record))
            problems.append(f"journal record {key} cannot be read: {found.reason}; {found.advice}")
        else:
            rows.append(PendingRow.of(found))
    rows.sort(key=lambda r: r.pending_id)
    return rows, [*store.warnings, *problems]


def iso(ms: int | None, *, precise: bool = False) -> str:
    """An epoch-ms time as UTC, to the second (or the millisecond); "-" for none."""
    if not ms:
        return "-"
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    if precise:  # notes of one decision are milliseconds apart: keep their order visible
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the archive ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Archived:
    """One archive line, as read at the edge: anything missing shows as "?"."""

    pending_id: str
    reason: str
    at_ms: int
    record: dict[str, Any]

    @classmethod
    def of(cls, line: dict[str, Any]) -> Archived:
        rec, at = line.get("rec"), line.get("at_ms")
        return cls(_text(line, "id"), _text(line, "reason"), at if type(at) is int else 0,
                   rec if isinstance(rec, dict) else {})

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {"id": self.pending_id, "symbol": _text(r, "symbol"), "side": _text(r, "side"),
                "quantity": _text(r, "quantity"), "filled_quantity": _text(r, "filled_qty"),
                "state": _text(r, "status"), "reason": self.reason, "archived_at": self.at_ms}


def _text(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    return value if isinstance(value, str) else "?"


def read_archive(state_dir: Path) -> list[Archived]:
    """Every archived entry, oldest first; none when the state dir does not exist yet."""
    if not state_dir.is_dir():
        return []
    with PendingEntryStore(state_dir) as store:
        return [Archived.of(line) for line in store.archived()]


@dataclass(frozen=True, slots=True)
class Found:
    """An entry by id: decoded (or why not), and its archive line if it left the journal."""

    entry: Pending | Unreadable
    archived: Archived | None


def find(state_dir: Path, key: str) -> Found | None:
    """The entry from the journal if pending, else its last archive line; None if unknown."""
    if not state_dir.is_dir():
        return None
    with PendingEntryStore(state_dir) as store:
        record = store.load_all().get(key)
        if record is not None:
            return Found(decode_record(key, record), None)
        return find_archived(store, key)


def find_archived(store: PendingEntryStore, key: str) -> Found | None:
    lines = [a for a in map(Archived.of, store.archived()) if a.pending_id == key]
    if not lines:
        return None
    return Found(decode_record(key, lines[-1].record), lines[-1])


def read_back(store: PendingEntryStore, key: str, record: dict[str, Any] | None) -> Pending | None:
    """The entry from its journal record, else from the archive; None if unreadable or unknown."""
    if record is not None:
        found = decode_record(key, record)
    elif (line := find_archived(store, key)) is not None:
        found = line.entry
    else:
        return None
    return None if isinstance(found, Unreadable) else found


def why_not(state_dir: Path, key: str) -> str:
    """Why an id is not a pending entry that can be acted on, in one line."""
    found = find(state_dir, key)
    if found is None:
        return f"no pending entry {key} in {state_dir}: see `bot pending list`"
    if isinstance(found.entry, Unreadable):
        reason = found.entry.reason
        return f"the record of {key} cannot be read ({reason}): nothing can be sent for it"
    a, p = found.archived, found.entry
    when = "" if a is None else f" {iso(a.at_ms)}"
    return (f"entry {key} is no longer pending: archived{when} as {p.status.value} ({p.reason});"
            f" see `bot history {key}`")  # fmt: skip

