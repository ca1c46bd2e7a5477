"""The daemon's heartbeat: a small JSON file in the state dir, atomically replaced.

`bot status` reads it to say whether a daemon runs, since when, whether its stream is up,
when it last reconciled and what is exposed; a monitor reads its age.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_cli.core.model import PositionSide
from bot_cli.core.summary import Unclaimed, by_status, exposure
from bot_cli.runtime.ears import Ears
from bot_cli.runtime.engine import ExecutionEngine, Recovery
from bot_cli.store.atomic import replace_durable
from bot_cli.venue import Metered


NAME = "heartbeat.json"
EVERY_S = 5.0  # how often it is rewritten; `bot status` calls it stale after a few of these


@dataclass
class Heartbeat:
    engine: ExecutionEngine
    venue: str
    started_at: int
    stream_up: bool = False
    stream_since: int = 0
    ears: Ears = field(default_factory=Ears)  # the daemon's: whether the stream is deaf, since when
    last_event_at: int = 0
    last_reconcile: dict[str, Any] = field(default_factory=dict)
    start_weight: int | None = None  # the request weight spent up to the first reconcile
    unclaimed: list[Unclaimed] = field(default_factory=list)  # positions no entry explains
    # When the daemon last counted the conditional orders that are not the bot's (the engine
    # keeps the count): `bot enter` admits against it without a costly read of its own.
    foreign_counted_at: int = 0
    deadman: Callable[[], dict[str, Any]] | None = None  # the dead-man switch's state, if it runs

    @property
    def unclaimed_keys(self) -> set[tuple[str, PositionSide]]:
        return {(u.symbol, u.position_side) for u in self.unclaimed}

    @property
    def path(self) -> Path:
        return Path(self.engine.store.path) / NAME

    def stream(self, up: bool) -> None:
        if up != self.stream_up or not self.stream_since:
            self.stream_up, self.stream_since = up, self.engine.clock.now_ms()

    def event(self) -> None:
        self.last_event_at = self.engine.clock.now_ms()

    def reconciled(self, recovery: Recovery, why: str) -> None:
        if not self.last_reconcile:  # the start: time, rate limits, listenKey, this reconcile
            venue = self.engine.venue
            self.start_weight = venue.weight_spent if isinstance(venue, Metered) else recovery.weight
        rows = recovery.plan.rows
        self.last_reconcile = {
            "at": self.engine.clock.now_ms(), "why": why, "entries": len(rows),
            "acted": sum(1 for r in rows if r.commands), "calls": recovery.calls, "weight": recovery.weight,
            "needs_attention": sum(1 for r in rows if r.result.value == "NEEDS_ATTENTION"),
        }

    def payload(self) -> dict[str, Any]:
        entries = list(self.engine.state.values())
        return {
            "pid": os.getpid(), "venue": self.venue, "started_at": self.started_at,
            "written_at": self.engine.clock.now_ms(),
            "stream": {"connected": self.stream_up, "since": self.stream_since, "deaf_since": self.ears.deaf_since},
            "last_event_at": self.last_event_at, "last_reconcile": self.last_reconcile,
            "start_weight": self.start_weight,
            "entries": by_status(entries), "exposure": [x.as_dict() for x in exposure(entries)],
            "unclaimed": [u.as_dict() for u in self.unclaimed],
            "doubts": self.engine.doubts.describe(),
            "account": {
                "hedge_mode": getattr(self.engine.venue, "hedge_mode", None),
                "foreign_conditional": self.engine.foreign_conditional if self.foreign_counted_at else None,
                "counted_at": self.foreign_counted_at,
            },
            "deadman": self.deadman() if self.deadman is not None else None,
        }

    def write(self) -> None:
        replace_durable(self.path, json.dumps(self.payload(), sort_keys=True).encode())

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def read(state_dir: Path) -> dict[str, Any] | None:
    """The last heartbeat written for this state dir, or None if there is none (or unreadable)."""
    try:
        value = json.loads((state_dir / NAME).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
