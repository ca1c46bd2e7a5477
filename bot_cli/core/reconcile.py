"""Reconcile the journal with the exchange: one planner for start-up, reconnects and `recover`.

Two pure steps around the shell's fetches: ``lookups_needed`` says which queries the
open books leave open (only entries not found open are queried one by one), and
``reconcile`` turns the snapshot into events for each entry, folds them through the
same lifecycle table as live events, and returns the plan: new states, commands, and
one printable row per entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot_cli.core import events as ev
from bot_cli.core.commands import CancelEntry, Command
from bot_cli.core.engine import facts as after_facts
from bot_cli.core.engine import step_many
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    ENTRY_WORKING,
    AlgoReport,
    ClientId,
    Leg,
    Millis,
    OrderReport,
    Pending,
    PendingId,
    Policy,
    PositionKey,
    PositionSide,
    Status,
)
from bot_cli.core.netting import netting_refusal
from bot_cli.core.positions import Verdict, judge_all


_SKIP = (Status.NEEDS_ATTENTION,)
_HOLDING = (Status.PARTIALLY_FILLED, Status.PROTECTING, Status.PROTECTED, Status.EXITING)
# One entry after its own facts: its state, commands, what was seen, and the facts as events.
_FirstPass = tuple[Pending, list[Command], list[str], list[ev.Event]]
_ENTRY_FACTS = (
    ev.EntryAccepted, ev.EntryRejected, ev.EntryNotFound, ev.EntryPartiallyFilled,
    ev.EntryFilled, ev.EntryCanceled, ev.EntryCanceledPartFilled,
)


@dataclass(frozen=True, slots=True)
class Lookups:
    """The queries the open books could not answer."""

    orders: tuple[tuple[str, ClientId], ...] = ()  # (symbol, client id) of entries/closes not open
    algos: tuple[ClientId, ...] = ()  # protections whose send was never acknowledged
    positions: bool = False

    @property
    def calls(self) -> int:
        return len(self.orders) + len(self.algos) + int(self.positions)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the exchange says; a value of None in orders/algos means "not found"."""

    open_orders: Mapping[ClientId, OrderReport]
    open_algos: Mapping[ClientId, AlgoReport]
    orders: Mapping[ClientId, OrderReport | None] = field(default_factory=dict)
    algos: Mapping[ClientId, AlgoReport | None] = field(default_factory=dict)
    positions: Mapping[tuple[str, PositionSide], Decimal] | None = None


@dataclass(frozen=True, slots=True)
class PlanRow:
    pending_id: PendingId
    local: Status
    exchange: str
    result: Status
    commands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    state: dict[PendingId, Pending]
    rows: tuple[PlanRow, ...]
    # Positions read short of the shares, to be confirmed by a fresh read (core.positions).
    suspects: Mapping[PositionKey, Decimal] = field(default_factory=dict)
    # Positions to read again, and from when: once settled (a shortfall its orders may explain),
    # or ``position_confirm_ms`` after a first read short of the shares.
    rechecks: Mapping[PositionKey, Millis] = field(default_factory=dict)

    @property
    def commands(self) -> list[Command]:
        return [c for row in self.rows for c in row.commands]

    @property
    def has_work(self) -> bool:
        return any(row.commands for row in self.rows)


def book_symbols(state: Mapping[PendingId, Pending]) -> tuple[str, ...]:
    """The symbols whose open books reconciling the journal reads: those of the entries it checks
    (every leg of an entry is on the entry's symbol). Sorted; empty for an empty journal."""
    return tuple(sorted({p.spec.symbol for p in state.values() if _checked(p)}))


def _checked(p: Pending) -> bool:
    return not (p.status.terminal or p.status in _SKIP or p.status is Status.REQUESTED)


def lookups_needed(
    state: Mapping[PendingId, Pending],
    open_orders: Mapping[ClientId, OrderReport],
    open_algos: Mapping[ClientId, AlgoReport],
    *,
    positions: bool = False,
) -> Lookups:
    """Every leg not in the open list is asked about by id, acknowledged ones too: a
    listing that lags must never make a live leg look gone (a duplicate stop)."""
    orders: list[tuple[str, ClientId]] = []
    algos: list[ClientId] = []
    for p in state.values():
        if not _checked(p):
            continue
        entry = client_id(p.pending_id, Leg.ENTRY)
        if _entry_asked(p) and entry not in open_orders:
            orders.append((p.spec.symbol, entry))
        if p.close is not None:
            orders.append((p.spec.symbol, p.close.client_id))
        algos.extend(x.client_id for x in p.protections if x.client_id not in open_algos)
        positions = positions or _may_need_position(p, entry, open_orders, open_algos)
    return Lookups(tuple(orders), tuple(algos), positions)


def _entry_asked(p: Pending) -> bool:
    return p.status in ENTRY_WORKING or (not p.entry_done and p.status is Status.EXITING)


def _may_need_position(
    p: Pending, entry: ClientId, open_orders: Mapping[ClientId, OrderReport],
    open_algos: Mapping[ClientId, AlgoReport],
) -> bool:
    """Anything that holds a share needs the position (one read): it may have been closed
    by hand, liquidated or taken by another entry's leg while nobody watched."""
    return p.filled_qty > 0 or not (p.status in ENTRY_WORKING and entry in open_orders)


def reconcile(
    state: Mapping[PendingId, Pending], snap: Snapshot, now: Millis, policy: Policy = Policy(),
    suspects: Mapping[PositionKey, Decimal] | None = None,
) -> Plan:
    """Classify every pending entry against the snapshot and plan what to do.

    Two passes: each entry's own facts first; then each position, judged against what those
    facts left the entries on it (core.positions.judge): a shortfall is charged only once the
    orders on the position have settled and a read after ``suspects`` (an earlier read's
    amounts) confirms it.
    """
    first: dict[PendingId, _FirstPass] = {}
    for pid, p in sorted(state.items()):
        if not p.status.terminal:
            first[pid] = _reconcile_one(p, snap, now, policy, state)
    verdicts = _verdicts(state, first, snap, now, policy, suspects=suspects or {})
    new_state: dict[PendingId, Pending] = {}
    rows = []
    for pid, facts in first.items():
        p = state[pid]
        verdict = verdicts.get(p.key)
        q, cmds, said = _second_pass(p, facts, verdict, now, policy)
        if not q.status.terminal:
            new_state[pid] = q
        rows.append(PlanRow(pid, p.status, "; ".join(said) or "nothing to check", q.status, tuple(cmds)))
    found = {k: v.suspect for k, v in verdicts.items() if v.suspect is not None}
    return Plan(new_state, tuple(rows), found, recheck_times(verdicts, now, policy))


def recheck_times(verdicts: Mapping[PositionKey, Verdict], now: Millis, policy: Policy) -> dict[PositionKey, Millis]:
    """When each position a verdict left in doubt must be read again (core.positions)."""
    out: dict[PositionKey, Millis] = {}
    for key, v in verdicts.items():
        if v.shortfall > 0 and not v.charged:
            out[key] = now if not v.settled else now + policy.position_confirm_ms
    return out


def _verdicts(
    state: Mapping[PendingId, Pending], first: Mapping[PendingId, _FirstPass], snap: Snapshot,
    now: Millis, policy: Policy, *, suspects: Mapping[PositionKey, Decimal],
) -> dict[PositionKey, Verdict]:
    """Each position judged against the entries as the snapshot's facts leave them, before any
    leg or close this plan would send (those cannot have executed)."""
    if snap.positions is None:
        return {}
    known = [_as_found(state[pid], events, now, policy) for pid, (*_, events) in first.items()]
    return judge_all(known, snap.positions, suspects, fresh_at=now)


def _as_found(p: Pending, events: list[ev.Event], now: Millis, policy: Policy) -> Pending:
    try:
        return after_facts(p, events, now, policy)
    except InvalidTransition:
        return p


def _second_pass(
    p: Pending, facts: _FirstPass, verdict: Verdict | None, now: Millis, policy: Policy
) -> tuple[Pending, list[Command], list[str]]:
    """The first pass's outcome, with what the position read means for the entry folded in."""
    q, cmds, said, events = facts
    if verdict is None or q.status not in _HOLDING or p.status in _SKIP:
        return q, cmds, said
    said = [*said, *_position_words(q, verdict)]
    event = verdict.events.get(p.pending_id)
    if isinstance(event, ev.PositionReport):
        return _with_position(p, facts, event.amount, now, policy) or (q, cmds, said)
    if event is not None:
        try:
            q, cmds = step_many(p, [*events, event], now, policy)
        except InvalidTransition as err:
            return _conflict(p, said, err, now, policy)
    return q, cmds, said


def _position_words(q: Pending, verdict: Verdict) -> list[str]:
    if verdict.shortfall <= 0 or q.share <= 0:
        return []
    if not verdict.settled:
        return [f"the position lacks {verdict.shortfall} of the shares; not believed while its orders settle"]
    if verdict.suspect is not None:
        return [f"the position lacks {verdict.shortfall} of the shares; to be confirmed by a fresh read"]
    return [f"the position lacks {verdict.shortfall} of the shares, confirmed"]


def _with_position(
    p: Pending, facts: _FirstPass, share: Decimal, now: Millis, policy: Policy
) -> tuple[Pending, list[Command], list[str]] | None:
    """Fold the entry's part of the position in right after its entry's facts, so a flat
    share is known before any leg is re-sent; what its legs executed (found by the first
    pass) is added back, since those facts come after it and take it away again."""
    q1, _, said, events = facts
    at = sum(isinstance(e, _ENTRY_FACTS) for e in events)
    if at and step_many(p, events[:at], now, policy)[0].status not in _HOLDING:
        return None
    if not at and p.status not in _HOLDING:
        return None
    seen = share + max(q1.exited - p.exited, Decimal(0))
    try:
        q, cmds = step_many(p, [*events[:at], ev.PositionReport(p.pending_id, seen), *events[at:]], now, policy)
    except InvalidTransition as err:
        return _conflict(p, said, err, now, policy)
    return q, cmds, [*said, f"its share of the position {share}"]


def _reconcile_one(
    p: Pending, snap: Snapshot, now: Millis, policy: Policy, state: Mapping[PendingId, Pending]
) -> _FirstPass:
    if p.status in _SKIP:
        return _parked(p)
    if p.status is Status.REQUESTED:
        conflict = netting_refusal(p.spec, state.values(), p, stacking=policy.stacking) or ""
        q, cmds = step_many(p, [ev.EntryClaimed(p.pending_id, conflict)], now, policy)
        return q, cmds, ["requested; not sent yet"], []
    events, said = _facts(p, snap)
    try:
        q, cmds = step_many(p, events, now, policy)
    except InvalidTransition as err:  # DESIGN: contradicting evidence -> NEEDS_ATTENTION, loudly
        q, cmds, said = _conflict(p, said, err, now, policy)
        return q, cmds, said, []
    return q, cmds, said, events


def _parked(p: Pending) -> _FirstPass:
    """An operator decides; only an entry order that may still be working is cancelled."""
    if not p.entry_done and p.order_id is not None:
        cancel = CancelEntry(p.pending_id, p.spec.symbol, client_id(p.pending_id, Leg.ENTRY))
        return p, [cancel], ["needs attention; cancelling what is left of its entry order"], []
    return p, [], ["not checked: needs attention"], []


def _conflict(
    p: Pending, said: list[str], err: InvalidTransition, now: Millis, policy: Policy
) -> tuple[Pending, list[Command], list[str]]:
    detail = f"{'; '.join(said)} ({err})"
    q, cmds = step_many(p, [ev.EvidenceConflict(p.pending_id, detail)], now, policy)
    return q, cmds, [*said, "contradicts the journal"]


def _facts(p: Pending, snap: Snapshot) -> tuple[list[ev.Event], list[str]]:
    """What the snapshot says about one entry, as events and as words."""
    events: list[ev.Event] = []
    said: list[str] = []
    pid = p.pending_id
    if _entry_asked(p):
        cid = client_id(pid, Leg.ENTRY)
        report = snap.open_orders.get(cid) or snap.orders.get(cid)
        if report is not None:
            events.append(ev.entry_event(pid, report))
            said.append(f"entry {report.status.value} {report.filled_qty}/{report.quantity}")
        elif cid in snap.orders:
            events.append(ev.EntryNotFound(pid, _position(p, snap)))
            said.append("entry not found")
    for leg in p.protections:
        events.extend(_leg_facts(pid, leg.client_id, snap, said))
    if p.close is not None:
        cid = p.close.client_id
        found = snap.open_orders.get(cid) or snap.orders.get(cid)
        if found is not None:
            events.append(ev.close_event(pid, found))
            said.append(f"close {cid} {found.status.value} executed {found.filled_qty}")
        elif cid in snap.orders:
            events.append(ev.CloseNotFound(pid))
            said.append(f"close {cid} not found")
    return events, said


def _position(p: Pending, snap: Snapshot) -> Decimal | None:
    if snap.positions is None:
        return None
    return snap.positions.get((p.spec.symbol, p.spec.position_side), Decimal(0))


def _leg_facts(pid: PendingId, cid: ClientId, snap: Snapshot, said: list[str]) -> list[ev.Event]:
    found = snap.open_algos.get(cid) or snap.algos.get(cid)
    if found is not None:
        done = f" executed {found.executed_qty}" if found.status.fired and found.executed_qty is not None else ""
        said.append(f"{cid} {found.status.value}{done}")
        return [ev.protection_event(pid, found)]
    if cid in snap.algos:
        said.append(f"{cid} not found")
        return [ev.ProtectionNotFound(pid, cid)]
    return []
