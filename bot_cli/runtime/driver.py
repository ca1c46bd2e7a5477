"""The daemon loop: reconcile, then follow the user stream, the timers and the journal.

Three tasks feed one ExecutionEngine (whose lock keeps decisions in order): the user
stream (fills and algo updates; every (re)connect triggers a reconcile), the timer
task (ScheduleCheck deadlines), and the journal watcher (entries other processes
wrote: `bot enter` requests are claimed and sent here, drops are forgotten).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

from bot_cli.core.engine import TRANSITIONS
from bot_cli.core.events import Event, OperatorCancel, OperatorClose
from bot_cli.core.model import PendingId, PositionSide, Status
from bot_cli.core.summary import Unclaimed, unclaimed_positions
from bot_cli.exchange.user_stream import UserStream
from bot_cli.exchange.wire import AccountUpdate, AlgoUpdate, OrderUpdate, StreamMessage
from bot_cli.runtime.engine import ExecutionEngine, Recovery
from bot_cli.runtime.heartbeat import EVERY_S as HEARTBEAT_S
from bot_cli.runtime.heartbeat import Heartbeat
from bot_cli.store import requests
from bot_cli.venue import VenueError


log = logging.getLogger("bot_cli.daemon")
TICK_S = 0.1
SHUTDOWN_GRACE_S = 10.0
STREAM_WAIT_S = 5.0
# A position that shrank below the entries' shares is re-read after this pause, so the
# ALGO_UPDATE of a leg that fired (which may come after the ACCOUNT_UPDATE) is in first.
POSITION_SETTLE_S = 1.0
def _allowed_requests(status: Status) -> set[str]:
    """The operator requests the lifecycle table has a row for in this status."""
    return {verb for verb, make in OPERATOR.items() if status in TRANSITIONS[type(make(PendingId("")))]}


OPERATOR: dict[str, Callable[[PendingId], Event]] = {
    "cancel": OperatorCancel,
    "cancel-close": lambda pid: OperatorCancel(pid, close=True),
    "close": OperatorClose,
}


class View(Protocol):
    def recovered(self, recovery: Recovery, why: str) -> None: ...

    def message(self, message: StreamMessage) -> None: ...

    def note(self, text: str, **fields: str) -> None: ...


class Daemon:
    def __init__(
        self, engine: ExecutionEngine, stream_factory: Callable[..., UserStream], view: View, *, venue: str = ""
    ) -> None:
        self.engine, self.view = engine, view
        self.stream = stream_factory(on_message=self._on_message, on_gap=self._on_gap)
        self.heartbeat = Heartbeat(engine, venue, engine.clock.now_ms())
        self._positions: dict[tuple[str, PositionSide], Decimal] = {}
        self._seen_unclaimed: set[tuple[str, PositionSide]] = set()  # at the last beat
        self.on_unclaimed: Callable[[Unclaimed], None] | None = None  # e.g. the notifier
        self._journal_poked = asyncio.Event()
        self._position_moved = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop is set; then let the command sequence in progress finish.

        The stream is opened first and its connection reconciles (events arriving meanwhile
        wait for it): the start-up reconcile. Only if the stream cannot connect soon is the
        journal reconciled without it, so a fill while down is never left waiting.
        """
        self._beat_once()  # `bot status` sees the daemon from its first moment, not after the stream
        stream = asyncio.create_task(self.stream.run(), name="stream")
        try:
            await asyncio.wait_for(self.stream.connected.wait(), STREAM_WAIT_S)
        except TimeoutError:
            await self._reconcile("start-up, stream not connected yet")
        await self._read_positions()
        tasks = [
            stream,
            asyncio.create_task(self._every(self.engine.run_due_checks), name="timers"),
            asyncio.create_task(self._watch_journal_forever(), name="journal"),
            asyncio.create_task(self._watch_positions(), name="positions"),
            asyncio.create_task(self._beat(), name="heartbeat"),
        ]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        await self._shutdown(tasks, stopper)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _shutdown(self, tasks: list[asyncio.Task[None]], stopper: asyncio.Task[bool]) -> None:
        self.view.note("shutting down: finishing the command in progress", event="shutting_down")
        try:  # wait for the in-order sequence running now, so no decision is half-executed
            await asyncio.wait_for(self.engine.idle(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("shutdown: a command did not finish in %.0fs; the next start reconciles it", SHUTDOWN_GRACE_S)
        for task in [*tasks, stopper]:
            task.cancel()
        for task in [*tasks, stopper]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.heartbeat.remove()  # a clean stop: `bot status` says no daemon, not a stale one

    async def _every(self, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            await work()
            await asyncio.sleep(TICK_S)

    def poke(self, *_: object) -> None:
        """Look at the journal now (an entry was just written, e.g. by the inbox), not at the next tick."""
        self._journal_poked.set()

    async def _watch_journal_forever(self) -> None:
        while True:
            await self._watch_journal()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._journal_poked.wait(), TICK_S)
            self._journal_poked.clear()

    async def _watch_journal(self) -> None:
        self.engine.absorb_external()
        await self._take_requests()
        # Every REQUESTED entry, however it got into memory (this poll, or an event that
        # made the engine read the journal first): the daemon is the one that sends it.
        for pid in [pid for pid, p in self.engine.state.items() if p.status is Status.REQUESTED]:
            if await self.engine.claim(pid):
                self.view.note(f"claimed requested entry {pid}", entry=pid, event="claimed")

    async def _beat(self) -> None:
        while True:
            self._beat_once()
            await asyncio.sleep(HEARTBEAT_S)

    async def _read_positions(self) -> None:
        """Every position once at start (the stream then says what changes), so a position no
        entry explains is seen even if it never moves."""
        try:
            self._positions.update(await self.engine.venue.positions())
        except VenueError as err:
            log.warning("positions not read at start (%s): only changes the stream reports are checked", err)

    def _look_unclaimed(self) -> None:
        """Positions no entry explains, flagged once they last a whole beat (a fill's reports
        may cross), said once each, and cleared when explained."""
        now = unclaimed_positions(self.engine.state.values(), self._positions)
        found = {(u.symbol, u.position_side): u for u in now}
        flagged = self.heartbeat.unclaimed_keys
        lasting = [u for key, u in found.items() if key in self._seen_unclaimed or key in flagged]
        for u in lasting:
            if (u.symbol, u.position_side) not in flagged:
                log.warning("%s %s: %s %s of the position (%s) is not held by any entry: nothing of the"
                            " bot protects it", u.symbol, u.position_side.value, u.side.value, u.quantity,
                            u.position, extra={"symbol": u.symbol, "event": "position_unclaimed"})
                if self.on_unclaimed is not None:
                    self.on_unclaimed(u)
        for symbol, side in flagged - {(u.symbol, u.position_side) for u in lasting}:
            log.info("%s %s: the position is explained by the entries again", symbol, side.value,
                     extra={"symbol": symbol, "event": "position_claimed"})
        self._seen_unclaimed = set(found)
        self.heartbeat.unclaimed = lasting

    def _beat_once(self) -> None:
        self._look_unclaimed()
        self.heartbeat.stream(self.stream.connected.is_set())
        try:
            self.heartbeat.write()
        except OSError as err:  # never let the heartbeat stop the daemon
            log.warning("heartbeat not written: %s", err)

    async def _take_requests(self) -> None:
        """Operator requests (`bot cancel`, `bot close`): applied, then forgotten."""
        for request in requests.pending(self.engine.store.path):
            event = OPERATOR[request.verb](PendingId(request.pending_id))
            p = self.engine.state.get(PendingId(request.pending_id))
            if p is not None and request.verb in _allowed_requests(p.status):
                self.view.note(f"operator request: {request.verb} {request.pending_id}",
                               entry=request.pending_id, event=request.verb)
                await self.engine.handle(event)
            elif p is not None:  # a stale or hand-written request must not park the entry
                log.warning("request to %s %s refused: it is %s", request.verb, request.pending_id, p.status.value,
                            extra={"entry": request.pending_id, "event": request.verb})
            else:
                log.warning("request to %s %s: no such pending entry", request.verb, request.pending_id,
                            extra={"entry": request.pending_id, "event": request.verb})
            requests.done(request)

    async def _watch_positions(self) -> None:
        """Every wait has a wake-up: a position closed outside the bot's orders is noticed
        live (from ACCOUNT_UPDATE), not only at the next reconnect."""
        while True:
            await self._position_moved.wait()
            await asyncio.sleep(POSITION_SETTLE_S)
            self._position_moved.clear()
            if self.engine.position_unexplained(self._positions):
                await self._reconcile("a position changed outside the bot's orders")

    async def _reconcile(self, why: str) -> None:
        recovery = await self.engine.recover()
        self.heartbeat.reconciled(recovery, why)
        self.view.recovered(recovery, why)

    async def _on_gap(self, why: str) -> None:
        await self._reconcile(f"stream {why}")

    async def _on_message(self, message: StreamMessage) -> None:
        self.heartbeat.event()
        if isinstance(message, OrderUpdate):
            await self.engine.on_order_report(message.report)
        elif isinstance(message, AlgoUpdate):
            await self.engine.on_algo_report(message.report)
        elif isinstance(message, AccountUpdate):
            self._positions.update(message.positions)
            if self.engine.position_unexplained(message.positions):
                self._position_moved.set()
        self.view.message(message)  # after the engine: showing it is not on the fill-to-protection path
