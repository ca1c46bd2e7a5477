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
from bot_cli.core.commands import Command, QueryPosition
from bot_cli.core.engine import step_many
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import client_id
from bot_cli.core.model import (
    AlgoReport,
    ClientId,
    Leg,
    LegState,
    Millis,
    OrderReport,
    Pending,
    PendingId,
    Policy,
    PositionSide,
    Status,
)
from bot_cli.core.protect import covered


_ENTRY_WORKING = (Status.SUBMITTING, Status.OPEN, Status.PARTIALLY_FILLED)
_SKIP = (Status.NEEDS_ATTENTION,)
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

    @property
    def commands(self) -> list[Command]:
        return [c for row in self.rows for c in row.commands]

    @property
    def has_work(self) -> bool:
        return any(row.commands for row in self.rows)


def lookups_needed(
    state: Mapping[PendingId, Pending],
    open_orders: Mapping[ClientId, OrderReport],
    open_algos: Mapping[ClientId, AlgoReport],
) -> Lookups:
    orders: list[tuple[str, ClientId]] = []
    algos: list[ClientId] = []
    positions = False
    for p in state.values():
        if p.status.terminal or p.status in _SKIP or p.status is Status.REQUESTED:
            continue
        entry = client_id(p.pending_id, Leg.ENTRY)
        if p.status in _ENTRY_WORKING and entry not in open_orders:
            orders.append((p.spec.symbol, entry))
        if p.close is not None and p.close.state is not LegState.LIVE:
            orders.append((p.spec.symbol, p.close.client_id))
        algos.extend(
            x.client_id for x in p.protections
            if x.state in (LegState.SENDING, LegState.UNKNOWN) and x.client_id not in open_algos
        )
        positions = positions or _may_need_position(p, entry, open_orders, open_algos)
    return Lookups(tuple(orders), tuple(algos), positions)


def _may_need_position(
    p: Pending, entry: ClientId, open_orders: Mapping[ClientId, OrderReport],
    open_algos: Mapping[ClientId, AlgoReport],
) -> bool:
    """A position settles "already flat"; needed only where protection may be placed."""
    if p.status in _ENTRY_WORKING and entry in open_orders and p.filled_qty == 0:
        return False
    return not (covered(p) and all(x.client_id in open_algos for x in p.protections))


def reconcile(
    state: Mapping[PendingId, Pending], snap: Snapshot, now: Millis, policy: Policy = Policy()
) -> Plan:
    """Classify every pending entry against the snapshot and plan what to do."""
    new_state: dict[PendingId, Pending] = {}
    rows = []
    for pid, p in sorted(state.items()):
        if p.status.terminal:
            continue
        q, cmds, said = _reconcile_one(p, snap, now, policy)
        if not q.status.terminal:
            new_state[pid] = q
        rows.append(PlanRow(pid, p.status, said, q.status, tuple(cmds)))
    return Plan(new_state, tuple(rows))


def _reconcile_one(
    p: Pending, snap: Snapshot, now: Millis, policy: Policy
) -> tuple[Pending, list[Command], str]:
    if p.status in _SKIP:
        return p, [], "not checked: needs attention"
    if p.status is Status.REQUESTED:
        q, cmds = step_many(p, [ev.EntryClaimed(p.pending_id)], now, policy)
        return q, cmds, "requested; not sent yet"
    events, said = _facts(p, snap)
    try:
        q, cmds = step_many(p, events, now, policy)
    except InvalidTransition as err:  # DESIGN: contradicting evidence -> NEEDS_ATTENTION, loudly
        detail = f"{'; '.join(said)} ({err})"
        q, cmds = step_many(p, [ev.EvidenceConflict(p.pending_id, detail)], now, policy)
        return q, cmds, f"{'; '.join(said)}; contradicts the journal"
    position = _position(p, snap)
    if position is not None and q.status in (Status.PARTIALLY_FILLED, Status.PROTECTING) and not covered(q):
        # The position right after the entry's own facts: known before any leg is re-sent.
        at = sum(isinstance(e, _ENTRY_FACTS) for e in events)
        known = [*events[:at], ev.PositionReport(p.pending_id, position), *events[at:]]
        q, cmds = step_many(p, known, now, policy)
        said.append(f"position {position}")
    if position is not None:
        cmds = [c for c in cmds if not isinstance(c, QueryPosition)]
    return q, cmds, "; ".join(said) or "nothing to check"


def _position(p: Pending, snap: Snapshot) -> Decimal | None:
    if snap.positions is None:
        return None
    return snap.positions.get((p.spec.symbol, p.spec.position_side), Decimal(0))


def _facts(p: Pending, snap: Snapshot) -> tuple[list[ev.Event], list[str]]:
    """What the snapshot says about one entry, as events and as words."""
    events: list[ev.Event] = []
    said: list[str] = []
    pid = p.pending_id
    if p.status in _ENTRY_WORKING:
        cid = client_id(pid, Leg.ENTRY)
        report = snap.open_orders.get(cid) or snap.orders.get(cid)
        if report is not None:
            events.append(ev.entry_event(pid, report))
            said.append(f"entry {report.status.value} {report.filled_qty}/{report.quantity}")
        elif cid in snap.orders:
            events.append(ev.EntryNotFound(pid, _position(p, snap)))
            said.append("entry not found")
    for leg in p.protections:
        events.extend(_leg_facts(pid, leg.client_id, leg.state, snap, said))
    if p.close is not None and p.close.state is not LegState.LIVE:
        cid = p.close.client_id
        if snap.open_orders.get(cid) or snap.orders.get(cid):
            events.append(ev.CloseAccepted(pid))
            said.append(f"close {cid} found")
        elif cid in snap.orders:
            events.append(ev.CloseNotFound(pid))
            said.append(f"close {cid} not found")
    return events, said


def _leg_facts(
    pid: PendingId, cid: ClientId, state: LegState, snap: Snapshot, said: list[str]
) -> list[ev.Event]:
    if cid in snap.open_algos:
        said.append(f"{cid} open")
        return [ev.ProtectionReport(pid, cid, snap.open_algos[cid].status)]
    if state in (LegState.LIVE, LegState.CANCELING):
        said.append(f"{cid} gone")
        return [ev.ProtectionMissing(pid, cid)]
    if cid not in snap.algos:
        return []
    found = snap.algos[cid]
    if found is None:
        said.append(f"{cid} not found")
        return [ev.ProtectionNotFound(pid, cid)]
    said.append(f"{cid} {found.status.value}")
    return [ev.ProtectionReport(pid, cid, found.status)]
