"""The daemon loop: reconcile, then follow the user stream, the timers and the journal.

Tasks feed one ExecutionEngine, none of them waiting on another's network answers: the user
stream (fills and algo updates, stepped as they arrive; every (re)connect asks for a reconcile),
the timers (ScheduleCheck deadlines), the journal watcher (entries other processes wrote:
`bot enter` requests are claimed and sent here, drops are forgotten), the position watcher, the
ears (is the stream hearing the bot's own orders?), the heartbeat, and one reconciler that runs
the reconciles asked for, one at a time, while everything else goes on. A task that fails
(a 429, a timeout, a bug) is said and started again: transient trouble never ends the daemon.
Only the engine stopping (its journal cannot be written) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Protocol

from bot_cli.core.admission import foreign
from bot_cli.core.engine import TRANSITIONS
from bot_cli.core.events import Event, OperatorCancel, OperatorClose
from bot_cli.core.model import PendingId, PositionSide, Status
from bot_cli.core.retry import doubling_ms
from bot_cli.core.summary import Unclaimed, unclaimed_positions
from bot_cli.exchange.user_stream import UserStream
from bot_cli.exchange.wire import AccountUpdate, AlgoUpdate, OrderUpdate, StreamMessage
from bot_cli.runtime.deadman import DeadmanSwitch
from bot_cli.runtime.dispatch import Job
from bot_cli.runtime.ears import Ears, stream_should_say
from bot_cli.runtime.engine import ExecutionEngine, Recovery
from bot_cli.runtime.heartbeat import EVERY_S as HEARTBEAT_S
from bot_cli.runtime.heartbeat import Heartbeat
from bot_cli.store import requests
from bot_cli.venue import Unavailable


log = logging.getLogger("bot_cli.daemon")
TICK_S = 0.1
SHUTDOWN_GRACE_S = 10.0
STREAM_WAIT_S = 5.0
# A position that shrank below the entries' shares is re-read after this pause, so the
# ALGO_UPDATE of a leg that fired (which may come after the ACCOUNT_UPDATE) is in first.
POSITION_SETTLE_S = 1.0
DEAF_POLL_S = 2.0  # while the stream is deaf, reconcile by REST this often
YIELD_EVERY_S = 0.005  # the stream's reader lets the loop turn at least this often in a burst
FOREIGN_EVERY_S = 300.0  # conditional orders that are not the bot's are counted this often (40 weight)
BUSY_WAIT_S = 30.0  # a reconcile that skipped busy entries looks again once they are quiet, or after this
RETRY_FIRST_MS, RETRY_MAX_MS = 500, 5_000  # a failed task or reconcile is tried again this soon


def _allowed_requests(status: Status) -> set[str]:
    """The operator requests the lifecycle table has a row for in this status."""
    return {verb for verb, make in OPERATOR.items() if status in TRANSITIONS[type(make(PendingId(""), {}))]}


OPERATOR: dict[str, Callable[[PendingId, Mapping[str, str]], Event]] = {
    "cancel": lambda pid, _: OperatorCancel(pid),
    "cancel-close": lambda pid, _: OperatorCancel(pid, close=True),
    "close": lambda pid, _: OperatorClose(pid),
    "amend": requests.amend_event,
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
        self.ears = Ears()
        self.heartbeat = Heartbeat(engine, venue, engine.clock.now_ms(), ears=self.ears)
        engine.on_answer = self._answered
        self._positions: dict[tuple[str, PositionSide], Decimal] = {}
        self._seen_unclaimed: set[tuple[str, PositionSide]] = set()  # at the last beat
        self.on_unclaimed: Callable[[Unclaimed], None] | None = None  # e.g. the notifier
        # [protection] unclaimed = "protect": adopt a part no entry holds (ops.adopt), saying what was done
        self.adopter: Callable[[Unclaimed], Awaitable[str]] | None = None
        self._adopting: set[tuple[str, PositionSide]] = set()
        # deaf (True) / hearing again (False), and since when it was deaf
        self.on_deaf: Callable[[bool, int], None] | None = None
        self._journal_poked = asyncio.Event()
        self._position_moved = asyncio.Event()
        self._wanted: list[tuple[str, bool]] = []  # reconciles asked for: (why, read positions)
        self._want = asyncio.Event()
        self.reconciled = asyncio.Event()  # the first reconcile is done
        self._yielded = 0.0  # when the stream's reader last let the loop turn
        self.deadman: DeadmanSwitch | None = None  # countdownCancelAll per symbol, when configured
        self.on_step: Callable[[PendingId | None], None] | None = None  # an entry moved (the metrics)
        self.reconcile_failures = 0
        self.timers_turned_at = engine.clock.now_ms()  # the timers' last turn (the watchdog's "wedged")

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop is set; then let the commands in flight finish.

        The stream is opened first and its connection asks for the start-up reconcile. Only if
        the stream cannot connect soon is the journal reconciled without it, so a fill while
        down is never left waiting.
        """
        self._beat_once()  # `bot status` sees the daemon from its first moment, not after the stream
        tasks = [
            asyncio.create_task(self.stream.run(), name="stream"),
            self._task("reconciler", self._reconciler),
            self._task("timers", self._timers),
        ]
        try:
            await asyncio.wait_for(self.stream.connected.wait(), STREAM_WAIT_S)
        except TimeoutError:
            self.reconcile_soon("start-up, stream not connected yet")
        await self._read_positions()
        tasks += [
            self._task("journal", self._watch_journal_forever),
            self._task("positions", self._watch_positions),
            self._task("ears", self._listen),
            self._task("heartbeat", self._beat),
            self._task("account", self._count_foreign),
        ]
        if self.deadman is not None:
            self.heartbeat.deadman = self.deadman.describe
            tasks.append(self._task("deadman", self.deadman.run))
        await self._until_stopped(stop, tasks)

    async def _until_stopped(self, stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
        stopper = asyncio.create_task(stop.wait())
        died = asyncio.create_task(self.engine.died.wait())
        await asyncio.wait([stopper, died, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        await self._shutdown(tasks, [stopper, died])
        if self.engine.fatal is not None:
            raise self.engine.fatal  # the journal could not be written: nothing may go on
        if tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is not None:
            raise tasks[0].exception()  # type: ignore[misc]

    def _task(self, name: str, body: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        return asyncio.create_task(self._forever(name, body), name=name)

    async def _forever(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body``; if it fails, say so and run it again after a short backoff."""
        failures = 0
        while True:
            try:
                await body()
                failures = 0
            except Exception as err:  # noqa: BLE001 - transient trouble or a bug: said, then tried again
                if self.engine.fatal is not None:
                    return  # the engine stopped: run() ends the daemon
                failures += 1
                wait = doubling_ms(failures, RETRY_FIRST_MS, RETRY_MAX_MS) / 1000
                log.warning("%s: %s: %s; again in %.1fs", name, type(err).__name__, err, wait,
                            extra={"event": "task_failed", "task": name})  # fmt: skip
                await asyncio.sleep(wait)

    async def _shutdown(self, tasks: list[asyncio.Task[None]], waits: list[asyncio.Task[bool]]) -> None:
        self.view.note("shutting down: finishing the commands in flight", event="shutting_down")
        if self.engine.fatal is None:
            try:  # let the sends out now answer, so no decision is half-executed
                await asyncio.wait_for(self.engine.idle(), SHUTDOWN_GRACE_S)
            except TimeoutError:
                log.warning("shutdown: commands did not finish in %.0fs; the next start reconciles them",
                            SHUTDOWN_GRACE_S)
            except Exception as err:  # noqa: BLE001 - the engine died meanwhile: raised by run
                log.debug("shutdown: %s", err)
        for task in [*tasks, *waits]:
            task.cancel()
        for task in [*tasks, *waits]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.heartbeat.remove()  # a clean stop: `bot status` says no daemon, not a stale one

    async def _timers(self) -> None:
        while True:
            self.engine.fire_due_checks()
            self.timers_turned_at = self.engine.clock.now_ms()
            await asyncio.sleep(TICK_S)

    def poke(self, *_: object) -> None:
        """Look at the journal now (an entry was just written, e.g. by the inbox), not at the next tick."""
        self._journal_poked.set()

    async def _watch_journal_forever(self) -> None:
        while True:
            self._watch_journal()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._journal_poked.wait(), TICK_S)
            self._journal_poked.clear()

    def _watch_journal(self) -> None:
        for pid in self.engine.absorb_external():
            self.engine.wake(pid)  # written by another process (an adoption): it may need orders now
        self._take_requests()
        # Every REQUESTED entry, however it got into memory (this poll, or an event that
        # made the engine read the journal first): the daemon is the one that sends it.
        for pid in [pid for pid, p in self.engine.state.items() if p.status is Status.REQUESTED]:
            if self.engine.claim(pid):
                self.view.note(f"claimed requested entry {pid}", entry=pid, event="claimed")

    def _take_requests(self) -> None:
        """Operator requests (`bot cancel`, `bot close`): applied, then forgotten."""
        for request in requests.pending(self.engine.store.path):
            event = OPERATOR[request.verb](PendingId(request.pending_id), request.params)
            p = self.engine.state.get(PendingId(request.pending_id))
            if p is not None and request.verb in _allowed_requests(p.status):
                self.view.note(f"operator request: {request.verb} {request.pending_id}",
                               entry=request.pending_id, event=request.verb)
                self.engine.deliver(event)
                self.engine.flush()  # its effect is durable before the request is forgotten
            elif p is not None:  # a stale or hand-written request must not park the entry
                log.warning("request to %s %s refused: it is %s", request.verb, request.pending_id, p.status.value,
                            extra={"entry": request.pending_id, "event": request.verb})
            else:
                log.warning("request to %s %s: no such pending entry", request.verb, request.pending_id,
                            extra={"entry": request.pending_id, "event": request.verb})
            requests.done(request)

    # -- reconciles -------------------------------------------------------------------------

    def reconcile_soon(self, why: str, *, positions: bool = False) -> None:
        """Ask the reconciler for a reconcile; whoever asks goes on at once."""
        self._wanted.append((why, positions))
        self._want.set()

    async def _reconciler(self) -> None:
        """One reconcile at a time, each asked-for reason served; entries it had to skip (they
        moved while it read) are looked at again once they are quiet."""
        while True:
            await self._want.wait()
            self._want.clear()
            wanted, self._wanted = self._wanted, []
            why = "; ".join(dict.fromkeys(w for w, _ in wanted))
            recovery = await self._reconcile(why, positions=any(p for _, p in wanted))
            if recovery.skipped & set(recovery.plan.state):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.engine.quiet_all(recovery.skipped), BUSY_WAIT_S)
                self.reconcile_soon("again for entries that moved while the last one read")

    async def _reconcile(self, why: str, *, positions: bool) -> Recovery:
        """A reconcile, tried again (backoff) while the exchange has trouble."""
        failures = 0
        while True:
            try:
                recovery = await self.engine.recover(positions=positions, wait=False)
            except Exception as err:  # the engine says what it is; a fatal one ends run()
                if self.engine.fatal is not None:
                    raise
                failures += 1
                self.reconcile_failures += 1
                asked = err.retry_after if isinstance(err, Unavailable) else 0.0  # the exchange's word
                wait = max(doubling_ms(failures, RETRY_FIRST_MS, RETRY_MAX_MS) / 1000, asked)
                log.warning("reconcile (%s) failed: %s; again in %.1fs", why, err, wait,
                            extra={"event": "reconcile_failed"})  # fmt: skip
                await asyncio.sleep(wait)
                continue
            self.heartbeat.reconciled(recovery, why)
            self.view.recovered(recovery, why)
            self.reconciled.set()
            return recovery

    async def _on_gap(self, why: str) -> None:
        self.reconcile_soon(f"stream {why}")

    # -- the stream ---------------------------------------------------------------------------

    async def _on_message(self, message: StreamMessage) -> None:
        now = self.engine.clock.now_ms()
        self.heartbeat.event()
        if isinstance(message, OrderUpdate | AlgoUpdate):
            self._heard(message.report.client_id, now)
            if (pid := self.engine.deliver_report(message.report)) is not None:
                if self.on_step is not None:
                    self.on_step(pid)
                await self._let_sends_go()
        else:
            self._heard(None, now)
        if isinstance(message, AccountUpdate):
            self._positions.update(message.positions)
            if self.engine.positions_read(message.positions):  # below the shares: judged again shortly
                self._position_moved.set()
        self.view.message(message)  # after the engine: showing it is not on the fill-to-protection path

    async def _let_sends_go(self) -> None:
        """A burst of messages is stepped one after another without the loop turning: every
        YIELD_EVERY_S, let it turn, so what they decided is flushed (one fsync for the lot) and
        sent while the rest of the burst is read."""
        now = asyncio.get_running_loop().time()
        if now - self._yielded >= YIELD_EVERY_S:
            self._yielded = now
            await asyncio.sleep(0)

    def _answered(self, job: Job) -> None:
        """A REST answer showed one of our orders changed: the stream owes us that event."""
        if self.on_step is not None:
            self.on_step(job.pending_id)
        cid = stream_should_say(job)
        if cid is not None and self._stream_up():
            self.ears.expect(cid, job.queued_at, self.engine.clock.now_ms())

    def _stream_up(self) -> bool:
        return self.stream is not None and self.stream.connected.is_set()

    def _heard(self, client_id: str | None, now: int) -> None:
        if deaf_since := self.ears.hear(client_id, now):
            log.warning("user stream: it speaks again; back to following it",
                        extra={"event": "stream_hearing"})
            if self.on_deaf is not None:
                self.on_deaf(False, deaf_since)

    async def _listen(self) -> None:
        """Every order we send is a probe of the stream: deaf, reconcile by REST until it speaks."""
        while True:
            now = self.engine.clock.now_ms()
            if self.ears.check(now):
                owed = ", ".join(sorted(self.ears.owed)[:3])
                log.error("user stream deaf: no event for %s within %.0fs of the exchange's answer;"
                          " reconciling by REST every %.0fs until it speaks", owed,
                          self.ears.deaf_after_ms / 1000, DEAF_POLL_S, extra={"event": "stream_deaf"})
                if self.on_deaf is not None:
                    self.on_deaf(True, now)
            if self.ears.deaf:
                self.reconcile_soon("stream deaf")
                await asyncio.sleep(DEAF_POLL_S)
            else:
                await asyncio.sleep(TICK_S * 5)

    # -- positions and the heartbeat -------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            self._beat_once()
            await asyncio.sleep(HEARTBEAT_S)

    async def _read_positions(self) -> None:
        """Every position once at start (the stream then says what changes), so a position no
        entry explains is seen even if it never moves."""
        try:
            self._positions.update(await self.engine.venue.positions())
        except Exception as err:  # noqa: BLE001 - transient or not, the stream says what changes
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
                self._adopt(u)
        for symbol, side in flagged - {(u.symbol, u.position_side) for u in lasting}:
            log.info("%s %s: the position is explained by the entries again", symbol, side.value,
                     extra={"symbol": symbol, "event": "position_claimed"})
        self._seen_unclaimed = set(found)
        self.heartbeat.unclaimed = lasting

    def _adopt(self, u: Unclaimed) -> None:
        """Under the "protect" policy, adopt a lasting part no entry holds, one at a time."""
        key = (u.symbol, u.position_side)
        if self.adopter is None or key in self._adopting:
            return
        self._adopting.add(key)
        task = asyncio.create_task(self._adoption(u, key), name=f"adopt {u.symbol}")
        task.add_done_callback(lambda _: self._adopting.discard(key))

    async def _adoption(self, u: Unclaimed, key: tuple[str, PositionSide]) -> None:
        assert self.adopter is not None
        try:
            said = await self.adopter(u)
        except Exception as err:  # noqa: BLE001 - it stays flagged; the next beat tries again
            log.warning("%s %s: adopting the part no entry holds failed: %s", u.symbol, u.position_side.value, err,
                        extra={"symbol": u.symbol, "event": "adopt_failed"})  # fmt: skip
            self.heartbeat.unclaimed = [x for x in self.heartbeat.unclaimed if (x.symbol, x.position_side) != key]
            return
        log.warning("%s", said, extra={"symbol": u.symbol, "event": "adopted"})  # every view shows warnings

    def _beat_once(self) -> None:
        self._look_unclaimed()
        self.heartbeat.stream(self._stream_up())
        try:
            self.heartbeat.write()
        except OSError as err:  # never let the heartbeat stop the daemon
            log.warning("heartbeat not written: %s", err)

    async def _count_foreign(self) -> None:
        """The account's conditional orders no entry of the journal holds: admission counts them
        (here, when a REQUESTED entry is claimed, and in `bot enter` through the heartbeat)."""
        while True:
            algos = await self.engine.venue.open_algo_orders()
            self.engine.foreign_conditional = foreign(algos, set(self.engine.state))
            self.heartbeat.foreign_counted_at = self.engine.clock.now_ms()
            self._beat_once()  # `bot enter` reads the count from here: not a beat later
            await asyncio.sleep(FOREIGN_EVERY_S)

    async def _watch_positions(self) -> None:
        """Every wait has a wake-up: a position closed outside the bot's orders is noticed
        live (from ACCOUNT_UPDATE), not only at the next reconnect."""
        while True:
            await self._position_moved.wait()
            await asyncio.sleep(POSITION_SETTLE_S)
            self._position_moved.clear()
            if self.engine.position_unexplained(self._positions):
                self.reconcile_soon("a position changed outside the bot's orders", positions=True)
