"""What the daemon tells, decided from what it sees: time passed in.

``StreamWatch`` (pure) turns "is the stream connected, and when" into one ``stream_down``
per outage (after ``down_after_ms``) and one ``stream_up`` when it is back; ``follow_stream``
is the loop that asks it. ``AlertHooks`` turns the engine's hooks (``on_alert``,
``on_command``) into notices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from bot_cli.core.commands import ClosePosition, Command
from bot_cli.core.model import Pending, PendingId
from bot_cli.notify import formats
from bot_cli.notify.formats import Notice


class StreamWatch:
    """Told, now and then, whether the user stream is connected; says when to tell a person."""

    def __init__(self, down_after_ms: int, now_ms: int) -> None:
        self.down_after_ms = down_after_ms
        self.down_since: int | None = now_ms  # at start the stream is not connected yet
        self.told = False

    def observe(self, connected: bool, now_ms: int) -> Notice | None:
        if connected:
            since, told = self.down_since, self.told
            self.down_since, self.told = None, False
            return formats.stream_up(since, now_ms) if told and since is not None else None
        if self.down_since is None:
            self.down_since = now_ms
        if not self.told and now_ms - self.down_since >= self.down_after_ms:
            self.told = True
            return formats.stream_down(self.down_since, now_ms)
        return None


class Teller(Protocol):
    def tell(self, notice: Notice) -> bool: ...


async def follow_stream(
    connected: Callable[[], bool],
    now_ms: Callable[[], int],
    teller: Teller,
    down_after_ms: int,
    every_s: float = 1.0,
) -> None:
    """Until cancelled: look at the stream every ``every_s`` and tell what StreamWatch says."""
    watch = StreamWatch(down_after_ms, now_ms())
    while True:
        notice = watch.observe(connected(), now_ms())
        if notice is not None:
            teller.tell(notice)
        await asyncio.sleep(every_s)


class _Engine(Protocol):  # runtime.engine.ExecutionEngine, as far as the hooks look
    @property
    def state(self) -> Mapping[PendingId, Pending]: ...

    @property
    def clock(self) -> _Clock: ...


class _Clock(Protocol):
    def now_ms(self) -> int: ...


# The core's long-exposure alert (core.engine._exposure) says this; every other alert parks
# the entry in NEEDS_ATTENTION. Matched on text because by the time the alert runs, later
# events may already have changed the entry (tests/notify/test_protection_path.py guards it).


def alert_notice(p: Pending | None, pending_id: str, message: str, now_ms: int, kind: str) -> Notice:
    """The notice of a core Alert by its kind: a leg refused for the account's limit, a share
    the position took (on proof), a share another entry's legs took, the long-exposure alert
    (for a known entry); else needs_attention."""
    if kind == "limit":
        return formats.limit_reached(pending_id, message)
    if kind == "share_lost":
        return formats.share_lost(pending_id, message)
    if kind == "over_execution":
        return formats.over_execution(pending_id, message)
    if p is None or kind != "unprotected":
        return formats.needs_attention(pending_id, message)
    seconds = (now_ms - p.exposed_since) // 1000 if p.exposed_since else 0
    return formats.unprotected(pending_id, seconds, p.spec.symbol, p.share)


class AlertHooks:
    """The engine's ``on_alert`` and ``on_command`` as notices; ``attach`` the engine once built."""

    def __init__(self, teller: Teller) -> None:
        self.teller = teller
        self._lookup: Callable[[PendingId], Pending | None] = lambda _pid: None
        self._now: Callable[[], int] = lambda: 0
        self._closes: set[str] = set()  # client ids told: a re-sent close is told once

    def attach(self, engine: _Engine) -> None:
        # Not engine.state.get: engine.state is replaced on reload.
        self._lookup = lambda pid: engine.state.get(pid)  # noqa: PLW0108
        self._now = engine.clock.now_ms

    def on_alert(self, pending_id: PendingId, message: str, kind: str = "needs_attention") -> None:
        self.teller.tell(alert_notice(self._lookup(pending_id), pending_id, message, self._now(), kind))

    def on_command(self, cmd: Command) -> None:
        if isinstance(cmd, ClosePosition) and cmd.client_id not in self._closes:
            self._closes.add(cmd.client_id)
            self.teller.tell(formats.closed_at_market(cmd.pending_id, cmd.symbol, cmd.quantity))
