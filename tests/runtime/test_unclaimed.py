"""A position larger than the journal's entries explain is flagged: logged, told once, in the heartbeat.

Such a part is not the bot's (a trade by hand, an entry that filled unseen): nothing of the bot
protects it, and a person must know. It is flagged only once it lasts a whole heartbeat (a
fill's reports may cross), said once, and cleared when the entries explain the position again.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot_cli.core.model import PositionSide, Side
from bot_cli.core.summary import Unclaimed
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange, QuietView


KEY = ("BTCUSDT", PositionSide.BOTH)


def daemon_over(tmp_path: Path, venue: FakeExchange) -> tuple[Daemon, list[Unclaimed]]:
    engine = ExecutionEngine(PendingEntryStore(tmp_path), venue, clock=FakeClock())
    no_stream = SimpleNamespace(connected=asyncio.Event())  # never connects: no stream here
    daemon = Daemon(engine, lambda **_: no_stream, QuietView())  # type: ignore[arg-type]
    told: list[Unclaimed] = []
    daemon.on_unclaimed = told.append
    return daemon, told


def beats(daemon: Daemon, n: int) -> list[list[dict[str, Any]]]:
    """The heartbeat's "unclaimed" after each of ``n`` beats."""
    out = []
    for _ in range(n):
        daemon._beat_once()
        out.append(json.loads(daemon.heartbeat.path.read_text())["unclaimed"])
    return out


def test_a_position_no_entry_holds_is_flagged_after_a_beat_and_told_once(tmp_path: Path) -> None:
    # Arrange: 0.5 BTCUSDT long on the venue, no entry in the journal
    venue = FakeExchange()
    venue.position[KEY] = Decimal("0.5")
    daemon, told = daemon_over(tmp_path, venue)

    # Act
    asyncio.run(daemon._read_positions())
    seen = beats(daemon, 3)

    # Assert
    assert seen[0] == []  # one look is not enough: the reports of a fill may cross
    expected = {"symbol": "BTCUSDT", "position_side": "BOTH", "side": "BUY", "quantity": "0.5", "position": "0.5"}
    assert seen[1] == seen[2] == [expected]
    assert [(u.symbol, u.side, u.quantity) for u in told] == [("BTCUSDT", Side.BUY, Decimal("0.5"))]


def test_the_flag_clears_when_the_position_is_explained_again(tmp_path: Path) -> None:
    # Arrange
    venue = FakeExchange()
    venue.position[KEY] = Decimal("0.5")
    daemon, told = daemon_over(tmp_path, venue)
    asyncio.run(daemon._read_positions())
    beats(daemon, 2)

    # Act: closed by hand; the stream's ACCOUNT_UPDATE says flat
    daemon._positions[KEY] = Decimal(0)
    after = beats(daemon, 2)

    # Assert
    assert after == [[], []]
    assert len(told) == 1
