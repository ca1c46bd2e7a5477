"""Specification of the retry policy: transient trouble is retried, never counted as a refusal."""

from __future__ import annotations

import pytest

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import step
from bot_cli.core.model import AlgoStatus, Leg, LegState, Policy, Status
from bot_cli.core.retry import backoff_ms
from tests.core.helpers import INSIDE, PID, POLICY, D, cid, of_type, pending


SL1, TP1 = cid(Leg.SL, 1), cid(Leg.TP, 1)


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        pytest.param(1, POLICY.recheck_ms // 2, POLICY.recheck_ms, id="first: about recheck_ms"),
        pytest.param(2, POLICY.recheck_ms, POLICY.recheck_ms * 2, id="doubling"),
        pytest.param(30, POLICY.retry_max_ms // 2, POLICY.retry_max_ms, id="capped at retry_max_ms"),
    ],
)
def test_backoff_doubles_up_to_a_few_seconds_with_jitter(failures: int, low: int, high: int) -> None:
    """Without a word from the exchange the wait doubles, capped at retry_max_ms (5 s), each
    between half and all of that: protection is retried within seconds, never a minute later."""
    waits = {backoff_ms(failures, 0, POLICY, f"bc0mgj6k3cw{n:05d}") for n in range(50)}
    assert all(low <= w <= high for w in waits)
    assert len(waits) > 10, "entries are spread, not retried in lockstep"


def test_backoff_is_the_same_for_the_same_entry_and_try() -> None:
    """The jitter is a pure function of the entry and the try: a test sees the same delays."""
    assert backoff_ms(3, 0, POLICY, PID) == backoff_ms(3, 0, POLICY, PID)


@pytest.mark.parametrize("retry_after_ms", [1_000, 120_000])
def test_backoff_is_exactly_the_exchange_s_retry_after(retry_after_ms: int) -> None:
    """Retry-After (or a ban's end) is honoured exactly: never earlier, and not later either."""
    assert backoff_ms(7, retry_after_ms, POLICY, PID) == retry_after_ms


def test_a_long_burst_of_transient_failures_never_needs_attention() -> None:
    """Fifty 429/503s in a row on the SL: the entry keeps trying, attempts stay 0, every try
    has a wake-up, and only the refused leg is sent again."""
    # Arrange
    p, now = pending(Status.PROTECTING), INSIDE
    p, _ = step(p, ev.ProtectionReport(PID, TP1, AlgoStatus.NEW), now)

    # Act
    for _ in range(50):
        sl = p.current(Leg.SL)
        assert sl is not None
        assert sl.state is LegState.SENDING
        p, cmds = step(p, ev.ProtectionDeferred(PID, sl.client_id, "HTTP 429", 1_000), now)
        assert of_type(cmds, cm.ScheduleCheck), "a deferred send has a wake-up"
        now = p.retry_at
        p, cmds = step(p, ev.CheckDue(PID), now)
        assert [c.leg for c in of_type(cmds, cm.PlaceProtection)] == [Leg.SL]

    # Assert
    assert p.status is Status.PROTECTING
    assert p.attempts == 0
    assert p.transient == 50
    assert [c for c in p.protections if c.state is LegState.SENDING], "still sending a new SL"


def test_a_long_unprotected_share_raises_one_alert_and_keeps_trying() -> None:
    """Past unprotected_alert_ms with no full stop: one Alert, then no more, and no parking."""
    # Arrange
    policy = Policy(unprotected_alert_ms=10_000)
    p, now, alerts = pending(Status.PROTECTING), INSIDE, []

    # Act
    for _ in range(30):
        for x in [x for x in p.protections if x.state is LegState.SENDING]:
            p, cmds = step(p, ev.ProtectionDeferred(PID, x.client_id, "unreachable", 0), now, policy)
            alerts += of_type(cmds, cm.Alert)
        now = p.retry_at
        p, cmds = step(p, ev.CheckDue(PID), now, policy)
        alerts += of_type(cmds, cm.Alert)

    # Assert
    assert len(alerts) == 1
    assert "without a full stop" in alerts[0].message
    assert p.status is Status.PROTECTING


def test_both_legs_refused_keep_a_wake_up_for_the_retry() -> None:
    """Both legs of one generation refused: a check is scheduled at retry_at, so the retry
    happens without waiting for a reconnect (the lost wake-up)."""
    # Arrange
    p = pending(Status.PROTECTING)

    # Act
    q, _first = step(p, ev.ProtectionRejected(PID, SL1, -2010, "refused"), INSIDE)
    r, _second = step(q, ev.ProtectionRejected(PID, TP1, -2010, "refused"), INSIDE + 1)
    early, at_first = step(r, ev.CheckDue(PID), INSIDE + POLICY.recheck_ms)

    # Assert
    assert r.protections == ()
    assert r.retry_at > INSIDE + POLICY.recheck_ms
    assert of_type(at_first, cm.PlaceProtection) == []
    assert [c.at for c in of_type(at_first, cm.ScheduleCheck)] == [r.retry_at], "woken again at retry_at"
    _done, sends = step(early, ev.CheckDue(PID), r.retry_at)
    assert [c.quantity for c in of_type(sends, cm.PlaceProtection)] == [D("1.0"), D("1.0")]


def test_a_transient_close_failure_is_retried_never_parked() -> None:
    """The market close met a 503 unavailable: closed again after a backoff, not NEEDS_ATTENTION."""
    # Arrange
    p = pending(Status.EXITING, protections=())

    # Act
    q, cmds = step(p, ev.CloseDeferred(PID, "HTTP 503 Service Unavailable", 500), INSIDE)
    _r, again = step(q, ev.CheckDue(PID), q.retry_at)

    # Assert
    assert q.status is Status.EXITING
    assert q.close is None
    assert of_type(cmds, cm.ScheduleCheck)[0].at == q.retry_at
    assert [c.quantity for c in of_type(again, cm.ClosePosition)] == [D("1.0")]


def test_a_definite_refusal_still_counts() -> None:
    """Only definite refusals count toward max_protection_attempts."""
    p = pending(Status.PROTECTING, attempts=POLICY.max_protection_attempts - 1)
    q, _ = step(p, ev.ProtectionRejected(PID, SL1, -4005, "Quantity greater than max quantity."), INSIDE)
    assert q.status is Status.NEEDS_ATTENTION


def test_a_leg_firing_partly_leaves_the_rest_protected_by_a_new_generation() -> None:
    """FINISHED with part executed: the sibling is cancelled, then the rest is protected."""
    # Arrange
    p = pending(Status.PROTECTED)

    # Act
    q, cmds = step(p, ev.ProtectionReport(PID, SL1, AlgoStatus.FINISHED, D("0.3")), INSIDE)
    r, then = step(q, ev.ProtectionCanceled(PID, TP1), INSIDE + 1)

    # Assert
    assert q.status is Status.EXITING
    assert of_type(cmds, cm.CancelProtection) == [cm.CancelProtection(PID, TP1, urgent=True)]
    assert r.status is Status.PROTECTING
    assert r.share == D("0.7")
    assert [(c.leg, c.quantity) for c in of_type(then, cm.PlaceProtection)] == [(Leg.SL, D("0.7")), (Leg.TP, D("0.7"))]


def test_an_unknown_outcome_moves_the_deadline_to_what_was_actually_sent() -> None:
    """After a resync the entry was signed later than decided: not-found waits for that."""
    # Arrange
    p = pending(Status.SUBMITTING)
    signed = INSIDE + 20_000

    # Act
    q, _ = step(p, ev.EntryOutcomeUnknown(PID, "read timeout", signed, 10_000), signed + 100)
    r, cmds = step(q, ev.EntryNotFound(PID), p.sent_at + p.recv_window_ms + POLICY.not_found_margin_ms + 1)

    # Assert
    assert (q.sent_at, q.recv_window_ms) == (signed, 10_000)
    assert r.status is Status.SUBMITTING, "not yet proven never placed"
    assert of_type(cmds, cm.ScheduleCheck), "not yet proven never placed"


def test_a_close_refused_for_nothing_to_reduce_reads_the_position_instead_of_parking() -> None:
    """-2022: a leg or another close took the position first; the entry's share decides."""
    # Arrange
    p = pending(Status.EXITING, protections=())

    # Act
    q, cmds = step(p, ev.CloseFailed(PID, "(-2022) ReduceOnly Order is rejected.", -2022), INSIDE)
    done, out = step(q, ev.PositionReport(PID, D(0)), INSIDE + 1)

    # Assert
    assert q.status is Status.EXITING
    assert q.verify_share
    assert of_type(cmds, cm.QueryPosition)
    assert done.status is Status.CLOSED
    assert isinstance(out[-1], cm.ArchivePending)


def test_a_close_refused_for_another_reason_needs_attention() -> None:
    q, _ = step(pending(Status.EXITING, protections=()), ev.CloseFailed(PID, "(-2019) margin", -2019), INSIDE)
    assert q.status is Status.NEEDS_ATTENTION
