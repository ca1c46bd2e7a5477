"""The notifier wired to a real ExecutionEngine: the core's alerts become the right notices,
and an endpoint that hangs does not hold up protection."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot_cli.core.model import EntrySpec, OrderType, Policy, Side, Status
from bot_cli.notify import AlertHooks, Notice, Notifier, WebhookSink
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange
from tests.notify.capture import HANG, Capture, until_async


SPEC = EntrySpec(
    "BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.MARKET, None, Decimal(95), Decimal(110)
)


class Teller:
    def __init__(self) -> None:
        self.told: list[Notice] = []

    def tell(self, notice: Notice) -> bool:
        self.told.append(notice)
        return True


async def protect(
    tmp_path: Path, teller: Teller | Notifier, faults: tuple[str | int, ...], policy: Policy = Policy()
) -> ExecutionEngine:
    """An entry fills while placing its stop-loss meets ``faults``; timers run until settled."""
    clock = FakeClock()
    venue = FakeExchange(clock)
    venue.fault("place_protection", *faults)
    hooks = AlertHooks(teller)
    engine = ExecutionEngine(
        PendingEntryStore(tmp_path),
        venue,
        clock=clock,
        policy=policy,
        on_alert=hooks.on_alert,
        on_command=hooks.on_command,
    )
    hooks.attach(engine)
    p = await engine.execute_entry(SPEC)
    (entry_id,) = [cid for cid in venue.orders if cid.startswith(p.pending_id)]
    await engine.on_order_report(venue.fill(entry_id, Decimal("1.0")))
    for _ in range(200):
        at = engine.next_check_at()
        if at is None:
            break
        clock.ms = max(clock.ms, at)
        await engine.run_due_checks()
    engine.store.close()
    return engine


def test_a_crossed_trigger_is_closed_at_market_and_told(tmp_path: Path) -> None:
    """-2021 on the stop-loss: the share is closed at market and one closed_at_market says so."""
    # Arrange
    teller = Teller()

    # Act
    asyncio.run(protect(tmp_path, teller, ("would_trigger",)))

    # Assert
    assert [(n.kind, n.fields["symbol"], n.fields["quantity"]) for n in teller.told] == [
        ("closed_at_market", "BTCUSDT", "1.0")
    ]


def test_protection_refused_for_good_is_needs_attention(tmp_path: Path) -> None:
    """A stop-loss refused max_attempts times parks the entry: one needs_attention, nothing else."""
    # Arrange
    teller = Teller()

    # Act
    engine = asyncio.run(protect(tmp_path, teller, (-4005,) * 10))

    # Assert
    (p,) = engine.state.values()
    assert p.status is Status.NEEDS_ATTENTION
    (needs,) = teller.told
    assert needs.kind == "needs_attention"
    assert needs.fields["entry"] == p.pending_id
    assert needs.fields["reason"].startswith("protection refused 5 times")  # as the core raised it


def test_a_long_exposure_is_unprotected(tmp_path: Path) -> None:
    """Transient failures for over unprotected_alert_ms: one unprotected notice, saying how long.
    (Each 503 asks for 0.5 s and gets exactly that: twelve of them, six tries of both legs,
    outlast a 2 s alert time.)"""
    # Arrange
    teller = Teller()
    policy = Policy(unprotected_alert_ms=2_000)

    # Act
    engine = asyncio.run(protect(tmp_path, teller, ("unavailable",) * 12, policy))

    # Assert
    (p,) = engine.state.values()
    assert p.status is Status.PROTECTED
    (notice,) = teller.told
    assert notice.kind == "unprotected"
    assert notice.fields["seconds"] >= 2
    assert (notice.fields["symbol"], notice.fields["quantity"]) == ("BTCUSDT", "1.0")


def test_a_hanging_endpoint_does_not_hold_up_protection(tmp_path: Path, capture: Capture) -> None:
    """With the webhook hanging, the close at market completes before the webhook has even seen
    the request; its delivery then times out in the background."""
    # Arrange
    capture.script("/hook", HANG)
    notifier = Notifier([WebhookSink(f"{capture.url}/hook")], timeout_s=0.3, tries=1)

    async def scenario() -> tuple[bool, int, ExecutionEngine]:
        notifier.start()
        engine = await protect(tmp_path, notifier, ("would_trigger",))
        seen_before_done = capture.received.is_set()
        await until_async(lambda: notifier.counts["failed"] == 1, "the hanging try timed out")
        await notifier.stop()
        return seen_before_done, notifier.counts["queued"], engine

    # Act
    seen_before_done, queued, engine = asyncio.run(scenario())

    # Assert
    assert seen_before_done is False
    assert queued == 1
    assert engine.state == {}  # closed and archived: protection never waited on the webhook
    assert capture.wait_for(1)[0].json()["kind"] == "closed_at_market"
