"""Specification of core.engine: the lifecycle table, its rules, and what step() returns.

Every row of TRANSITIONS is exercised from the table itself; every (event, status) pair
without a row must raise and change nothing. The rules that override the table are listed
in one table of their own. Random walks over many event sequences check the write-ahead
promise: whatever step() returns, the journal knows an order before it is sent.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import CONVERGENCE, RULES, TRANSITIONS, open_entry, step, step_many
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import BINANCE_ID, client_id
from bot_cli.core.model import (
    AlgoStatus,
    EntrySpec,
    Leg,
    LegState,
    Millis,
    OrderStatus,
    Pending,
    Policy,
    PositionSide,
    Side,
    Status,
    TriggerPolicy,
)
from tests.core.helpers import (
    ARCHIVED,
    DEADLINE,
    INSIDE,
    LATER,
    ORDER_ID,
    OTHER_PID,
    PID,
    POLICY,
    RECV_WINDOW,
    SPEC,
    T0,
    D,
    cid,
    close_filled,
    leg,
    legs,
    of_type,
    pending,
    sends,
    spec,
)


ALERT = Policy(on_immediate_trigger=TriggerPolicy.ALERT)
SL1, TP1 = cid(Leg.SL, 1), cid(Leg.TP, 1)
SL2, TP2 = cid(Leg.SL, 2), cid(Leg.TP, 2)


def _leg_cid(p: Pending) -> typing.Any:
    """The first protective order of p (an SL of generation 1 when there is none)."""
    return p.protections[0].client_id if p.protections else SL1


# One ordinary event of each type, for an entry p. Quantities are chosen so that no rule
# overrides the table for the canonical pendings of tests.core.helpers (the overrides have
# their own table below).
EVENTS: dict[type, Callable[[Pending], ev.Event]] = {
    ev.EntryClaimed: lambda p: ev.EntryClaimed(p.pending_id),
    ev.EntryAccepted: lambda p: ev.EntryAccepted(p.pending_id, ORDER_ID),
    ev.EntryRejected: lambda p: ev.EntryRejected(p.pending_id, -2019, "Margin is insufficient."),
    ev.EntryOutcomeUnknown: lambda p: ev.EntryOutcomeUnknown(p.pending_id, "read timeout"),
    ev.EntryNotFound: lambda p: ev.EntryNotFound(p.pending_id),
    ev.EntryPartiallyFilled: lambda p: ev.EntryPartiallyFilled(
        p.pending_id, ORDER_ID, D("0.6"), D("100")
    ),
    ev.EntryFilled: lambda p: ev.EntryFilled(p.pending_id, ORDER_ID, D("1.0"), D("100")),
    ev.EntryCanceled: lambda p: ev.EntryCanceled(p.pending_id, ORDER_ID),
    ev.EntryCanceledPartFilled: lambda p: ev.EntryCanceledPartFilled(
        p.pending_id, ORDER_ID, D("0.7"), D("100")
    ),
    ev.ProtectionReport: lambda p: ev.ProtectionReport(p.pending_id, _leg_cid(p), AlgoStatus.NEW),
    ev.ProtectionDeferred: lambda p: ev.ProtectionDeferred(p.pending_id, _leg_cid(p), "HTTP 429", 2_000),
    ev.ProtectionLimited: lambda p: ev.ProtectionLimited(
        p.pending_id, _leg_cid(p), -4045, "Reach max stop order limit."
    ),
    ev.ProtectionRejected: lambda p: ev.ProtectionRejected(
        p.pending_id, _leg_cid(p), -4005, "Quantity greater than max quantity."
    ),
    ev.ProtectionWouldTrigger: lambda p: ev.ProtectionWouldTrigger(
        p.pending_id, _leg_cid(p), -2021, "Order would immediately trigger."
    ),
    ev.ProtectionOutcomeUnknown: lambda p: ev.ProtectionOutcomeUnknown(
        p.pending_id, _leg_cid(p), "HTTP 503"
    ),
    ev.ProtectionNotFound: lambda p: ev.ProtectionNotFound(p.pending_id, _leg_cid(p)),
    ev.ProtectionCanceled: lambda p: ev.ProtectionCanceled(p.pending_id, _leg_cid(p)),
    ev.PositionReport: lambda p: ev.PositionReport(p.pending_id, p.filled_qty or D("1.0")),
    ev.PositionUnconfirmed: lambda p: ev.PositionUnconfirmed(p.pending_id),
    ev.ShareTaken: lambda p: ev.ShareTaken(p.pending_id, cid(Leg.TP, 1, OTHER_PID), D("0.1"), OTHER_PID, "TP"),
    ev.CloseReport: lambda p: ev.CloseReport(
        p.pending_id, p.close.client_id if p.close else cid(Leg.CLOSE, 2), OrderStatus.FILLED, D("1.0")
    ),
    ev.CloseFailed: lambda p: ev.CloseFailed(p.pending_id, "ReduceOnly Order is rejected.", -2022),
    ev.CloseDeferred: lambda p: ev.CloseDeferred(p.pending_id, "HTTP 503 Service Unavailable", 1_000),
    ev.CloseOutcomeUnknown: lambda p: ev.CloseOutcomeUnknown(p.pending_id, "read timeout"),
    ev.CloseNotFound: lambda p: ev.CloseNotFound(p.pending_id),
    ev.QueryFailed: lambda p: ev.QueryFailed(p.pending_id, "read timeout"),
    ev.SendDelayed: lambda p: ev.SendDelayed(p.pending_id, _leg_cid(p), T0),
    ev.CheckDue: lambda p: ev.CheckDue(p.pending_id),
    ev.EvidenceConflict: lambda p: ev.EvidenceConflict(p.pending_id, "entry REJECTED after fills were seen"),
    ev.OperatorCancel: lambda p: ev.OperatorCancel(p.pending_id),
    ev.OperatorClose: lambda p: ev.OperatorClose(p.pending_id),
    ev.OperatorAmend: lambda p: ev.OperatorAmend(p.pending_id, stop_loss=p.spec.stop_loss - 1),
    ev.OperatorDrop: lambda p: ev.OperatorDrop(p.pending_id, "operator: test entry"),
}

ROWS = [
    pytest.param(
        event_type, status, target, id=f"{event_type.__name__}: {status.name} -> {target.name}"
    )
    for event_type, row in TRANSITIONS.items()
    for status, target in row.items()
]
MISSING = [
    pytest.param(event_type, status, id=f"{event_type.__name__} in {status.name}")
    for event_type in TRANSITIONS
    for status in Status
    if status not in TRANSITIONS[event_type]
]


# -- the table ------------------------------------------------------------------------


def test_every_event_type_has_a_row_set() -> None:
    """Every member of the Event union has an entry in TRANSITIONS (and an event builder here)."""
    # Arrange
    union = set(typing.get_args(ev.Event))

    # Act
    in_table = set(TRANSITIONS)

    # Assert
    assert in_table == union
    assert set(EVENTS) == union


def test_terminal_statuses_accept_no_event() -> None:
    """Once archived (CANCELED, NOT_PLACED, CLOSED, DROPPED), no event has a row; PROTECTED rests."""
    # Arrange
    terminal = {s for s in Status if s.terminal}

    # Act
    rows_from_terminal = {
        (e.__name__, s.name) for e, row in TRANSITIONS.items() for s in row if s in terminal
    }

    # Assert
    assert terminal == {Status.CANCELED, Status.NOT_PLACED, Status.CLOSED, Status.DROPPED}
    assert rows_from_terminal == set()


@pytest.mark.parametrize(("event_type", "status", "target"), ROWS)
def test_every_row_lands_in_its_target(event_type: type[ev.Event], status: Status, target: Status) -> None:
    """An ordinary event of each row moves the entry to the table's target status."""
    # Arrange
    p = pending(status)
    event = EVENTS[event_type](p)

    # Act
    q, cmds = step(p, event, INSIDE)

    # Assert: the table's target, or a move convergence makes from it (CONVERGENCE lists them)
    assert q.status is target or q.status in CONVERGENCE[target]
    if q.status.terminal:
        assert cmds[-1] == cm.ArchivePending(q, q.reason or q.status.name.lower())


@dataclass(frozen=True)
class Override:
    why: str
    p: Pending
    event: ev.Event
    expected: Status
    now: Millis = INSIDE
    policy: Policy = POLICY


LIVE_PROTECTING = pending(Status.PROTECTING, protections=legs(1, "1.0", LegState.LIVE))
OVERRIDES = [
    Override(
        "SUBMITTING not found past timestamp + recvWindow + margin, nor by a cancel: never placed",
        pending(Status.SUBMITTING), ev.EntryNotFound(PID, after_cancel=True), Status.NOT_PLACED, now=LATER,
    ),
    Override(
        "OPEN not found past the 3-day archive rule, position flat: canceled with no fill",
        pending(Status.OPEN), ev.EntryNotFound(PID, D(0)), Status.CANCELED, now=ARCHIVED,
    ),
    Override(
        "OPEN not found past the 3-day archive rule, position open: the position does not settle it",
        pending(Status.OPEN), ev.EntryNotFound(PID, D("1.0")), Status.NEEDS_ATTENTION, now=ARCHIVED,
    ),
    Override(
        "OPEN not found past the 3-day archive rule, position unknown: needs attention",
        pending(Status.OPEN), ev.EntryNotFound(PID), Status.NEEDS_ATTENTION, now=ARCHIVED,
    ),
    Override(
        "PARTIALLY_FILLED not found past the 3-day archive rule, position flat: wind down",
        pending(Status.PARTIALLY_FILLED), ev.EntryNotFound(PID, D(0)), Status.EXITING, now=ARCHIVED,
    ),
    Override(
        "PROTECTING, the SL fired: the stop did its job, wind down the TP",
        LIVE_PROTECTING, ev.ProtectionReport(PID, SL1, AlgoStatus.TRIGGERED), Status.EXITING,
    ),
    Override(
        "PARTIALLY_FILLED, a leg fired while the entry still works: its sibling is cancelled (EXITING)",
        pending(Status.PARTIALLY_FILLED), ev.ProtectionReport(PID, SL1, AlgoStatus.FINISHED, D("0.4")),
        Status.EXITING,
    ),
    Override(
        "PROTECTED, a leg fired: the other leg is cancelled (the bot is the OCO)",
        pending(Status.PROTECTED), ev.ProtectionReport(PID, TP1, AlgoStatus.TRIGGERED), Status.EXITING,
    ),
    Override(
        "PROTECTED, the position went flat outside its orders: wind down",
        pending(Status.PROTECTED), ev.PositionReport(PID, D(0)), Status.EXITING,
    ),
    Override(
        "PROTECTING, the last leg of the generation acknowledged: PROTECTED",
        pending(Status.PROTECTING, protections=(
            leg(Leg.SL, 1, "1.0", LegState.LIVE), leg(Leg.TP, 1, "1.0", LegState.SENDING)
        )),
        ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), Status.PROTECTED,
    ),
    Override(
        "PROTECTING, the last allowed protection attempt refused: needs attention",
        pending(Status.PROTECTING, attempts=POLICY.max_protection_attempts - 1),
        ev.ProtectionRejected(PID, SL1, -4005, "Quantity greater than max quantity."),
        Status.NEEDS_ATTENTION,
    ),
    Override(
        "PROTECTING, trigger already crossed, policy alert: needs attention",
        pending(Status.PROTECTING), ev.ProtectionWouldTrigger(PID, SL1, -2021, "would trigger"),
        Status.NEEDS_ATTENTION, policy=ALERT,
    ),
    Override(
        "PROTECTING, position flat and nothing placed: CLOSED",
        pending(Status.PROTECTING, protections=()), ev.PositionReport(PID, D(0)), Status.CLOSED,
    ),
    Override(
        "PROTECTING, position flat while legs are in flight: wind down",
        pending(Status.PROTECTING), ev.PositionReport(PID, D(0)), Status.EXITING,
    ),
    Override(
        "CLOSING, close acknowledged and nothing else live: CLOSED",
        pending(Status.EXITING, protections=()), close_filled(pending(Status.EXITING)), Status.CLOSED,
    ),
    Override(
        "PROTECTING, last superseded leg canceled: PROTECTED",
        pending(Status.PROTECTING, gen=2, protections=(
            leg(Leg.SL, 1, "0.4", LegState.CANCELING), *legs(2, "1.0", LegState.LIVE),
        )),
        ev.ProtectionCanceled(PID, SL1), Status.PROTECTED,
    ),
    Override(
        "PARTIALLY_FILLED canceled with the filled part already covered: PROTECTED",
        pending(Status.PARTIALLY_FILLED),
        ev.EntryCanceledPartFilled(PID, ORDER_ID, D("0.4"), D("100")), Status.PROTECTED,
    ),
    Override(
        "REQUESTED claimed after the request's time to live: never sent",
        pending(Status.REQUESTED), ev.EntryClaimed(PID), Status.NOT_PLACED,
        now=T0 + POLICY.request_ttl_ms + 1,
    ),
]


@pytest.mark.parametrize("case", [pytest.param(o, id=o.why) for o in OVERRIDES])
def test_rules_override_the_table_where_documented(case: Override) -> None:
    """The few rules that decide beyond the table land where their rule says."""
    # Arrange
    table_target = TRANSITIONS[type(case.event)][case.p.status]

    # Act
    q, _ = step(case.p, case.event, case.now, case.policy)

    # Assert
    assert q.status is case.expected
    assert q.status is not table_target
    allowed = {table_target, *RULES.get(type(case.event), ())}  # ...or one convergence move on
    assert case.expected in allowed or any(case.expected in CONVERGENCE.get(s, ()) for s in allowed)


@pytest.mark.parametrize(("event_type", "status"), MISSING)
def test_event_without_a_row_raises_and_changes_nothing(event_type: type[ev.Event], status: Status) -> None:
    """No row: InvalidTransition naming the event type, the status and the pending id."""
    # Arrange
    p = pending(status)
    before = replace(p)
    event = EVENTS[event_type](p)

    # Act
    with pytest.raises(InvalidTransition) as raised:
        step(p, event, INSIDE)

    # Assert
    assert str(raised.value) == f"can't handle {event_type.__name__} in {status.name} for {PID}"
    assert p == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.status = Status.OPEN  # type: ignore[misc]


def test_invalid_event_inside_a_batch_changes_nothing() -> None:
    """step_many raises on the first event with no row, even after valid ones."""
    # Arrange
    p = pending(Status.SUBMITTING)
    before = replace(p)
    batch: list[ev.Event] = [ev.EntryAccepted(PID, ORDER_ID), close_filled(pending(Status.EXITING))]

    # Act
    with pytest.raises(InvalidTransition, match="can't handle CloseReport in OPEN for"):
        step_many(p, batch, INSIDE)

    # Assert
    assert p == before


# -- opening an entry -----------------------------------------------------------------


def test_open_entry_persists_before_it_sends() -> None:
    """open_entry returns [PersistPending, PlaceEntry] in that order, under the entry's id."""
    # Arrange
    entry = spec(Side.SELL, "0.003", price="101.5", stop_loss="103", take_profit="99")

    # Act
    p, cmds = open_entry(PID, entry, T0, RECV_WINDOW)

    # Assert
    assert cmds == [
        cm.PersistPending(p, new=True),
        cm.PlaceEntry(
            PID, client_id(PID, Leg.ENTRY), "BTCUSDT", Side.SELL, entry.order_type, D("0.003"),
            D("101.5"), PositionSide.BOTH,
        ),
    ]
    assert (p.status, p.sent_at, p.recv_window_ms, p.filled_qty) == (
        Status.SUBMITTING, T0, RECV_WINDOW, D(0)
    )


def test_open_entry_is_deterministic() -> None:
    """The same pending id always yields the same client id: a restart finds the order by it."""
    # Arrange
    first, _ = open_entry(PID, SPEC, T0, RECV_WINDOW)

    # Act
    _, cmds = open_entry(PID, SPEC, T0 + 99, RECV_WINDOW)

    # Assert
    (placed,) = of_type(cmds, cm.PlaceEntry)
    assert placed.client_id == f"{PID}-e" == client_id(first.pending_id, Leg.ENTRY)
    assert BINANCE_ID.match(placed.client_id)


# -- unknown outcomes and the not-found window ---------------------------------------


def test_unknown_outcome_is_resolved_by_query_never_by_resend() -> None:
    """A timed-out entry send becomes a query by client id, however many times it happens."""
    # Arrange
    p = pending(Status.SUBMITTING)

    # Act
    q1, cmds1 = step(p, ev.EntryOutcomeUnknown(PID, "read timeout"), INSIDE)
    q2, cmds2 = step(q1, ev.EntryOutcomeUnknown(PID, "HTTP 503 Unknown error"), INSIDE + 1)
    q3, cmds3 = step(q2, ev.CheckDue(PID), INSIDE + 2)

    # Assert
    query = cm.QueryEntry(PID, "BTCUSDT", client_id(PID, Leg.ENTRY))
    assert cmds1 == [cm.PersistPending(q1), query]
    assert cmds2 == [cm.PersistPending(q2), query]
    assert cmds3 == [query]
    assert q3.status is Status.SUBMITTING
    assert "entry outcome unknown (read timeout); querying by client id" in [
        n.text for n in q1.history
    ]


@pytest.mark.parametrize("now", [T0, DEADLINE - 1], ids=["at the send", "one ms before the deadline"])
def test_entry_not_found_inside_the_window_proves_nothing(now: int) -> None:
    """-2013 inside sent_at + recvWindow + margin: the request may still land; ask again then."""
    # Arrange
    p = pending(Status.SUBMITTING)

    # Act
    q, cmds = step(p, ev.EntryNotFound(PID), now)

    # Assert
    assert q == p
    assert cmds == [cm.ScheduleCheck(PID, max(DEADLINE, now + POLICY.recheck_ms))]


@pytest.mark.parametrize("now", [DEADLINE, LATER], ids=["at the deadline", "long after"])
def test_entry_not_found_past_the_window_is_cancelled_by_id_before_it_is_called_never_placed(now: int) -> None:
    """A read may lag; a cancel by client id reaches the matching engine. Past the window the
    entry is cancelled by id (with a wake-up), and only a cancel that finds no such order proves
    it never landed: NOT_PLACED."""
    # Arrange
    p = pending(Status.SUBMITTING)

    # Act
    probing, probe = step(p, ev.EntryNotFound(PID), now)
    q, cmds = step(probing, ev.EntryNotFound(PID, after_cancel=True), now + 1)

    # Assert
    assert probing.status is Status.SUBMITTING
    assert probe[1:] == [cm.CancelEntry(PID, "BTCUSDT", client_id(PID, Leg.ENTRY)),
                         cm.ScheduleCheck(PID, now + POLICY.recheck_ms)]
    assert q.status is Status.NOT_PLACED
    assert cmds == [cm.ArchivePending(q, "never placed: not found after its recvWindow, and a cancel by its"
                                         " id found no such order")]


def test_an_entry_the_cancel_finds_had_landed_unseen_and_ends_cancelled() -> None:
    """The probe's cancel succeeds: the order existed after all; it ends CANCELED, and a fill it
    had is protected (it never rests unwatched)."""
    # Arrange
    p = pending(Status.SUBMITTING)
    probing, _ = step(p, ev.EntryNotFound(PID), LATER)

    # Act
    gone, _ = step(probing, ev.EntryCanceled(PID, ORDER_ID), LATER + 1)
    part, cmds = step(probing, ev.EntryCanceledPartFilled(PID, ORDER_ID, D("0.4"), D("100")), LATER + 1)

    # Assert
    assert gone.status is Status.CANCELED
    assert part.status is Status.PROTECTING
    assert [c.quantity for c in of_type(cmds, cm.PlaceProtection)] == [D("0.4"), D("0.4")]


def test_entry_seen_late_is_adopted() -> None:
    """Not found inside the window, then found on the next check: adopted as OPEN."""
    # Arrange
    p = pending(Status.SUBMITTING)
    waiting, _ = step(p, ev.EntryNotFound(PID), INSIDE)

    # Act
    _, check = step(waiting, ev.CheckDue(PID), DEADLINE - 1)
    q, cmds = step(waiting, ev.EntryAccepted(PID, ORDER_ID), DEADLINE - 1)

    # Assert
    assert check == [cm.QueryEntry(PID, "BTCUSDT", client_id(PID, Leg.ENTRY))]
    assert (q.status, q.order_id) == (Status.OPEN, ORDER_ID)
    assert cmds == [cm.PersistPending(q)]


def test_entry_rejected_is_archived_as_not_placed() -> None:
    """A definite rejection archives the entry with the exchange's code and message."""
    # Arrange
    p = pending(Status.SUBMITTING)

    # Act
    q, cmds = step(p, ev.EntryRejected(PID, -2019, "Margin is insufficient."), INSIDE)

    # Assert
    assert q.status is Status.NOT_PLACED
    assert cmds == [cm.ArchivePending(q, "entry rejected (-2019): Margin is insufficient.")]


def test_claimed_request_is_persisted_as_submitting_before_it_is_sent() -> None:
    """A REQUESTED entry claimed in time: persisted as SUBMITTING with its send time, then sent."""
    # Arrange
    p = pending(Status.REQUESTED)

    # Act
    q, cmds = step(p, ev.EntryClaimed(PID), INSIDE)

    # Assert
    assert (q.status, q.sent_at) == (Status.SUBMITTING, INSIDE)
    assert cmds == [
        cm.PersistPending(q),
        cm.PlaceEntry(PID, client_id(PID, Leg.ENTRY), "BTCUSDT", Side.BUY, SPEC.order_type,
                      D("1.0"), D("100"), PositionSide.BOTH),
    ]


# -- fills and protection -------------------------------------------------------------


def test_first_partial_fill_is_protected_for_the_filled_quantity() -> None:
    """The first fill places SL and TP at once, opposite side, for the cumulative filled qty."""
    # Arrange
    p = pending(Status.OPEN)

    # Act
    q, cmds = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.4"), D("100")), INSIDE)

    # Assert
    sl1, tp1 = legs(1, "0.4", LegState.SENDING, sent_at=INSIDE)
    assert q.status is Status.PARTIALLY_FILLED
    assert q.protections == (sl1, tp1)
    assert cmds == [
        cm.PersistPending(q),
        cm.PlaceProtection(PID, SL1, Leg.SL, "BTCUSDT", Side.SELL, D("0.4"), D("95"),
                           PositionSide.BOTH),
        cm.PlaceProtection(PID, TP1, Leg.TP, "BTCUSDT", Side.SELL, D("0.4"), D("110"),
                           PositionSide.BOTH),
    ]


@pytest.mark.parametrize(
    ("entry", "close_side"),
    [
        pytest.param(spec(Side.BUY), Side.SELL, id="long one-way: protections sell"),
        pytest.param(spec(Side.SELL, stop_loss="105", take_profit="90"), Side.BUY,
                     id="short one-way: protections buy"),
        pytest.param(spec(Side.BUY, position_side=PositionSide.LONG), Side.SELL,
                     id="long hedge mode: positionSide LONG carried"),
    ],
)
def test_protection_is_on_the_opposite_side_and_position_side(entry: EntrySpec, close_side: Side) -> None:
    """Protective orders close the entry: opposite side, same position side, spec's triggers."""
    # Arrange
    p = pending(Status.OPEN, spec=entry)

    # Act
    _, cmds = step(p, ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")), INSIDE)

    # Assert
    placed = of_type(cmds, cm.PlaceProtection)
    assert [(c.leg, c.side, c.trigger_price, c.position_side) for c in placed] == [
        (Leg.SL, close_side, entry.stop_loss, entry.position_side),
        (Leg.TP, close_side, entry.take_profit, entry.position_side),
    ]


def test_entry_without_take_profit_gets_only_a_stop() -> None:
    """A spec with no TP is protected by an SL alone and PROTECTED once it is acknowledged."""
    # Arrange
    entry = spec(take_profit=None)
    p = pending(Status.OPEN, spec=entry)

    # Act
    q1, cmds1 = step(p, ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")), INSIDE)
    q2, cmds2 = step(q1, ev.ProtectionReport(PID, SL1, AlgoStatus.NEW), INSIDE + 1)

    # Assert
    assert [c.client_id for c in of_type(cmds1, cm.PlaceProtection)] == [SL1]
    assert q2.status is Status.PROTECTED
    assert cmds2 == [cm.PersistPending(q2)]  # resting in the journal, not archived


def test_more_fills_resize_with_a_new_generation_and_cancel_each_old_leg_after_its_new_one() -> None:
    """A further fill places a new SL and TP (generation 2) under new ids; each old leg goes
    once the new leg of its kind is acknowledged."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED)  # generation 1 live for 0.4

    # Act
    grown, placed = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.7"), D("100")), INSIDE)
    half, after_sl = step(grown, ev.ProtectionReport(PID, SL2, AlgoStatus.NEW), INSIDE + 1)
    both, after_tp = step(half, ev.ProtectionReport(PID, TP2, AlgoStatus.NEW), INSIDE + 2)

    # Assert
    assert sends(placed) == of_type(placed, cm.PlaceProtection)
    assert [c.client_id for c in of_type(placed, cm.PlaceProtection)] == [SL2, TP2]
    assert [c.quantity for c in of_type(placed, cm.PlaceProtection)] == [D("0.7"), D("0.7")]
    assert {SL2, TP2}.isdisjoint({SL1, TP1})
    assert sends(after_sl) == [cm.CancelProtection(PID, SL1)]
    assert after_tp == [cm.PersistPending(both), cm.CancelProtection(PID, TP1)]
    assert [(x.client_id, x.state) for x in both.protections] == [
        (SL1, LegState.CANCELING), (TP1, LegState.CANCELING),
        (SL2, LegState.LIVE), (TP2, LegState.LIVE),
    ]


def test_full_lifecycle_from_partial_fills_to_protected() -> None:
    """Fills of 0.4, 0.7, 1.0 end PROTECTED for 1.0 with one live SL and TP, kept in the journal."""
    # Arrange
    p, _ = open_entry(PID, SPEC, T0, RECV_WINDOW)
    script: list[ev.Event] = [
        ev.EntryAccepted(PID, ORDER_ID),
        ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.4"), D("100")),
        ev.ProtectionReport(PID, SL1, AlgoStatus.NEW),
        ev.ProtectionReport(PID, TP1, AlgoStatus.NEW),
        ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.7"), D("100")),
        ev.ProtectionReport(PID, SL2, AlgoStatus.NEW),
        ev.ProtectionReport(PID, TP2, AlgoStatus.NEW),
        ev.ProtectionCanceled(PID, SL1),
        ev.ProtectionCanceled(PID, TP1),
        ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")),
        ev.ProtectionReport(PID, cid(Leg.SL, 3), AlgoStatus.NEW),
        ev.ProtectionReport(PID, cid(Leg.TP, 3), AlgoStatus.NEW),
        ev.ProtectionCanceled(PID, SL2),
    ]
    for i, event in enumerate(script):
        p, _ = step(p, event, T0 + 10 * (i + 1))

    # Act
    q, cmds = step(p, ev.ProtectionCanceled(PID, TP2), T0 + 1_000)

    # Assert
    assert q.status is Status.PROTECTED
    assert cmds == [cm.PersistPending(q)]
    assert [(x.client_id, x.quantity, x.state) for x in q.protections] == [
        (cid(Leg.SL, 3), D("1.0"), LegState.LIVE), (cid(Leg.TP, 3), D("1.0"), LegState.LIVE),
    ]


def test_a_fill_while_a_leg_is_in_flight_waits_for_that_leg_s_answer() -> None:
    """No new leg of a kind while its previous one's outcome is open (ids stay one per live
    order); each kind is resized as soon as its own answer is in."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, protections=legs(1, "0.4", LegState.SENDING))

    # Act
    q, cmds = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.7"), D("100")), INSIDE)
    r, later = step(q, ev.ProtectionReport(PID, SL1, AlgoStatus.NEW), INSIDE + 1)
    s, last = step(r, ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), INSIDE + 2)

    # Assert
    assert sends(cmds) == []
    assert [(c.client_id, c.quantity) for c in of_type(later, cm.PlaceProtection)] == [(SL2, D("0.7"))]
    assert [(c.client_id, c.quantity) for c in of_type(last, cm.PlaceProtection)] == [
        (cid(Leg.TP, 3), D("0.7"))]
    assert s.gen == 3


def test_stale_smaller_fill_never_shrinks_the_filled_quantity() -> None:
    """Fill reports are cumulative; an older, smaller one changes nothing."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED)

    # Act
    q, cmds = step(p, ev.EntryPartiallyFilled(PID, ORDER_ID, D("0.2"), D("99")), INSIDE)

    # Assert
    assert q == p
    assert cmds == []


# -- trigger already crossed (-2021 / -4142) ------------------------------------------


@pytest.mark.parametrize(
    ("entry", "close_side"),
    [
        pytest.param(SPEC, Side.SELL, id="long: close sells"),
        pytest.param(spec(Side.SELL, stop_loss="105", take_profit="90"), Side.BUY,
                     id="short: close buys"),
    ],
)
def test_crossed_trigger_with_close_policy_closes_the_filled_quantity(entry: EntrySpec, close_side: Side) -> None:
    """-2021, policy close: reduce-only market close of the filled qty; live legs canceled."""
    # Arrange
    p = pending(Status.PROTECTING, spec=entry, protections=(
        leg(Leg.SL, 1, "1.0", LegState.SENDING, entry=entry),
        leg(Leg.TP, 1, "1.0", LegState.LIVE, entry=entry),
    ))
    event = ev.ProtectionWouldTrigger(PID, SL1, -2021, "Order would immediately trigger.")

    # Act
    q, cmds = step(p, event, INSIDE)

    # Assert: the live TP is cancelled first; the close waits until nothing else of it is live
    assert q.status is Status.EXITING
    assert q.flatten
    assert cmds == [cm.PersistPending(q), cm.CancelProtection(PID, TP1, urgent=True)]
    r, then = step(q, ev.ProtectionCanceled(PID, TP1), INSIDE + 1)
    x2 = cid(Leg.CLOSE, 2)
    assert then == [
        cm.PersistPending(r), cm.ClosePosition(PID, x2, "BTCUSDT", close_side, D("1.0"), PositionSide.BOTH),
    ]
    assert f"{SL1} trigger {entry.stop_loss} already crossed (-2021); policy close" in [
        n.text for n in q.history
    ]


def test_closing_ends_closed_and_archived_once_the_close_and_cancels_land() -> None:
    """CLOSING ends when the close is acknowledged and no protection is left: CLOSED, archived."""
    # Arrange
    p = pending(Status.PROTECTING, protections=(
        leg(Leg.SL, 1, "1.0", LegState.SENDING), leg(Leg.TP, 1, "1.0", LegState.LIVE),
    ))
    closing, _ = step(p, ev.ProtectionWouldTrigger(PID, SL1, -2021, "would trigger"), INSIDE)

    # Act
    canceled, cmds1 = step(closing, ev.ProtectionCanceled(PID, TP1), INSIDE + 1)
    done, cmds2 = step(canceled, close_filled(canceled), INSIDE + 2)

    # Assert
    assert canceled.status is Status.EXITING
    assert [type(c) for c in cmds1] == [cm.PersistPending, cm.ClosePosition]
    assert done.status is Status.CLOSED
    assert done.exits[-1].quantity == D("1.0")
    assert cmds2 == [cm.ArchivePending(done, done.reason)]
    assert done.reason == f"{SL1} trigger 95 already crossed (-2021); closed at market"


def test_crossed_trigger_with_alert_policy_needs_attention() -> None:
    """-2021 with policy alert: NEEDS_ATTENTION and an Alert; nothing is closed."""
    # Arrange
    p = pending(Status.PROTECTING)

    # Act
    q, cmds = step(p, ev.ProtectionWouldTrigger(PID, SL1, -4142, "would trigger"), INSIDE, ALERT)

    # Assert
    assert q.status is Status.NEEDS_ATTENTION
    assert q.reason == (
        f"{SL1} trigger 95 already crossed (-4142); policy alert: position left as is"
    )
    assert cmds[:2] == [cm.PersistPending(q), cm.Alert(PID, q.reason)]


def test_close_that_fails_needs_attention() -> None:
    """A market close definitely refused is for a human: NEEDS_ATTENTION + Alert."""
    # Arrange
    p = pending(Status.EXITING)

    # Act
    q, cmds = step(p, ev.CloseFailed(PID, "ReduceOnly Order is rejected."), INSIDE)

    # Assert
    assert q.status is Status.NEEDS_ATTENTION
    assert cmds[:2] == [
        cm.PersistPending(q), cm.Alert(PID, "market close refused: ReduceOnly Order is rejected.")
    ]


def test_close_not_found_past_its_window_is_sent_again_under_the_same_id() -> None:
    """A close that never landed is re-sent with the same client id (no duplicate possible)."""
    # Arrange
    p = pending(Status.EXITING)

    # Act
    q, cmds = step(p, ev.CloseNotFound(PID), LATER)

    # Assert
    assert q.close is not None
    assert (q.close.client_id, q.close.state, q.close.sent_at) == (
        cid(Leg.CLOSE, 2), LegState.SENDING, LATER
    )
    assert cmds == [
        cm.PersistPending(q),
        cm.ClosePosition(PID, cid(Leg.CLOSE, 2), "BTCUSDT", Side.SELL, D("1.0"), PositionSide.BOTH),
    ]


@pytest.mark.parametrize("fired", [AlgoStatus.TRIGGERED, AlgoStatus.FINISHED], ids=lambda s: s.name)
def test_a_protection_firing_while_closing_is_dropped_and_closing_goes_on(fired: AlgoStatus) -> None:
    """While EXITING, a leg that fires closes part of the share: what it executed leaves the
    share, and the close waits until the fired leg has reported."""
    # Arrange
    p = pending(Status.EXITING, close=None, protections=(leg(Leg.TP, 1, "1.0", LegState.SENDING),))

    # Act
    q, cmds = step(p, ev.ProtectionReport(PID, TP1, fired, D("1.0")), INSIDE)

    # Assert
    if fired is AlgoStatus.FINISHED:
        assert (q.status, q.protections, q.share) == (Status.CLOSED, (), D(0))
        assert cmds == [cm.ArchivePending(q, q.reason)]
    else:
        assert q.status is Status.EXITING
        assert q.protections[0].state is LegState.FIRED
        assert sends(cmds) == []


def test_a_leg_that_never_landed_is_not_sent_again_while_closing() -> None:
    """While CLOSING, a protection proven never placed is forgotten, not re-sent."""
    # Arrange
    p = pending(Status.EXITING, protections=(leg(Leg.TP, 1, "1.0", LegState.SENDING),))

    # Act
    q, cmds = step(p, ev.ProtectionNotFound(PID, TP1), LATER)

    # Assert
    assert (q.status, q.protections) == (Status.EXITING, ())
    assert sends(cmds) == []


# -- protection refused -------------------------------------------------------------


def test_rejected_protection_is_retried_later_not_at_once() -> None:
    """A definite rejection schedules a retry: nothing before retry_at, a new generation after."""
    # Arrange
    p = pending(Status.PROTECTING)
    refused = ev.ProtectionRejected(PID, SL1, -4005, "Quantity greater than max quantity.")

    # Act
    q, cmds = step(p, refused, INSIDE)
    r, early = step(q, ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), INSIDE + 1)
    s, due = step(r, ev.CheckDue(PID), INSIDE + POLICY.recheck_ms)

    # Assert: only the refused leg is sent again; the live TP stays as it is
    assert (q.attempts, q.retry_at) == (1, INSIDE + POLICY.recheck_ms)
    assert cmds == [cm.PersistPending(q), cm.ScheduleCheck(PID, INSIDE + POLICY.recheck_ms)]
    assert sends(early) == []
    assert [c.client_id for c in sends(due)] == [SL2]
    assert s.status is Status.PROTECTING


def test_protection_refused_max_times_needs_attention_even_when_the_tp_is_accepted() -> None:
    """An SL refused on every attempt ends NEEDS_ATTENTION, though each attempt's TP is accepted."""
    # Arrange
    p = pending(Status.PROTECTING)
    now = INSIDE
    outcomes: list[list[cm.Command]] = []

    # Act
    for _ in range(POLICY.max_protection_attempts):
        sl, tp = p.current(Leg.SL), p.current(Leg.TP)
        assert sl is not None
        assert tp is not None
        p, cmds = step(p, ev.ProtectionRejected(PID, sl.client_id, -4005, "refused"), now)
        outcomes.append(cmds)
        if p.status is Status.NEEDS_ATTENTION:
            break
        if tp.state is LegState.SENDING:
            p, _ = step(p, ev.ProtectionReport(PID, tp.client_id, AlgoStatus.NEW), now + 1)
        now = p.retry_at
        p, _ = step(p, ev.CheckDue(PID), now)

    # Assert
    assert p.status is Status.NEEDS_ATTENTION
    assert p.attempts == POLICY.max_protection_attempts
    assert outcomes[-1][:2] == [cm.PersistPending(p), cm.Alert(PID, p.reason)]
    assert p.reason == (
        f"protection refused {POLICY.max_protection_attempts} times; last (-4005) refused"
    )


def test_successful_generation_resets_the_attempt_count() -> None:
    """Once a generation is fully acknowledged, earlier refusals no longer count."""
    # Arrange
    p = pending(Status.PARTIALLY_FILLED, attempts=3, retry_at=INSIDE,
                protections=(leg(Leg.SL, 1, "0.4", LegState.LIVE),
                             leg(Leg.TP, 1, "0.4", LegState.SENDING)))

    # Act
    q, _ = step(p, ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), INSIDE)

    # Assert
    assert q.attempts == 0


# -- position flat --------------------------------------------------------------------


def test_position_flat_when_protection_would_be_placed_places_nothing() -> None:
    """Filled but its share already flat: nothing placed, archived as CLOSED with the reason."""
    # Arrange
    p = pending(Status.OPEN)

    # Act
    q, cmds = step_many(p, [ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")),
                            ev.PositionReport(PID, D(0))], INSIDE)

    # Assert: the share the position took is said (an alert), then the entry archived
    assert q.status is Status.CLOSED
    assert [type(c) for c in cmds] == [cm.Alert, cm.ArchivePending]
    assert cmds[-1] == cm.ArchivePending(q, "position closed outside the bot")
    assert of_type(cmds, cm.Alert)[0].kind == "share_lost"


# -- operator drop --------------------------------------------------------------------


@pytest.mark.parametrize("status", list(TRANSITIONS[ev.OperatorDrop]), ids=lambda s: s.name)
def test_operator_drop_archives_with_the_reason(status: Status) -> None:
    """OperatorDrop in any live status: DROPPED and archived (never erased) with the reason."""
    # Arrange
    p = pending(status)

    # Act
    q, cmds = step(p, ev.OperatorDrop(PID, "duplicate entry, closed by hand"), INSIDE)

    # Assert
    assert (q.status, q.reason) == (Status.DROPPED, "duplicate entry, closed by hand")
    assert cmds == [cm.ArchivePending(q, "duplicate entry, closed by hand")]


# -- operator cancel and close ---------------------------------------------------------


def test_operator_cancel_of_a_working_entry_cancels_its_order_and_protects_what_filled() -> None:
    # Arrange
    p = pending(Status.PARTIALLY_FILLED)

    # Act
    q, cmds = step(p, ev.OperatorCancel(PID), INSIDE)
    r, then = step(q, ev.EntryCanceledPartFilled(PID, ORDER_ID, D("0.6"), D("100")), INSIDE + 1)

    # Assert
    assert of_type(cmds, cm.CancelEntry) == [cm.CancelEntry(PID, "BTCUSDT", cid(Leg.ENTRY))]
    assert r.status is Status.PROTECTING
    assert [c.quantity for c in of_type(then, cm.PlaceProtection)] == [D("0.6"), D("0.6")]


def test_operator_cancel_with_close_closes_what_filled_after_the_cancel() -> None:
    # Arrange
    p = pending(Status.OPEN)

    # Act
    q, cmds = step(p, ev.OperatorCancel(PID, close=True), INSIDE)
    r, then = step(q, ev.EntryCanceledPartFilled(PID, ORDER_ID, D("0.3"), D("100")), INSIDE + 1)

    # Assert
    assert q.status is Status.OPEN
    assert q.flatten
    assert of_type(cmds, cm.CancelEntry)
    assert r.status is Status.EXITING
    assert [c.quantity for c in of_type(then, cm.ClosePosition)] == [D("0.3")]


def test_operator_cancel_of_a_request_not_yet_sent_archives_it() -> None:
    q, cmds = step(pending(Status.REQUESTED), ev.OperatorCancel(PID), INSIDE)
    assert q.status is Status.CANCELED
    assert cmds == [cm.ArchivePending(q, q.reason)]


def test_operator_close_of_a_protected_entry_cancels_its_legs_then_closes_its_share() -> None:
    # Arrange
    p = pending(Status.PROTECTED)

    # Act
    q, cmds = step(p, ev.OperatorClose(PID), INSIDE)
    r, _ = step(q, ev.ProtectionCanceled(PID, SL1), INSIDE + 1)
    s_, closing = step(r, ev.ProtectionCanceled(PID, TP1), INSIDE + 2)
    done, _out = step(s_, close_filled(s_), INSIDE + 3)

    # Assert
    assert q.status is Status.EXITING
    assert set(of_type(cmds, cm.CancelProtection)) == {
        cm.CancelProtection(PID, SL1, urgent=True), cm.CancelProtection(PID, TP1, urgent=True)}
    assert [c.quantity for c in of_type(closing, cm.ClosePosition)] == [D("1.0")]
    assert (done.status, done.reason) == (Status.CLOSED, "closed by the operator")


# -- history --------------------------------------------------------------------------


def test_history_records_every_status_change_up_to_the_archive() -> None:
    """The archived record tells the whole story, including the final PROTECTED."""
    # Arrange
    p, _ = open_entry(PID, SPEC, T0, RECV_WINDOW)
    script: list[ev.Event] = [
        ev.EntryAccepted(PID, ORDER_ID),
        ev.EntryFilled(PID, ORDER_ID, D("1.0"), D("100")),
        ev.ProtectionReport(PID, SL1, AlgoStatus.NEW),
    ]
    for i, event in enumerate(script):
        p, _ = step(p, event, T0 + i + 1)

    # Act
    q, _ = step(p, ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), T0 + 10)

    # Assert
    changes = [n.text for n in q.history if "->" in n.text]
    assert [c.split(" on ")[0] for c in changes] == [
        "SUBMITTING -> OPEN", "OPEN -> PROTECTING", "PROTECTING -> PROTECTED"
    ]


# -- property: write-ahead over many event sequences ----------------------------------


@dataclass(frozen=True)
class Step:
    seed: int
    before: Pending
    event: ev.Event
    now: Millis
    after: Pending
    cmds: list[cm.Command]


def _candidates(p: Pending) -> list[ev.Event]:
    pid = p.pending_id
    out: list[ev.Event] = [
        ev.EntryClaimed(pid),
        ev.EntryAccepted(pid, ORDER_ID),
        ev.EntryRejected(pid, -2019, "Margin is insufficient."),
        ev.EntryOutcomeUnknown(pid, "read timeout"),
        ev.EntryNotFound(pid),
        ev.EntryNotFound(pid, D(0)),
        ev.EntryNotFound(pid, D("0.5")),
        ev.EntryPartiallyFilled(pid, ORDER_ID, D("0.3"), D("100")),
        ev.EntryPartiallyFilled(pid, ORDER_ID, D("0.6"), D("101")),
        ev.EntryFilled(pid, ORDER_ID, D("1.0"), D("100")),
        ev.EntryCanceled(pid, ORDER_ID),
        ev.EntryCanceledPartFilled(pid, ORDER_ID, D("0.5"), D("100")),
        ev.PositionReport(pid, D(0)),
        ev.PositionReport(pid, p.filled_qty or D("0.3")),
        ev.PositionUnconfirmed(pid),
        ev.ShareTaken(pid, cid(Leg.TP, 1, OTHER_PID), D("0.1"), OTHER_PID, "TP", D("101")),
        ev.SendDelayed(pid, client_id(pid, Leg.ENTRY), p.sent_at),
        ev.CloseReport(pid, p.close.client_id if p.close else cid(Leg.CLOSE, 9, pid), OrderStatus.EXPIRED,
                       D("0.1")),
        ev.CloseReport(pid, p.close.client_id if p.close else cid(Leg.CLOSE, 9, pid), OrderStatus.FILLED,
                       p.close.quantity if p.close else D("0.3")),
        ev.CloseFailed(pid, "rejected"),
        ev.CloseDeferred(pid, "HTTP 429", 1_000),
        ev.CloseOutcomeUnknown(pid, "read timeout"),
        ev.CloseNotFound(pid),
        ev.QueryFailed(pid, "read timeout"),
        ev.CheckDue(pid),
        ev.CheckDue(pid),
    ]
    for x in p.protections:
        c = x.client_id
        out += [ev.ProtectionReport(pid, c, s) for s in AlgoStatus]
        out += [
            ev.ProtectionReport(pid, c, AlgoStatus.NEW),
            ev.ProtectionReport(pid, c, AlgoStatus.NEW),
            ev.ProtectionReport(pid, c, AlgoStatus.FINISHED, x.quantity / 2),
            ev.ProtectionRejected(pid, c, -4005, "refused"),
            ev.ProtectionDeferred(pid, c, "HTTP 503 Service Unavailable", 500),
            ev.ProtectionWouldTrigger(pid, c, -2021, "would trigger"),
            ev.ProtectionOutcomeUnknown(pid, c, "HTTP 503"),
            ev.ProtectionNotFound(pid, c),
            ev.ProtectionLimited(pid, c, -4045, "Reach max stop order limit."),
            ev.ProtectionCanceled(pid, c),
            ev.SendDelayed(pid, c, x.sent_at),
        ]
        if x.state is LegState.SENDING:  # acknowledgements are the common answer
            out += [ev.ProtectionReport(pid, c, AlgoStatus.NEW)] * 8
    return out


def _walk(seed: int) -> list[Step]:
    """A random but reproducible life of one entry, stopping when it is archived."""
    rng = random.Random(seed)
    policy = ALERT if seed % 3 == 0 else POLICY
    if seed % 2:
        p, _ = open_entry(PID, SPEC, T0, RECV_WINDOW)
    else:
        p = pending(Status.REQUESTED)
    now, steps = T0, []
    for _ in range(60):
        now += rng.choice((1, 250, 2_500, 12_000))
        event = rng.choice(_candidates(p))
        if rng.random() < 0.005:
            event = ev.OperatorDrop(PID, "operator")
        elif rng.random() < 0.01:
            operator: list[ev.Event] = [ev.OperatorCancel(PID), ev.OperatorCancel(PID, close=True)]
            operator.append(ev.OperatorClose(PID))
            operator.append(ev.OperatorAmend(PID, stop_loss=p.spec.stop_loss + rng.choice((-1, 1))))
            event = rng.choice(operator)
        elif rng.random() < 0.003:
            event = ev.EvidenceConflict(PID, "exchange answer with no row")
        try:
            q, cmds = step(p, event, now, policy)
        except InvalidTransition:
            continue
        steps.append(Step(seed, p, event, now, q, cmds))
        p = q
        if p.status.terminal:
            break
    return steps


@pytest.fixture(scope="module")
def walks() -> list[Step]:
    return [s for seed in range(600) for s in _walk(seed)]


def _recorded(p: Pending, send: cm.Command) -> bool:
    """Whether the entry p (as persisted) already names the order that send targets."""
    if isinstance(send, cm.PlaceEntry):
        return p.status is Status.SUBMITTING and send.client_id == client_id(PID, Leg.ENTRY)
    if isinstance(send, cm.ClosePosition):
        return p.close is not None and p.close.client_id == send.client_id
    if isinstance(send, cm.CancelEntry):  # the entry order's id is fixed from its first record
        return send.client_id == client_id(PID, Leg.ENTRY) and not p.entry_done
    found = p.find_leg(send.client_id)  # type: ignore[union-attr]
    if isinstance(send, cm.PlaceProtection):
        return found is not None and found.state is LegState.SENDING
    return found is not None and found.state is LegState.CANCELING


def test_walks_cover_every_status_and_event_type(walks: list[Step]) -> None:
    """The random walks reach every status and apply every event type (else they prove little)."""
    # Arrange
    reached = {s.after.status for s in walks} | {s.before.status for s in walks}

    # Act
    applied = {type(s.event) for s in walks}

    # Assert
    assert reached == set(Status)
    assert applied == set(TRANSITIONS)
    assert len(walks) > 5_000


def test_persist_comes_before_every_send(walks: list[Step]) -> None:
    """In every command list, the state naming an order is persisted before that order is sent."""
    for s in walks:
        # Arrange
        changed = s.after != s.before
        durable = s.after if changed else s.before
        context = f"seed {s.seed}: {type(s.event).__name__} in {s.before.status.name}: {s.cmds}"

        # Act
        out = sends(s.cmds)

        # Assert
        if s.after.status.terminal:
            assert out == [], context
            last = s.cmds[-1]
            assert isinstance(last, cm.ArchivePending), context
            assert last == cm.ArchivePending(s.after, last.reason), context
        elif changed:
            assert s.cmds[0] == cm.PersistPending(s.after), context
        else:
            assert of_type(s.cmds, cm.PersistPending) == [], context
        assert all(_recorded(durable, c) for c in out), context
        assert len(of_type(s.cmds, cm.PersistPending)) <= 1, context


def test_no_step_ever_resends_an_entry(walks: list[Step]) -> None:
    """Only claiming a REQUESTED entry sends it (or, once, its send that waited and never went
    out, stamped anew); unknown outcomes and checks only query."""
    for s in walks:
        # Arrange
        context = f"seed {s.seed}: {type(s.event).__name__} in {s.before.status.name}"

        # Act
        placed = of_type(s.cmds, cm.PlaceEntry)

        # Assert
        if placed:
            assert (s.before.status, type(s.event)) in (
                (Status.REQUESTED, ev.EntryClaimed), (Status.SUBMITTING, ev.SendDelayed)), context


def test_every_send_is_unique_within_a_command_list(walks: list[Step]) -> None:
    """No command list sends the same client id twice."""
    for s in walks:
        # Arrange
        out = sends(s.cmds)

        # Act
        ids = [c.client_id for c in out]

        # Assert
        assert len(ids) == len(set(ids)), f"seed {s.seed}: {s.cmds}"


def test_client_ids_are_never_reused_for_another_order(walks: list[Step]) -> None:
    """Every protective order of an entry has its own id, valid on Binance."""
    for s in walks:
        # Arrange
        ids = [x.client_id for x in s.after.protections]

        # Act
        distinct = set(ids)

        # Assert
        assert len(ids) == len(distinct), f"seed {s.seed}: {ids}"
        assert all(BINANCE_ID.match(i) and len(i) <= 36 for i in ids)


def test_every_status_change_is_noted_in_history(walks: list[Step]) -> None:
    """A status change leaves a history note, at that step's time, naming the new status."""
    for s in walks:
        # Arrange
        if s.after.status is s.before.status:
            continue

        # Act
        notes = [n.text for n in s.after.history if n.at == s.now]

        # Assert
        assert any(f"-> {s.after.status.name}" in t for t in notes), (
            f"seed {s.seed}: {s.before.status.name} -> {s.after.status.name}: {notes}"
        )


def test_needs_attention_always_comes_with_an_alert(walks: list[Step]) -> None:
    """Entering NEEDS_ATTENTION emits exactly one Alert carrying the reason; any other alert
    is the one long-exposure alert of an unprotected share, a leg refused for the account's
    limit (said at the first refusal of a stretch), a share the position took on proof, or a
    share another entry's orders closed beyond that entry's fills."""
    for s in walks:
        # Arrange
        entered = (s.after.status is Status.NEEDS_ATTENTION
                   and s.before.status is not Status.NEEDS_ATTENTION)

        # Act
        alerts = of_type(s.cmds, cm.Alert)
        reasons = [a for a in alerts if a.message == s.after.reason]
        exposure = [a for a in alerts if "without a full stop" in a.message]
        limit = [a for a in alerts if a.kind == "limit"]
        lost = [a for a in alerts if a.kind == "share_lost"]
        taken = [a for a in alerts if a.kind == "over_execution"]

        # Assert
        assert len(reasons) == (1 if entered else 0) or (not entered and not reasons), f"seed {s.seed}"
        assert len(exposure) <= 1, f"seed {s.seed}"
        assert len(reasons) + len(exposure) + len(limit) + len(lost) + len(taken) == len(alerts), f"seed {s.seed}"
        assert not taken or isinstance(s.event, ev.ShareTaken), f"seed {s.seed}"
        assert not limit or isinstance(s.event, ev.ProtectionLimited), f"seed {s.seed}"
        assert not lost or isinstance(s.event, ev.PositionReport), f"seed {s.seed}"
        assert not exposure or (s.after.alerted and not s.before.alerted), f"seed {s.seed}"


def test_a_crossed_trigger_while_partly_filled_cancels_the_entry_rest_before_closing() -> None:
    """-2021 after a partial fill: the rest of the entry order is cancelled first, then
    everything that filled (including fills that came before the cancel) is closed."""
    # Arrange: 0.4 of 1.0 filled, generation 1 live, the SL re-send would trigger at once
    p = pending(Status.PARTIALLY_FILLED)
    sl = next(x for x in p.protections if x.leg is Leg.SL)

    # Act
    q, cmds = step(p, ev.ProtectionWouldTrigger(PID, sl.client_id, -2021, "would trigger"), INSIDE)
    r, _ = step(q, ev.ProtectionCanceled(PID, TP1), INSIDE + 1)
    s_, closing = step(r, ev.EntryCanceledPartFilled(PID, ORDER_ID, D("0.7"), D("100")), INSIDE + 2)
    done, out = step(s_, close_filled(s_), INSIDE + 3)

    # Assert
    assert cm.CancelEntry(PID, "BTCUSDT", cid(Leg.ENTRY)) in cmds
    assert [c for c in cmds if isinstance(c, cm.CancelEntry | cm.CancelProtection)] == [
        cm.CancelEntry(PID, "BTCUSDT", cid(Leg.ENTRY)), cm.CancelProtection(PID, TP1, urgent=True),
    ]
    assert of_type(closing, cm.ClosePosition)[0].quantity == D("0.7")
    assert done.status is Status.CLOSED
    assert isinstance(out[-1], cm.ArchivePending)


@pytest.mark.parametrize("status", [Status.OPEN, Status.PARTIALLY_FILLED], ids=lambda s: s.name)
def test_an_acknowledged_entry_a_query_cannot_see_is_asked_about_again(status: Status) -> None:
    """-2013 for an acknowledged order inside Binance's 3-day rule is read lag: keep it, ask again."""
    # Arrange
    p = pending(status)

    # Act
    q, cmds = step(p, ev.EntryNotFound(PID, D(0)), LATER)

    # Assert
    assert q.status is status
    assert [type(c) for c in cmds] == [cm.PersistPending, cm.ScheduleCheck]
    assert cmds[-1] == cm.ScheduleCheck(PID, LATER + POLICY.not_visible_recheck_ms)


@pytest.mark.parametrize("status", [Status.OPEN, Status.PARTIALLY_FILLED], ids=lambda s: s.name)
def test_the_check_after_a_not_visible_entry_asks_about_it_again(status: Status) -> None:
    """The wake-up scheduled for an acknowledged entry a read could not see queries it again."""
    _q, cmds = step(pending(status), ev.CheckDue(PID), LATER)
    assert cm.QueryEntry(PID, "BTCUSDT", cid(Leg.ENTRY)) in cmds


def test_a_leg_its_cancel_and_query_cannot_find_is_dropped_and_the_position_read() -> None:
    """A cancel answered "unknown order" and the query by id found nothing: it may have fired
    unseen, so nothing is closed or placed before the position says what is left."""
    # Arrange
    p = pending(Status.PROTECTED, protections=legs(1, "1.0", LegState.CANCELING))

    # Act
    q, cmds = step(p, ev.ProtectionNotFound(PID, SL1, after_cancel=True), LATER)

    # Assert
    assert q.find_leg(SL1) is None
    assert q.verify_share
    assert of_type(cmds, cm.QueryPosition) == [cm.QueryPosition(PID, "BTCUSDT", PositionSide.BOTH)]
    assert of_type(cmds, cm.ClosePosition) == []
    assert of_type(cmds, cm.PlaceProtection) == []
