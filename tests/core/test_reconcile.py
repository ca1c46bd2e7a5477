"""Specification of core.reconcile: the recovery table of DESIGN.md, row by row.

One planner serves start-up, stream reconnects and `recover`: lookups_needed() says which
queries the open books leave open, reconcile() classifies every entry against the snapshot
and returns the plan (new states, ordered commands, one printable row per entry).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from bot_cli.core import commands as cm
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import (
    AlgoStatus,
    ClientId,
    Leg,
    LegState,
    Millis,
    OrderStatus,
    Pending,
    PendingId,
    PositionSide,
    Side,
    Status,
)
from bot_cli.core.reconcile import Lookups, Plan, Snapshot, lookups_needed, reconcile
from tests.core.helpers import (
    ARCHIVED,
    DEADLINE,
    INSIDE,
    LATER,
    PID,
    SPEC,
    D,
    algo,
    cid,
    leg,
    legs,
    of_type,
    order,
    pending,
    sends,
    snapshot,
)


ENTRY = client_id(PID, Leg.ENTRY)
SL1, TP1 = cid(Leg.SL, 1), cid(Leg.TP, 1)
SL2, TP2 = cid(Leg.SL, 2), cid(Leg.TP, 2)
NOT_FOUND: dict[ClientId, None] = {ENTRY: None}
PLACE, PERSIST, ARCHIVE = cm.PlaceProtection, cm.PersistPending, cm.ArchivePending


@dataclass(frozen=True)
class Row:
    """One row of the recovery table: local state x what the exchange says -> action."""

    why: str
    local: Pending
    snap: Snapshot
    result: Status
    kinds: tuple[type, ...]  # the plan's command types, in order
    placed: tuple[tuple[ClientId, str], ...] = ()  # (client id, quantity) of each protection sent
    now: Millis = LATER
    confirmed: bool = False  # an earlier read showed the same position (a shortfall is believed)


def plan_for(p: Pending, snap: Snapshot, now: Millis = LATER, *, confirmed: bool = False) -> Plan:
    """The plan for one entry; ``confirmed``: the snapshot's positions were read before too."""
    suspects = dict(snap.positions or {}) if confirmed else {}
    return reconcile({p.pending_id: p}, snap, now, suspects=suspects)


SUB, OPN, PRO = pending(Status.SUBMITTING), pending(Status.OPEN), pending(Status.PROTECTING)

RECOVERY_TABLE = [
    # SUBMITTING | order found (any status) | adopt it, continue from that status
    Row("SUBMITTING, found NEW: adopt as OPEN",
        SUB, snapshot(open_orders=[order(OrderStatus.NEW)]), Status.OPEN, (PERSIST,)),
    Row("SUBMITTING, found PARTIALLY_FILLED: adopt and protect the filled part",
        SUB, snapshot(open_orders=[order(OrderStatus.PARTIALLY_FILLED, "0.4")], position="0.4"),
        Status.PARTIALLY_FILLED, (PERSIST, PLACE, PLACE), ((SL1, "0.4"), (TP1, "0.4"))),
    Row("SUBMITTING, found FILLED: protect now",
        SUB, snapshot(orders={ENTRY: order(OrderStatus.FILLED, "1.0")}, position="1.0"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "1.0"), (TP1, "1.0"))),
    Row("SUBMITTING, found CANCELED with no fill: archive",
        SUB, snapshot(orders={ENTRY: order(OrderStatus.CANCELED)}), Status.CANCELED, (ARCHIVE,)),
    Row("SUBMITTING, found EXPIRED_IN_MATCH with no fill: archive",
        SUB, snapshot(orders={ENTRY: order(OrderStatus.EXPIRED_IN_MATCH)}), Status.CANCELED,
        (ARCHIVE,)),
    Row("SUBMITTING, found REJECTED: never placed",
        SUB, snapshot(orders={ENTRY: order(OrderStatus.REJECTED)}), Status.NOT_PLACED, (ARCHIVE,)),
    Row("SUBMITTING, found EXPIRED part filled: protect the filled part",
        SUB, snapshot(orders={ENTRY: order(OrderStatus.EXPIRED, "0.3")}, position="0.3"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "0.3"), (TP1, "0.3"))),
    # SUBMITTING | not found, past timestamp + recvWindow + margin | cancel it by id (a read
    # may lag; the cancel reaches the matching engine); NOT_PLACED once the cancel finds nothing
    Row("SUBMITTING, not found past the window: cancel by id to be sure",
        SUB, snapshot(orders=NOT_FOUND, position="0"), Status.SUBMITTING,
        (PERSIST, cm.CancelEntry, cm.ScheduleCheck)),
    # SUBMITTING | not found yet, inside that window | wait and query again
    Row("SUBMITTING, not found inside the window: wait and query again",
        SUB, snapshot(orders=NOT_FOUND, position="0"), Status.SUBMITTING, (cm.ScheduleCheck,),
        now=INSIDE),
    # OPEN | open, nothing filled | keep
    Row("OPEN, open with nothing filled: keep",
        OPN, snapshot(open_orders=[order(OrderStatus.NEW)]), Status.OPEN, ()),
    # OPEN | partially filled | protect the filled quantity, keep following
    Row("OPEN, partially filled: protect the filled quantity, keep following",
        OPN, snapshot(open_orders=[order(OrderStatus.PARTIALLY_FILLED, "0.4")], position="0.4"),
        Status.PARTIALLY_FILLED, (PERSIST, PLACE, PLACE), ((SL1, "0.4"), (TP1, "0.4"))),
    # OPEN | FILLED | protect now
    Row("OPEN, FILLED: protect now",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.FILLED, "1.0")}, position="1.0"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "1.0"), (TP1, "1.0"))),
    # OPEN | CANCELED/EXPIRED, zero fill | archive (cleanup)
    Row("OPEN, CANCELED with zero fill: archive",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.CANCELED)}), Status.CANCELED, (ARCHIVE,)),
    Row("OPEN, EXPIRED with zero fill: archive",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.EXPIRED)}), Status.CANCELED, (ARCHIVE,)),
    # OPEN | CANCELED/EXPIRED, part filled | protect the filled part
    Row("OPEN, CANCELED part filled: protect the filled part",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.CANCELED, "0.3")}, position="0.3"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "0.3"), (TP1, "0.3"))),
    Row("OPEN, EXPIRED part filled: protect the filled part",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.EXPIRED, "0.3")}, position="0.3"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "0.3"), (TP1, "0.3"))),
    # OPEN | not found (archived after 3 days) | position and trades decide; else NEEDS_ATTENTION
    Row("OPEN, not found yet (acknowledged, within 3 days): not visible yet, ask again",
        OPN, snapshot(orders=NOT_FOUND, position="0"), Status.OPEN, (PERSIST, cm.ScheduleCheck)),
    Row("OPEN, not found after 3 days, position flat: canceled with no fill, archive",
        OPN, snapshot(orders=NOT_FOUND, position="0"), Status.CANCELED, (ARCHIVE,), now=ARCHIVED),
    Row("OPEN, not found after 3 days, a position is open: NEEDS_ATTENTION, its order cancelled",
        OPN, snapshot(orders=NOT_FOUND, position="1.0"), Status.NEEDS_ATTENTION,
        (PERSIST, cm.Alert, cm.CancelEntry), now=ARCHIVED),
    Row("OPEN, not found after 3 days, position unknown: NEEDS_ATTENTION, its order cancelled",
        OPN, snapshot(orders=NOT_FOUND), Status.NEEDS_ATTENTION, (PERSIST, cm.Alert, cm.CancelEntry),
        now=ARCHIVED),
    # PROTECTING | SL/TP found by client id | adopt, PROTECTED (resting in the journal)
    Row("PROTECTING, SL and TP found open: adopt, PROTECTED",
        PRO, snapshot(open_algos=[algo(x) for x in PRO.protections], position="1.0"),
        Status.PROTECTED, (PERSIST,)),
    Row("PROTECTING, SL and TP found by query: adopt, PROTECTED",
        PRO, snapshot(algos={x.client_id: algo(x) for x in PRO.protections}, position="1.0"),
        Status.PROTECTED, (PERSIST,)),
    # PROTECTING | not found | place them (same ids)
    Row("PROTECTING, SL and TP not found: place them under the same ids",
        PRO, snapshot(algos={SL1: None, TP1: None}, position="1.0"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "1.0"), (TP1, "1.0"))),
    Row("PROTECTING, SL and TP not found inside their window: wait",
        PRO, snapshot(algos={SL1: None, TP1: None}, position="1.0"),
        Status.PROTECTING, (PERSIST, cm.ScheduleCheck, cm.ScheduleCheck), now=INSIDE),
]

CLOSE_FILLED = replace(order(OrderStatus.FILLED, "1.0"), client_id=cid(Leg.CLOSE, 2))
MORE_ROWS = [
    Row("PARTIALLY_FILLED, still open and its legs open: keep following, nothing to do",
        pending(Status.PARTIALLY_FILLED),
        snapshot(open_orders=[order(OrderStatus.PARTIALLY_FILLED, "0.4")],
                 open_algos=[algo(x) for x in pending(Status.PARTIALLY_FILLED).protections]),
        Status.PARTIALLY_FILLED, ()),
    Row("PARTIALLY_FILLED, filled more while down: a new generation for the new quantity",
        pending(Status.PARTIALLY_FILLED),
        snapshot(open_orders=[order(OrderStatus.PARTIALLY_FILLED, "0.7")],
                 open_algos=[algo(x) for x in pending(Status.PARTIALLY_FILLED).protections],
                 position="0.7"),
        Status.PARTIALLY_FILLED, (PERSIST, PLACE, PLACE), ((SL2, "0.7"), (TP2, "0.7"))),
    Row("PARTIALLY_FILLED, FILLED while down: PROTECTING with a new generation for all of it",
        pending(Status.PARTIALLY_FILLED),
        snapshot(orders={ENTRY: order(OrderStatus.FILLED, "1.0")},
                 open_algos=[algo(x) for x in pending(Status.PARTIALLY_FILLED).protections],
                 position="1.0"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL2, "1.0"), (TP2, "1.0"))),
    Row("OPEN, FILLED while down but the position is already flat (read twice): nothing placed, CLOSED",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.FILLED, "1.0")}, position="0"),
        Status.CLOSED, (cm.Alert, ARCHIVE), confirmed=True),
    Row("OPEN, FILLED while down, one read shows the position flat: not believed yet, protect",
        OPN, snapshot(orders={ENTRY: order(OrderStatus.FILLED, "1.0")}, position="0"),
        Status.PROTECTING, (PERSIST, PLACE, PLACE), ((SL1, "1.0"), (TP1, "1.0"))),
    Row("PROTECTING, legs never landed and the position is already flat (read twice): nothing placed",
        PRO, snapshot(algos={SL1: None, TP1: None}, position="0"), Status.CLOSED, (cm.Alert, ARCHIVE),
        confirmed=True),
    Row("PROTECTED, live legs not visible while down and the position is flat (read twice): nothing "
        "placed; both cancelled by id (a hidden live leg must not outlive a flat share)",
        pending(Status.PROTECTED, protections=legs(1, "1.0", LegState.LIVE, sent_at=LATER - 1_000)),
        snapshot(algos={SL1: None, TP1: None}, position="0"), Status.EXITING,
        (PERSIST, cm.Alert, cm.ScheduleCheck, cm.ScheduleCheck, cm.CancelProtection, cm.CancelProtection),
        confirmed=True),
    Row("PROTECTED, live legs not visible past the read-lag window, position flat: cancelled by id; "
        "the share moves once the cancels have answered (the legs may have fired)",
        pending(Status.PROTECTED, protections=legs(1, "1.0", LegState.LIVE)),
        snapshot(algos={SL1: None, TP1: None}, position="0"), Status.PROTECTED,
        (PERSIST, cm.CancelProtection, cm.CancelProtection, cm.ScheduleCheck), now=LATER + 30_000, confirmed=True),
    Row("PROTECTED, an SL expired while down, position still open: protect again",
        pending(Status.PROTECTED, protections=legs(1, "1.0", LegState.LIVE)),
        snapshot(open_algos=[algo(leg(Leg.TP, 1, "1.0", LegState.LIVE))],
                 algos={SL1: algo(leg(Leg.SL, 1, "1.0", LegState.LIVE), AlgoStatus.EXPIRED)}, position="1.0"),
        Status.PROTECTED, (PERSIST, cm.QueryPosition)),
    Row("PROTECTED, a live SL visible to nothing: asked about again inside the read-lag window",
        pending(Status.PROTECTED, protections=legs(1, "1.0", LegState.LIVE, sent_at=LATER - 1_000)),
        snapshot(open_algos=[algo(leg(Leg.TP, 1, "1.0", LegState.LIVE))], algos={SL1: None}, position="1.0"),
        Status.PROTECTED, (PERSIST, cm.ScheduleCheck)),
    Row("PROTECTING, the SL fired while down: wind down the TP",
        pending(Status.PROTECTING, protections=legs(1, "1.0", LegState.LIVE)),
        snapshot(open_algos=[algo(leg(Leg.TP, 1, "1.0", LegState.LIVE))],
                 algos={SL1: replace(algo(leg(Leg.SL, 1, "1.0", LegState.LIVE), AlgoStatus.FINISHED),
                                     executed_qty=D("1.0"))},
                 position="0"),
        Status.EXITING, (PERSIST, cm.CancelProtection)),
    Row("CLOSING, the close found and the TP still open: acknowledged, cancel the TP again",
        pending(Status.EXITING),
        snapshot(orders={cid(Leg.CLOSE, 2): CLOSE_FILLED},
                 open_algos=[algo(leg(Leg.TP, 1, "1.0", LegState.CANCELING))]),
        Status.EXITING, (PERSIST, cm.CancelProtection)),
    Row("EXITING, the close found and the TP gone: CLOSED, archive",
        pending(Status.EXITING),
        snapshot(orders={cid(Leg.CLOSE, 2): CLOSE_FILLED},
                 algos={TP1: algo(leg(Leg.TP, 1, "1.0", LegState.LIVE), AlgoStatus.CANCELED)}),
        Status.CLOSED, (ARCHIVE,)),
    Row("CLOSING, the close never landed: sent again under the same id",
        pending(Status.EXITING), snapshot(orders={cid(Leg.CLOSE, 2): None}),
        Status.EXITING, (PERSIST, cm.ClosePosition)),
    Row("NEEDS_ATTENTION: shown, not touched",
        pending(Status.NEEDS_ATTENTION), snapshot(orders=NOT_FOUND, position="0"),
        Status.NEEDS_ATTENTION, ()),
]


def _check(row: Row) -> None:
    # Act
    plan = plan_for(row.local, row.snap, row.now, confirmed=row.confirmed)

    # Assert
    (planned,) = plan.rows
    assert (planned.local, planned.result) == (row.local.status, row.result)
    assert tuple(type(c) for c in plan.commands) == row.kinds
    placed = [(c.client_id, str(c.quantity)) for c in of_type(plan.commands, cm.PlaceProtection)]
    assert placed == list(row.placed)
    if row.result.terminal:
        assert plan.state == {}
    else:
        assert plan.state[PID].status is row.result
    persisted = [c.pending for c in of_type(plan.commands, cm.PersistPending)]
    assert persisted in ([], [plan.state.get(PID)])


@pytest.mark.parametrize("row", [pytest.param(r, id=r.why) for r in RECOVERY_TABLE])
def test_recovery_table(row: Row) -> None:
    """Every row of DESIGN.md's recovery table: local state x exchange says -> action."""
    # Arrange: the row
    _check(row)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.why) for r in MORE_ROWS])
def test_recovery_beyond_the_table(row: Row) -> None:
    """Partial fills, flat positions, closes and entries needing attention."""
    # Arrange: the row
    _check(row)


# -- the SUBMITTING window rule ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "filled", "adopted_as"),
    [
        pytest.param(OrderStatus.NEW, "0", Status.OPEN, id="NEW -> OPEN"),
        pytest.param(OrderStatus.PARTIALLY_FILLED, "0.4", Status.PARTIALLY_FILLED,
                     id="PARTIALLY_FILLED -> PARTIALLY_FILLED"),
        pytest.param(OrderStatus.FILLED, "1.0", Status.PROTECTING, id="FILLED -> PROTECTING"),
        pytest.param(OrderStatus.CANCELED, "0", Status.CANCELED,
                     id="CANCELED, no fill -> CANCELED"),
        pytest.param(OrderStatus.CANCELED, "0.2", Status.PROTECTING,
                     id="CANCELED, part filled -> PROTECTING"),
        pytest.param(OrderStatus.EXPIRED, "0", Status.CANCELED, id="EXPIRED, no fill -> CANCELED"),
        pytest.param(OrderStatus.EXPIRED_IN_MATCH, "0.2", Status.PROTECTING,
                     id="EXPIRED_IN_MATCH, part filled -> PROTECTING"),
        pytest.param(OrderStatus.REJECTED, "0", Status.NOT_PLACED, id="REJECTED -> NOT_PLACED"),
    ],
)
@pytest.mark.parametrize("now", [pytest.param(INSIDE, id="inside"), pytest.param(LATER, id="past")])
def test_submitting_found_in_any_status_is_adopted_at_any_time(
    status: OrderStatus, filled: str, adopted_as: Status, now: int
) -> None:
    """A SUBMITTING entry found on the exchange is adopted, inside or past its window."""
    # Arrange
    report = order(status, filled)
    snap = snapshot(orders={ENTRY: report}, position=filled)

    # Act
    plan = plan_for(pending(Status.SUBMITTING), snap, now)

    # Assert
    assert plan.rows[0].result is adopted_as
    assert all(c.quantity == D(filled) for c in of_type(plan.commands, cm.PlaceProtection))


@pytest.mark.parametrize(
    ("now", "result", "kinds"),
    [
        pytest.param(INSIDE, Status.SUBMITTING, (cm.ScheduleCheck,), id="inside: wait"),
        pytest.param(DEADLINE - 1, Status.SUBMITTING, (cm.ScheduleCheck,), id="1 ms before: wait"),
        pytest.param(DEADLINE, Status.SUBMITTING, (cm.PersistPending, cm.CancelEntry, cm.ScheduleCheck),
                     id="at the deadline: cancel by id to be sure"),
    ],
)
def test_submitting_not_found_waits_until_the_window_closes(
    now: int, result: Status, kinds: tuple[type[cm.Command], ...]
) -> None:
    """Not found proves nothing until timestamp + recvWindow + margin has passed; then a cancel
    by id settles it (core: test_engine)."""
    # Arrange
    snap = snapshot(orders=NOT_FOUND, position="0")

    # Act
    plan = plan_for(pending(Status.SUBMITTING), snap, now)

    # Assert
    assert plan.rows[0].result is result
    assert tuple(type(c) for c in plan.commands) == kinds
    if now < DEADLINE:
        assert plan.commands == [cm.ScheduleCheck(PID, max(DEADLINE, now + 2_000))]


def test_protection_not_found_is_placed_with_the_same_ids() -> None:
    """Legs that never landed are re-sent under their own ids: a late one cannot double."""
    # Arrange
    snap = snapshot(algos={SL1: None, TP1: None}, position="1.0")

    # Act
    plan = plan_for(PRO, snap)

    # Assert
    assert sends(plan.commands) == of_type(plan.commands, cm.PlaceProtection)
    assert [(c.client_id, c.leg, c.side, c.quantity, c.trigger_price)
            for c in of_type(plan.commands, cm.PlaceProtection)] == [
        (SL1, Leg.SL, Side.SELL, D("1.0"), D("95")), (TP1, Leg.TP, Side.SELL, D("1.0"), D("110")),
    ]


def test_requested_entry_is_claimed_and_sent() -> None:
    """A REQUESTED entry (written by a CLI) is persisted as SUBMITTING, then sent."""
    # Arrange
    p = pending(Status.REQUESTED)

    # Act
    plan = plan_for(p, snapshot(), INSIDE)

    # Assert
    assert plan.rows[0].result is Status.SUBMITTING
    assert [type(c) for c in plan.commands] == [cm.PersistPending, cm.PlaceEntry]


def test_evidence_contradicting_the_journal_needs_attention_loudly() -> None:
    """An event the table has no row for (REJECTED after fills): NEEDS_ATTENTION, persisted, alerted."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED)
    snap = snapshot(orders={ENTRY: order(OrderStatus.REJECTED)})

    # Act
    plan = plan_for(p, snap)

    # Assert
    (row,) = plan.rows
    q = plan.state[PID]
    assert q.status is Status.NEEDS_ATTENTION
    assert q.filled_qty == p.filled_qty
    assert q.protections == p.protections
    assert "contradicts the journal" in q.reason
    assert "contradicts the journal" in row.exchange
    # parked while its order may still work: what is left of the order is cancelled
    assert [type(c).__name__ for c in row.commands] == ["PersistPending", "Alert", "CancelEntry"]


def test_terminal_entries_are_left_out_of_the_plan() -> None:
    """Archived statuses are neither planned nor kept in the new state."""
    # Arrange
    state = {PID: pending(Status.CLOSED)}

    # Act
    plan = reconcile(state, snapshot(orders=NOT_FOUND), LATER)

    # Assert
    assert (plan.state, plan.rows, plan.has_work) == ({}, (), False)


def test_plan_rows_are_in_pending_id_order_and_commands_follow_them() -> None:
    """Plan.commands is the rows' commands in pending-id order: a stable, printable plan."""
    # Arrange
    a, b = make_pending_id(LATER, 2), make_pending_id(LATER, 1)
    state = {a: pending(Status.OPEN, pid=a), b: pending(Status.OPEN, pid=b)}
    snap = snapshot(orders={client_id(a, Leg.ENTRY): None, client_id(b, Leg.ENTRY): None},
                    position="0")

    # Act
    plan = reconcile(state, snap, LATER)

    # Assert
    assert [r.pending_id for r in plan.rows] == sorted([a, b])
    assert plan.commands == [c for r in plan.rows for c in r.commands]
    assert plan.has_work


def test_reconcile_does_not_query_a_position_it_was_given() -> None:
    """With the snapshot's position at hand, no QueryPosition is planned."""
    # Arrange
    p = pending(Status.PROTECTING, protections=legs(1, "1.0", LegState.LIVE))
    snap = snapshot(open_algos=[algo(leg(Leg.TP, 1, "1.0", LegState.LIVE))], position="1.0")

    # Act
    plan = plan_for(p, snap)

    # Assert
    assert of_type(plan.commands, cm.QueryPosition) == []


def test_positions_are_read_per_symbol_and_position_side() -> None:
    """In hedge mode, the LONG position decides for a LONG entry, not the SHORT one."""
    # Arrange
    entry = replace(SPEC, position_side=PositionSide.LONG)
    p = pending(Status.OPEN, spec=entry)
    snap = Snapshot(
        open_orders={}, open_algos={},
        orders={ENTRY: order(OrderStatus.FILLED, "1.0")},
        positions={(SPEC.symbol, PositionSide.LONG): D("1.0"),
                   (SPEC.symbol, PositionSide.SHORT): D(0)},
    )

    # Act
    plan = plan_for(p, snap)

    # Assert
    assert plan.rows[0].result is Status.PROTECTING
    assert [c.position_side for c in of_type(plan.commands, cm.PlaceProtection)] == [
        PositionSide.LONG, PositionSide.LONG
    ]


# -- lookups_needed -------------------------------------------------------------------


def _many(n: int, status: Status, start: int = 0) -> dict[PendingId, Pending]:
    pids = [make_pending_id(LATER, start + i) for i in range(n)]
    return {pid: pending(status, pid=pid) for pid in pids}


def test_entries_found_open_are_not_queried() -> None:
    """Only entries missing from the open-orders book are queried by client id."""
    # Arrange
    state = _many(3, Status.OPEN)
    first, *rest = state
    open_orders = {client_id(first, Leg.ENTRY): order(OrderStatus.NEW, pid=first)}

    # Act
    lookups = lookups_needed(state, open_orders, {})

    # Assert
    assert lookups.orders == tuple((SPEC.symbol, client_id(pid, Leg.ENTRY)) for pid in rest)


@dataclass(frozen=True)
class Mix:
    open_entries: int
    missing_entries: int
    protecting: int  # each with two unacknowledged legs not open
    expected: int
    why: str = field(default="")


@pytest.mark.parametrize(
    "mix",
    [
        pytest.param(Mix(5, 0, 0, 0), id="all open: no call"),
        pytest.param(Mix(5, 2, 0, 2 + 1), id="2 missing: 2 queries + 1 position"),
        pytest.param(Mix(0, 0, 3, 6 + 1), id="3 protecting: 6 leg queries + 1 position"),
        pytest.param(Mix(10, 4, 2, 4 + 4 + 1), id="mixed: one position call for all"),
    ],
)
def test_calls_are_entries_not_open_plus_unacked_legs_plus_one_position(mix: Mix) -> None:
    """calls = entries not found open + unacknowledged legs + 1 position call when needed."""
    # Arrange
    state = {
        **_many(mix.open_entries, Status.OPEN),
        **_many(mix.missing_entries, Status.OPEN, start=1_000),
        **_many(mix.protecting, Status.PROTECTING, start=2_000),
    }
    open_orders = {
        client_id(pid, Leg.ENTRY): order(OrderStatus.NEW, pid=pid)
        for pid in list(state)[: mix.open_entries]
    }

    # Act
    lookups = lookups_needed(state, open_orders, {})

    # Assert
    assert lookups.calls == mix.expected
    assert len(lookups.orders) == mix.missing_entries
    assert len(lookups.algos) == 2 * mix.protecting
    assert lookups.positions is (mix.expected > 0)


@pytest.mark.parametrize(
    "status", [Status.OPEN, Status.SUBMITTING, Status.PARTIALLY_FILLED], ids=lambda s: s.name
)
def test_a_thousand_entries_all_open_need_no_lookup(status: Status) -> None:
    """1000 entries all on the open books (and their live legs) cost zero extra calls."""
    # Arrange
    state = _many(1_000, status)
    open_orders = {
        client_id(pid, Leg.ENTRY): order(OrderStatus.NEW, pid=pid) for pid in state
    }
    open_algos = {x.client_id: algo(x) for p in state.values() for x in p.protections}

    # Act
    lookups = lookups_needed(state, open_orders, open_algos)

    # Assert: only the one position read, where entries hold a share that may have moved
    holds = any(p.filled_qty > 0 for p in state.values())
    assert lookups == Lookups(positions=holds)
    assert lookups.calls == int(holds)


def test_unacknowledged_legs_found_open_are_not_queried() -> None:
    """A SENDING leg already in the open algo book needs no query of its own."""
    # Arrange
    p = pending(Status.PROTECTING)

    # Act
    lookups = lookups_needed({PID: p}, {}, {x.client_id: algo(x) for x in p.protections})

    # Assert
    assert lookups.algos == ()
    assert lookups.orders == ()


def test_unsettled_close_is_queried() -> None:
    """A market close not yet acknowledged is looked up by its client id."""
    # Arrange
    p = pending(Status.EXITING)

    # Act
    lookups = lookups_needed({PID: p}, {}, {})

    # Assert
    assert lookups.orders == ((SPEC.symbol, cid(Leg.CLOSE, 2)),)


@pytest.mark.parametrize(
    "status",
    [Status.NEEDS_ATTENTION, Status.REQUESTED, *[s for s in Status if s.terminal]],
    ids=lambda s: s.name,
)
def test_entries_not_reconciled_need_no_lookup(status: Status) -> None:
    """Entries that need attention, are not yet sent, or are archived are never queried."""
    # Arrange
    state = {PID: pending(status)}

    # Act
    lookups = lookups_needed(state, {}, {})

    # Assert
    assert lookups.calls == 0


def test_lookups_answer_what_reconcile_needs() -> None:
    """Whatever lookups_needed asks for is enough: answering it leaves no entry unresolved."""
    # Arrange
    state = {**_many(2, Status.OPEN), **_many(2, Status.PROTECTING, start=10)}
    lookups = lookups_needed(state, {}, {})
    snap = snapshot(
        orders={c: None for _, c in lookups.orders},
        algos=dict.fromkeys(lookups.algos),
        position="2.0" if lookups.positions else None,  # both PROTECTING entries hold 1.0
    )

    # Act
    plan = reconcile(state, snap, ARCHIVED)

    # Assert
    assert all(r.exchange != "nothing to check" for r in plan.rows)
    assert [r.result for r in plan.rows] == [
        Status.NEEDS_ATTENTION, Status.NEEDS_ATTENTION, Status.PROTECTING, Status.PROTECTING,
    ]


# -- property: every plan is write-ahead and never protects a flat position ------------


def _entry_facts(p: Pending) -> dict[str, dict[str, object]]:
    cid_e = client_id(p.pending_id, Leg.ENTRY)
    return {
        "entry not asked": {},
        "entry open NEW": {"open_orders": [order(OrderStatus.NEW)]},
        "entry open 0.4": {"open_orders": [order(OrderStatus.PARTIALLY_FILLED, "0.4")]},
        "entry FILLED": {"orders": {cid_e: order(OrderStatus.FILLED, "1.0")}},
        "entry CANCELED": {"orders": {cid_e: order(OrderStatus.CANCELED)}},
        "entry CANCELED 0.3": {"orders": {cid_e: order(OrderStatus.CANCELED, "0.3")}},
        "entry not found": {"orders": {cid_e: None}},
    }


def _leg_facts(p: Pending) -> dict[str, dict[str, object]]:
    ids = [x.client_id for x in p.protections]
    return {
        "legs not asked": {},
        "legs open": {"open_algos": [algo(x) for x in p.protections]},
        "legs not found": {"algos": dict.fromkeys(ids)},
        "legs fired": {"algos": {x.client_id: algo(x, AlgoStatus.FINISHED) for x in p.protections}},
    }


def _close_facts(p: Pending) -> dict[str, dict[str, object]]:
    if p.close is None:
        return {"no close": {}}
    found = replace(order(OrderStatus.FILLED, "1.0"), client_id=p.close.client_id)
    return {"close not asked": {}, "close found": {"orders": {p.close.client_id: found}},
            "close not found": {"orders": {p.close.client_id: None}}}


def _merge(*parts: dict[str, object]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("orders", "algos") and key in merged:
                merged[key] = {**merged[key], **value}  # type: ignore[dict-item]
            else:
                merged[key] = value
    return merged


def _recorded(p: Pending, send: cm.Command) -> bool:
    if isinstance(send, cm.PlaceEntry):
        return p.status is Status.SUBMITTING
    if isinstance(send, cm.ClosePosition):
        return p.close is not None and p.close.client_id == send.client_id
    if isinstance(send, (cm.PlaceProtection, cm.CancelProtection)):
        return p.find_leg(send.client_id) is not None
    if isinstance(send, cm.CancelEntry):  # by the entry's own id: repeating it is harmless
        return p.pending_id == send.pending_id and not p.status.terminal
    return False


LIVE_STATUSES = [s for s in Status if not s.terminal]


@pytest.mark.parametrize("status", LIVE_STATUSES, ids=lambda s: s.name)
def test_every_plan_persists_before_it_sends_and_spares_flat_positions(status: Status) -> None:
    """Any local state x any answer: persisted before sent; nothing placed for a flat position
    (read twice, so it is believed)."""
    # Arrange
    local = pending(status)
    cases = [
        (f"{e}; {g}; {c}; position {pos}; now {now}", _merge(ef, gf, cf), pos, now)
        for e, ef in _entry_facts(local).items()
        for g, gf in _leg_facts(local).items()
        for c, cf in _close_facts(local).items()
        for pos in (None, "0", "1.0")
        for now in (INSIDE, LATER)
    ]

    for why, facts, pos, now in cases:
        # Act
        plan = plan_for(local, snapshot(position=pos, **facts), now, confirmed=True)  # type: ignore[arg-type]

        # Assert
        (row,) = plan.rows
        cmds = list(row.commands)
        out = sends(cmds)
        new = plan.state.get(PID)
        context = f"{status.name}: {why}: {row.exchange} -> {row.result.name}: {cmds}"
        if row.result.terminal:
            assert out == [], context
            assert isinstance(cmds[-1], cm.ArchivePending), context
        elif new is not None and new != local:
            assert cmds[0] == cm.PersistPending(new), context
        durable = local if new is None or new == local else new
        assert all(_recorded(durable, c) for c in out), context
        if pos == "0":
            assert of_type(cmds, cm.PlaceProtection) == [], context
        if status is not Status.REQUESTED:
            assert of_type(cmds, cm.PlaceEntry) == [], context
