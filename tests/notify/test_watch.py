"""What the daemon tells, decided purely: the stream watch and the engine's alert hooks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from bot_cli.core.commands import ClosePosition
from bot_cli.core.engine import open_entry
from bot_cli.core.history import attention
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import (
    ClientId,
    EntrySpec,
    OrderType,
    Pending,
    PendingId,
    PositionSide,
    Side,
)
from bot_cli.notify import AlertHooks, Notice, StreamWatch, alert_notice, follow_stream
from tests.notify.capture import until_async


NOW = 1_764_000_000_000
SPEC = EntrySpec(
    "BTCUSDT",
    Side.BUY,
    Decimal("0.010"),
    OrderType.MARKET,
    None,
    Decimal("63000.0"),
    Decimal("66000.0"),
)


def entry() -> Pending:
    p, _ = open_entry(make_pending_id(NOW, 0), SPEC, NOW, 5000)
    return p


@pytest.mark.parametrize(
    ("observations", "told"),
    [
        pytest.param([(True, 1_000)], [None], id="connected at once: nothing"),
        pytest.param([(False, 59_999)], [None], id="down just under the limit: nothing yet"),
        pytest.param(
            [(False, 60_000), (False, 90_000)],
            ["stream_down", None],
            id="down at the limit: told once",
        ),
        pytest.param(
            [(False, 60_000), (True, 75_000)],
            ["stream_down", "stream_up"],
            id="back: told it is up",
        ),
        pytest.param(
            [(True, 1_000), (False, 2_000), (True, 30_000)],
            [None, None, None],
            id="a short outage: nothing, not even 'up'",
        ),
        pytest.param(
            [
                (True, 1_000),
                (False, 2_000),
                (False, 62_000),
                (True, 63_000),
                (False, 64_000),
                (False, 124_000),
            ],
            [None, None, "stream_down", "stream_up", None, "stream_down"],
            id="every outage counted from its own start",
        ),
    ],
)
def test_stream_watch(observations: list[tuple[bool, int]], told: list[str | None]) -> None:
    """One stream_down per outage after down_after_ms (start counts as down); stream_up after."""
    # Arrange
    watch = StreamWatch(60_000, now_ms=0)

    # Act
    notices = [watch.observe(connected, now) for connected, now in observations]

    # Assert
    assert [n.kind if n else None for n in notices] == told


def test_stream_down_says_since_when() -> None:
    """The notice names when the outage began and how long it has lasted."""
    # Arrange
    watch = StreamWatch(60_000, now_ms=NOW)

    # Act
    notice = watch.observe(False, NOW + 61_000)

    # Assert
    assert notice is not None
    assert notice.fields == {"since": "2025-11-24T16:00:00Z", "seconds": 61}
    assert (
        notice.text
        == "user data stream down since 2025-11-24T16:00:00Z (61 s): fills are not seen live"
    )


class Teller:
    def __init__(self) -> None:
        self.told: list[Notice] = []

    def tell(self, notice: Notice) -> bool:
        self.told.append(notice)
        return True


class Clock:
    def now_ms(self) -> int:
        return NOW + 75_000


class Engine:
    def __init__(self, *entries: Pending) -> None:
        self.state = {p.pending_id: p for p in entries}
        self.clock = Clock()


def test_an_entry_parked_for_attention_is_needs_attention() -> None:
    """The alert whose message is the parked entry's reason becomes needs_attention."""
    # Arrange
    p = attention(entry(), NOW, "stop-loss refused 5 times: -2010")
    teller = Teller()
    hooks = AlertHooks(teller)
    hooks.attach(Engine(p))

    # Act
    hooks.on_alert(p.pending_id, "stop-loss refused 5 times: -2010")

    # Assert
    assert teller.told == [
        Notice(
            "needs_attention",
            f"entry {p.pending_id} needs attention: stop-loss refused 5 times: -2010",
            {"entry": p.pending_id, "reason": "stop-loss refused 5 times: -2010"},
        )
    ]


def test_a_long_exposure_is_unprotected_with_how_long() -> None:
    """The core's long-exposure alert on a live entry: entry, symbol, share, seconds."""
    # Arrange
    p = replace(entry(), filled_qty=Decimal("0.010"), exposed_since=NOW + 10_000)

    # Act
    notice = alert_notice(
        p, p.pending_id, "0.010 BTCUSDT without a full stop for 60 s; still trying", NOW + 75_000, "unprotected"
    )

    # Assert
    assert notice.kind == "unprotected"
    assert notice.fields == {
        "entry": p.pending_id,
        "seconds": 65,
        "symbol": "BTCUSDT",
        "quantity": "0.010",
    }


def test_a_parked_entry_long_exposed_is_still_unprotected() -> None:
    """The long-exposure alert keeps its kind when the entry is already in NEEDS_ATTENTION."""
    # Arrange
    p = replace(attention(entry(), NOW, "evidence conflict"), filled_qty=Decimal("0.010"))

    # Act
    notice = alert_notice(p, p.pending_id, "0.010 BTCUSDT without a full stop for 60 s; x", NOW, "unprotected")

    # Assert
    assert notice.kind == "unprotected"


def test_an_alert_for_an_unknown_entry_is_needs_attention() -> None:
    """Unsure (no engine attached, or the entry gone): the louder kind, with the core's message."""
    # Arrange
    teller = Teller()
    hooks = AlertHooks(teller)

    # Act
    hooks.on_alert(PendingId("P9"), "evidence conflict")

    # Assert
    assert [(n.kind, n.text) for n in teller.told] == [
        ("needs_attention", "entry P9 needs attention: evidence conflict")
    ]


def test_a_market_close_is_told_once_per_order() -> None:
    """Each reduce-only market close executed is told once, however often its command repeats."""
    # Arrange
    teller = Teller()
    hooks = AlertHooks(teller)
    close = ClosePosition(
        PendingId("P1"),
        ClientId("P1-close-1"),
        "BTCUSDT",
        Side.SELL,
        Decimal("0.010"),
        PositionSide.BOTH,
    )

    # Act
    hooks.on_command(close)
    hooks.on_command(close)
    hooks.on_command(replace(close, client_id=ClientId("P1-close-2"), quantity=Decimal("0.004")))

    # Assert
    assert [(n.kind, n.fields["quantity"]) for n in teller.told] == [
        ("closed_at_market", "0.010"),
        ("closed_at_market", "0.004"),
    ]


def test_follow_stream_tells_down_then_up() -> None:
    """The loop asks the watch on every look and tells each notice once."""
    # Arrange
    teller, clock, up = Teller(), [NOW], [False]

    def now() -> int:
        clock[0] += 30_000  # every look is 30 s later
        return clock[0]

    async def scenario() -> None:
        task = asyncio.create_task(follow_stream(lambda: up[0], now, teller, 60_000, every_s=0))
        await until_async(lambda: len(teller.told) == 1, "stream_down told")
        up[0] = True
        await until_async(lambda: len(teller.told) == 2, "stream_up told")
        task.cancel()

    # Act
    asyncio.run(scenario())

    # Assert
    assert [n.kind for n in teller.told] == ["stream_down", "stream_up"]
