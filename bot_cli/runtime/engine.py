"""ExecutionEngine: the thin runtime over the core (the seed's public face).

Decide under a lock, never wait under it. An event is stepped through the core and its
records queued at once, with no await in between (the event loop is the lock); one flush then
makes every queued record durable with one fsync (a group commit) and only then hands the
commands that depend on them to the dispatcher (runtime.dispatch). Sends run concurrently:
different entries never wait on each other's answers, and an entry's SL and TP go out at
once. Each order's commands keep their order (one outstanding question per order); every
answer comes back as an event, stepped the same way.

A reconcile reads the exchange with nothing held, then applies its plan only to the entries
that did not move meanwhile (no event, no send in flight while it read): a read older than
what an entry already knows never moves it backwards. The entries it skipped are named, so the
caller can look again once they are quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.admission import refusal
from bot_cli.core.engine import adopt_entry, open_entry, step
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import make_pending_id, parse_client_id
from bot_cli.core.model import (
    AlgoReport,
    ClientId,
    EntrySpec,
    OrderReport,
    OrderStatus,
    Pending,
    PendingId,
    Policy,
    PositionKey,
    Status,
)
from bot_cli.core.netting import netting_refusal
from bot_cli.core.positions import judge
from bot_cli.core.protect import at_rest
from bot_cli.core.reconcile import Lookups, Plan, Snapshot, reconcile
from bot_cli.core.shares import charge, shortfall
from bot_cli.errors import BotError
from bot_cli.runtime.clock import Clock, SystemClock
from bot_cli.runtime.dispatch import Dispatcher, Job, TaskDispatcher
from bot_cli.runtime.doubts import Doubts
from bot_cli.runtime.executor import SENDS, PositionSeen
from bot_cli.runtime.jobs import Jobs, Write
from bot_cli.runtime.reads import read_snapshot
from bot_cli.state_store import PendingEntryStore, UnknownEntry
from bot_cli.store.codec import CorruptRecord, decode, encode
from bot_cli.venue import Metered, Venue


log = logging.getLogger("bot_cli.engine")
CommandHook = Callable[[cm.Command], None]
Sleep = Callable[[float], Awaitable[None]]


class EntryNetting(BotError):
    """An entry refused before anything was written or sent: it would net against another
    entry's share of the same position (core.netting)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    plan: Plan
    lookups: Lookups
    calls: int  # REST calls the snapshot took
    weight: int | None = None  # the request weight they cost, where the venue counts it
    skipped: frozenset[PendingId] = frozenset()  # moved while the exchange was read: not applied


class ExecutionEngine:
    def __init__(
        self,
        store: PendingEntryStore,
        venue: Venue,
        *,
        clock: Clock | None = None,
        policy: Policy = Policy(),
        recv_window_ms: int = 5000,
        on_command: CommandHook | None = None,
        on_alert: Callable[[PendingId, str, str], None] | None = None,
        dispatcher: Dispatcher | None = None,
        sleep: Sleep = asyncio.sleep,
        entropy: Callable[[], int] = lambda: secrets.randbelow(36**5),
    ) -> None:
        self.store, self.venue = store, venue
        self.clock = clock or SystemClock()
        self.policy, self.recv_window_ms = policy, recv_window_ms
        self.state: dict[PendingId, Pending] = {}
        self.versions: dict[PendingId, int] = {}  # bumped at every change of an entry
        self.timers: dict[PendingId, set[int]] = {}  # every deadline of an entry, not only the first
        self.alerts: list[tuple[PendingId, str]] = []
        self.doubts = Doubts(policy)  # positions read short of the shares, not proven yet
        self.foreign_conditional = 0  # conditional orders on the account no entry holds (the daemon counts)
        self.dispatcher: Dispatcher = dispatcher or TaskDispatcher(self.run_job, venue)
        self.fatal: BaseException | None = None  # what killed it (a failed fsync): nothing more runs
        self.died = asyncio.Event()
        self.on_answer: Callable[[Job], None] | None = None  # every answered job (the daemon's ears)
        self._gone: set[PendingId] = set()  # archived: ids are never reused
        self._dropped: set[PendingId] = set()  # archived by another process: nothing more is sent for it
        self._on_command, self._on_alert, self._sleep, self._entropy = on_command, on_alert, sleep, entropy
        self._jobs = Jobs()
        self._flushing = False
        self.load()

    # -- the journal ----------------------------------------------------------------

    def load(self) -> None:
        """(Re)build the in-memory view from the journal."""
        self.state = {}
        for key, record in self.store.load_all().items():
            self._absorb(key, record)

    def absorb_external(self) -> list[PendingId]:
        """Take in entries other processes wrote (bot enter, pending drop)."""
        changed = []
        for key, record in self.store.poll():
            pid = PendingId(key)
            if record is None:
                self._forget(pid)
            else:
                self._absorb(key, record)
            changed.append(pid)
        return changed

    def _absorb(self, key: str, record: dict[str, object]) -> None:
        try:
            self._set(decode(dict(record)))
        except CorruptRecord as err:
            log.warning("journal record %s skipped: %s", key, err, extra={"entry": key, "event": "record_skipped"})

    def _set(self, p: Pending) -> None:
        self.state[p.pending_id] = p
        self.versions[p.pending_id] = self.versions.get(p.pending_id, 0) + 1

    def _forget(self, pid: PendingId) -> None:
        self.state.pop(pid, None)
        self.timers.pop(pid, None)
        self.versions[pid] = self.versions.get(pid, 0) + 1

    # -- the seed's entry points ----------------------------------------------------

    async def execute_entry(self, spec: EntrySpec) -> Pending:
        """Persist the entry, then place it; returns the entry as it stands after the answer.

        Refused (EntryNetting, nothing written or sent) if it would net against another
        entry's share (core.netting) or its legs would not fit the account's limit
        (core.admission): decided against the entries in view, with no await."""
        now = self.clock.now_ms()
        pid = make_pending_id(now, self._entropy())
        if (conflict := self.refusal(spec)) is not None:
            raise EntryNetting(conflict)
        pending, cmds = open_entry(pid, spec, now, self.recv_window_ms)
        self._set(pending)
        self._accept(cmds)
        await self.quiet(pid)
        return self.state.get(pid) or pending

    async def adopt(self, spec: EntrySpec, avg_price: Decimal | None) -> Pending:
        """Make a part of a position no entry holds an entry of its own (core.engine.adopt_entry):
        persisted, then its legs placed; returns it as it stands once they answered."""
        p = self.adopt_now(spec, avg_price)
        await self.quiet(p.pending_id)
        return self.state.get(p.pending_id) or p

    def adopt_now(self, spec: EntrySpec, avg_price: Decimal | None) -> Pending:
        """The adoption decided and on disk when this returns (its legs go out after), so a
        caller holding the admission lock releases it with the adoption durable."""
        now = self.clock.now_ms()
        pid = make_pending_id(now, self._entropy())
        pending, cmds = adopt_entry(pid, spec, avg_price, now, self.recv_window_ms, policy=self.policy)
        self._set(pending)
        self._accept(cmds)
        self.flush()
        return pending

    async def handle_order_filled(
        self, client_order_id: str, filled_qty: Decimal, avg_price: Decimal | None = None, order_id: int = 0
    ) -> None:
        p = self._entry_of(client_order_id)
        if p is not None:
            status = OrderStatus.FILLED if filled_qty >= p.spec.quantity else OrderStatus.PARTIALLY_FILLED
            await self.on_order_report(OrderReport(
                p.spec.symbol, ClientId(client_order_id), order_id or p.order_id or 0, status,
                filled_qty, avg_price, p.spec.quantity,
            ))

    async def handle_order_cancelled(self, client_order_id: str, filled_qty: Decimal = Decimal(0)) -> None:
        p = self._entry_of(client_order_id)
        if p is not None:
            await self.on_order_report(OrderReport(
                p.spec.symbol, ClientId(client_order_id), p.order_id or 0, OrderStatus.CANCELED,
                filled_qty, p.avg_price, p.spec.quantity,
            ))

    def _entry_of(self, client_order_id: str) -> Pending | None:
        parsed = parse_client_id(client_order_id)
        return None if parsed is None else self.state.get(parsed.pending_id)

    # -- events ---------------------------------------------------------------------

    def deliver_report(self, report: OrderReport | AlgoReport) -> PendingId | None:
        """An order report (stream or REST) for one of our ids, stepped now; its sends go out
        once flushed, without the caller waiting for them. The entry it was for, if ours."""
        event = ev.of_order(report) if isinstance(report, OrderReport) else ev.of_algo(report)
        if event is None:
            return None
        self.deliver(event)
        return event.pending_id

    async def on_order_report(self, report: OrderReport) -> None:
        """As deliver_report, then wait until that entry has nothing in flight."""
        if (pid := self.deliver_report(report)) is not None:
            await self.quiet(pid)

    async def on_algo_report(self, report: AlgoReport) -> None:
        if (pid := self.deliver_report(report)) is not None:
            await self.quiet(pid)

    def deliver(self, event: ev.Event | PositionSeen) -> None:
        """Step ``event`` and queue what it decided (no await: nothing interleaves)."""
        self._alive()
        if event.pending_id not in self.state and event.pending_id not in self._gone:
            self.absorb_external()  # written by another process since we last looked
        self._accept(self._step(event))

    async def handle(self, event: ev.Event) -> None:
        """Deliver, then wait until the entry has nothing in flight."""
        self.deliver(event)
        await self.quiet(event.pending_id)

    def claim(self, pending_id: PendingId) -> bool:
        """Take a REQUESTED entry to send it (decided now: nothing interleaves); False if it
        is not REQUESTED any more (a reconcile or another look took it)."""
        p = self.state.get(pending_id)
        if p is None or p.status is not Status.REQUESTED:
            return False
        self.deliver(ev.EntryClaimed(pending_id, self.refusal(p.spec, p) or ""))
        return True

    def refusal(self, spec: EntrySpec, me: Pending | None = None) -> str | None:
        """Why ``spec`` (the entry ``me``, when it is in view) must not be sent: it would net
        against another entry's share, or its legs would not fit the account's open conditional
        orders with what is in view now (bot enter checked both; things may have changed)."""
        others = [p for p in self.state.values() if me is None or p.pending_id != me.pending_id]
        if (why := netting_refusal(spec, self.state.values(), me, stacking=self.policy.stacking)) is not None:
            return why
        limit = refusal(spec, others, foreign_conditional=self.foreign_conditional)
        return None if limit is None else str(limit)

    def wake(self, pid: PendingId) -> None:
        """Look at an entry another process wrote: if it is waiting for something (an adopted
        share with no legs yet), a check now lets convergence place what it needs."""
        p = self.state.get(pid)
        if p is not None and not at_rest(p) and not self.timers.get(pid) and not self.busy(pid):
            self.deliver(ev.CheckDue(pid))

    def fire_due_checks(self) -> list[PendingId]:
        """Deliver one CheckDue per entry with a due deadline (later ones stay), and read each
        position in doubt whose orders have settled."""
        now = self.clock.now_ms()
        carriers = []
        for (symbol, side), carrier in self.doubts.due(self.state.values(), now):
            self._accept([cm.QueryPosition(carrier, symbol, side)])  # a position in doubt, settled: read it
            carriers.append(carrier)
        due = [pid for pid, ats in self.timers.items() if min(ats, default=now + 1) <= now]
        for pid in due:
            left = {at for at in self.timers.get(pid, set()) if at > now}
            if left:
                self.timers[pid] = left
            else:
                self.timers.pop(pid, None)
            if pid in self.state:
                self.deliver(ev.CheckDue(pid))
        return [*due, *carriers]

    async def run_due_checks(self) -> int:
        """fire_due_checks, then wait until those entries have nothing in flight."""
        due = self.fire_due_checks()
        await self.quiet_all(due)
        return len(due)

    def positions_read(self, positions: Mapping[PositionKey, Decimal]) -> bool:
        """Positions as the stream reports them: a shortfall they show is read again over REST
        (core.positions) before any share moves; the stream's word alone never moves one. True
        when one is below what the entries hold (position_unexplained)."""
        short = False
        for key, amount in positions.items():
            if any(p.key == key for p in self.state.values()):
                verdict = judge(self.state.values(), key, amount, None)
                self.doubts.note(key, verdict, self.clock.now_ms())
                short = short or verdict.shortfall > 0
        return short

    def position_unexplained(self, positions: Mapping[PositionKey, Decimal]) -> bool:
        """A position below what this journal's entries hold: closed by hand, liquidated,
        ADL, or a leg whose report has not arrived yet. A reconcile judges it."""
        live = list(self.state.values())
        return any(shortfall(live, symbol, side, amount) > 0 for (symbol, side), amount in positions.items())

    def next_check_at(self) -> int | None:
        """The next deadline: an entry's, or a position's to read again (once it has settled)."""
        times = [at for ats in self.timers.values() for at in ats]
        return min([*times, *self.doubts.next_at(self.state.values())], default=None)

    def busy(self, pid: PendingId) -> bool:
        """Something of this entry is queued or in flight."""
        return self._jobs.busy(pid)

    # -- waiting ----------------------------------------------------------------------

    async def quiet(self, pid: PendingId) -> None:
        """Return once the entry has nothing queued or in flight."""
        await self.quiet_all([pid])

    async def quiet_all(self, pids: Iterable[PendingId]) -> None:
        wanted = set(pids)
        await self._jobs.until(lambda: not any(self._jobs.busy(pid) for pid in wanted), self.flush)
        self._alive()

    async def idle(self) -> None:
        """Return once nothing is queued or in flight at all; every record is durable then."""
        await self._jobs.until(lambda: self._jobs.idle, self.flush)
        self._alive()

    def _alive(self) -> None:
        if self.fatal is not None:
            raise self.fatal

    def halt(self, why: BaseException) -> None:
        """Stop at once, as a killed process would: nothing queued is written or sent."""
        self._die(why)

    def _die(self, err: BaseException) -> None:
        if self.fatal is None:
            self.fatal = err
            self.died.set()
            log.error("the engine stopped: %s", err, extra={"event": "engine_failed"})
        self._jobs.clear()

    # -- reconciliation -------------------------------------------------------------

    async def snapshot(self, *, positions: bool = False) -> tuple[Snapshot, Lookups, int]:
        """The open books of the symbols the journal names, then only what they leave open."""
        return await read_snapshot(self.venue, self.state, positions=positions)

    async def recover(self, *, execute: bool = True, positions: bool = False, wait: bool = True) -> Recovery:
        """Reconcile the journal with the exchange; execute the plan unless told not to.

        positions=True reads the positions even where nothing else asks for them. A position
        short of the shares is read once more, ``position_confirm_ms`` later, before the plan
        moves any share (core.positions). ``wait``: return once the plan's sends have answered."""
        self.flush()
        self.absorb_external()
        spent, marks, busy = self._weight_spent(), dict(self.versions), self._jobs.entries_busy
        snap, lookups, calls = await self.snapshot(positions=positions)
        plan = reconcile(self.state, snap, self.clock.now_ms(), self.policy, self.doubts.suspects)
        if plan.suspects and snap.positions is not None:
            await self._sleep(self.policy.position_confirm_ms / 1000)
            snap, calls = replace(snap, positions=await self.venue.positions()), calls + 1
            plan = reconcile(self.state, snap, self.clock.now_ms(), self.policy, plan.suspects)
        weight = None if spent is None else (self._weight_spent() or 0) - spent
        moved = frozenset(
            pid for pid in self.state if pid in busy or self.busy(pid) or marks.get(pid) != self.versions[pid]
        )
        if execute:
            if snap.positions is not None:
                self.doubts.planned(plan)
            self._apply(plan, moved)
            if wait:
                await self.quiet_all(pid for pid in plan.state if pid not in moved)
        return Recovery(plan, lookups, calls, weight, moved)

    def _weight_spent(self) -> int | None:
        return self.venue.weight_spent if isinstance(self.venue, Metered) else None

    async def execute_plan(self, plan: Plan) -> None:
        """Execute a plan made earlier by recover(execute=False), e.g. after a confirmation."""
        self._apply(plan, frozenset())
        await self.idle()

    def _apply(self, plan: Plan, skip: frozenset[PendingId]) -> None:
        for row in plan.rows:
            if row.pending_id in skip:
                continue
            if row.pending_id in plan.state:
                self._set(plan.state[row.pending_id])
            else:
                self._forget(row.pending_id)
                self._gone.add(row.pending_id)
            self._accept(list(row.commands))
        self.flush()

    # -- stepping ---------------------------------------------------------------------

    def _step(self, event: ev.Event | PositionSeen) -> list[cm.Command]:
        if isinstance(event, PositionSeen):
            return self._judge_read(event)
        p = self.state.get(event.pending_id)
        if p is None:
            log.debug("event for an entry no longer pending (%s) ignored: %s", event.pending_id, type(event).__name__,
                      extra={"entry": event.pending_id, "event": type(event).__name__})
            return []
        try:
            q, cmds = step(p, event, self.clock.now_ms(), self.policy)
        except InvalidTransition as err:  # one way, live as at reconcile: a human must look
            log.warning("%s", err, extra=_fields(p, event))
            q, cmds = step(p, ev.EvidenceConflict(p.pending_id, str(err)), self.clock.now_ms(), self.policy)
        _log_step(p, q, event)
        if q.status.terminal:
            self._gone.add(q.pending_id)  # late events for it (cancels of old legs) need no journal read
            self._forget(q.pending_id)
        else:
            self._set(q)
        return cmds

    def _judge_read(self, seen: PositionSeen) -> list[cm.Command]:
        """A position read (asked for by an entry, or a recheck): what it means for every entry
        on that position (core.positions)."""
        p = self.state.get(seen.pending_id)
        if p is None:
            return []
        verdict = judge(self.state.values(), p.key, seen.amount, self.doubts.suspects.get(p.key))
        self.doubts.note(p.key, verdict, self.clock.now_ms())
        return [c for event in verdict.events.values() for c in self._step(event)]

    # -- executing ----------------------------------------------------------------------

    def _accept(self, cmds: Iterable[cm.Command]) -> None:
        """Queue what a step decided: records for the next flush, sends behind them."""
        for cmd in cmds:
            if isinstance(cmd, cm.PersistPending | cm.ArchivePending):
                self._jobs.writes.append(cmd)
            elif isinstance(cmd, cm.ScheduleCheck):
                self.timers.setdefault(cmd.pending_id, set()).add(cmd.at)
                self._done(cmd)
            elif isinstance(cmd, cm.Alert):
                self._alert(cmd)
            elif isinstance(cmd, cm.Overdrawn):
                self._charge(cmd)
            else:
                self._jobs.job(cmd, self._stamp(cmd))
        self._flush_soon()

    def _charge(self, cmd: cm.Overdrawn) -> None:
        """An entry's orders executed more than it filled: the entries whose shares that took
        (core.shares.charge) are told, each in its own step; what no entry held is said."""
        key = (cmd.symbol, cmd.position_side)
        taken = charge(self.state.values(), key, cmd.side, cmd.quantity, taker=cmd.pending_id)
        for pid, quantity in taken.items():
            self._accept(self._step(ev.ShareTaken(pid, cmd.client_id, quantity, cmd.pending_id, cmd.what, cmd.price)))
        rest = cmd.quantity - sum(taken.values(), Decimal(0))
        if rest > 0:
            said = (f"{cmd.symbol} {cmd.what} {cmd.client_id} of {cmd.pending_id} executed {rest} more than any entry"
                    " held: it closed a part of the position no entry held")
            self._alert(cm.Alert(cmd.pending_id, said, "over_execution"))
        self._done(cmd)

    def _stamp(self, cmd: cm.Send | cm.Query) -> int:
        """The send time the core stamped on a new order (its "never landed" clock starts there);
        for anything else, now."""
        p = self.state.get(cmd.pending_id)
        if p is not None and isinstance(cmd, cm.PlaceEntry):
            return p.sent_at
        if p is not None and isinstance(cmd, cm.PlaceProtection) and (leg := p.find_leg(cmd.client_id)):
            return leg.sent_at
        if p is not None and isinstance(cmd, cm.ClosePosition) and p.close is not None:
            return p.close.sent_at
        return self.clock.now_ms()

    def _alert(self, cmd: cm.Alert) -> None:
        self.alerts.append((cmd.pending_id, cmd.message))
        if cmd.kind == "needs_attention":
            log.error("entry %s needs attention: %s", cmd.pending_id, cmd.message,
                      extra={"entry": cmd.pending_id, "event": cmd.kind})
        else:  # said to a person too, but nothing is parked
            log.warning("entry %s: %s", cmd.pending_id, cmd.message, extra={"entry": cmd.pending_id, "event": cmd.kind})
        if self._on_alert is not None:
            self._on_alert(cmd.pending_id, cmd.message, cmd.kind)
        self._done(cmd)

    def _flush_soon(self) -> None:
        """One flush per turn of the event loop: every record queued meanwhile shares its fsync."""
        if self._flushing or not (self._jobs.writes or self._jobs.ready):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): it flushes itself
        self._flushing = True
        loop.call_soon(self._flush_quietly)

    def _flush_quietly(self) -> None:
        with contextlib.suppress(BaseException):  # _die has it; every waiter raises it
            self.flush()

    def flush(self) -> None:
        """Make every queued record durable (one fsync), then hand out the sends behind them."""
        self._flushing = False
        self._alive()
        writes, jobs = self._jobs.take()
        try:
            gone = self._commit(writes)
        except BaseException as err:
            self._die(err)
            raise
        for job in jobs:
            if job.pending_id in gone:
                self._jobs.unbusy(job)
            elif self._jobs.start(job):
                self.dispatcher.submit(job)
        self._jobs.wake()

    def _commit(self, writes: list[Write]) -> set[PendingId]:
        """Persist in one write, then archive; the entries another process removed meanwhile."""
        puts = [w for w in writes if isinstance(w, cm.PersistPending)]
        refused = self.store.put_many((w.pending.pending_id, encode(w.pending), w.new) for w in puts)
        gone = {PendingId(pid) for pid in refused}
        for pid in gone:
            log.warning("entry %s was dropped by another process; its commands are skipped", pid,
                        extra={"entry": pid, "event": "dropped_elsewhere"})
            self._gone.add(pid)
            self._dropped.add(pid)
            self._forget(pid)
        for w in writes:
            if isinstance(w, cm.ArchivePending) and w.pending.pending_id not in gone:
                with contextlib.suppress(UnknownEntry):  # another process archived it first
                    self.store.remove(w.pending.pending_id, w.reason, record=encode(w.pending))
        for w in writes:
            if _entry_of_command(w) not in gone:
                self._done(w)
        return gone

    async def run_job(self, job: Job) -> None:
        """The dispatcher's call: send, then step the answer."""
        if self.fatal is not None:
            return
        try:
            await self.send(job)
            self.complete(job)
        except asyncio.CancelledError:
            raise  # the daemon stops: the next start reconciles what this left open
        except BaseException as err:  # noqa: BLE001 - the journal failed (or a test's crash): it is dead
            self._die(err)

    async def send(self, job: Job) -> None:
        """The network call of one job; its outcome (as events) is kept on the job."""
        try:
            job.events = await self.call(job)
        except Exception as err:  # a bug, not the exchange: said, and the entry asks again later
            log.exception("%s for %s failed unexpectedly", type(job.cmd).__name__, job.key)
            job.events = [ev.QueryFailed(job.pending_id, f"unexpected {type(err).__name__}")]
        self._done(job.cmd)

    async def call(self, job: Job) -> list[Any]:
        """The network call of one job, as events. A new order that waited too long is not sent
        but stamped anew first (core.rules.send_delayed): "never landed" stays measured from
        near the real send."""
        if job.pending_id in self._dropped:
            return []  # an operator dropped it while this waited: nothing more is sent for it
        waited = self.clock.now_ms() - job.queued_at
        if job.counted and waited > self.policy.send_delay_ms:
            self._jobs.grant(job.key)
            return [ev.SendDelayed(job.pending_id, ClientId(job.key), job.queued_at)]
        return await SENDS[type(job.cmd)](self.venue, job.cmd)

    def complete(self, job: Job) -> None:
        """Step a job's answer; the next job of its order may go."""
        if (nxt := self._jobs.finished(job, self._dropped)) is not None:
            self.dispatcher.submit(nxt)
        for event in job.events:
            self.deliver(event)
        if self.on_answer is not None:
            self.on_answer(job)
        self._flush_soon()
        self._jobs.wake()

    def _done(self, cmd: cm.Command) -> None:
        if self._on_command is not None:
            self._on_command(cmd)


def _log_step(p: Pending, q: Pending, event: ev.Event) -> None:
    if isinstance(event, ev.ProtectionRejected | ev.ProtectionWouldTrigger | ev.EntryRejected):
        log.warning("%s: %s refused (%s) %s", p.pending_id, getattr(event, "client_id", "entry"), event.code,
                    event.message, extra={**_fields(p, event), "code": event.code})
    if q.status is not p.status:
        log.info("%s %s -> %s%s", q.pending_id, p.status.value, q.status.value, f": {q.reason}" if q.reason else "",
                 extra={**_fields(q, event), "from_state": p.status.value})


def _fields(p: Pending, event: ev.Event) -> dict[str, object]:
    """Structured fields of a log line about one entry (JSON logs carry them)."""
    return {"entry": p.pending_id, "symbol": p.spec.symbol, "state": p.status.value,
            "client_id": getattr(event, "client_id", None), "event": type(event).__name__}


def _entry_of_command(cmd: cm.Command) -> PendingId | None:
    if isinstance(cmd, cm.PersistPending | cm.ArchivePending):
        return cmd.pending.pending_id
    return getattr(cmd, "pending_id", None)


