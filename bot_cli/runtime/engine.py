"""ExecutionEngine: the thin runtime over the core (the seed's public face).

It owns the in-memory view of the journal, runs the core's commands strictly in
order (a persist is durable before the next command runs), turns every outcome into
an event and feeds it back. One asyncio lock serialises live events, timers and
reconciliation, so two decisions about one entry never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.engine import open_entry, step
from bot_cli.core.errors import InvalidTransition
from bot_cli.core.ids import make_pending_id, parse_client_id
from bot_cli.core.model import (
    AlgoReport,
    ClientId,
    EntrySpec,
    Leg,
    OrderReport,
    OrderStatus,
    Pending,
    PendingId,
    Policy,
    PositionSide,
    Status,
)
from bot_cli.core.netting import netting_refusal
from bot_cli.core.reconcile import Lookups, Plan, Snapshot, book_symbols, lookups_needed, reconcile
from bot_cli.core.shares import allocate, shortfall
from bot_cli.errors import BotError
from bot_cli.runtime.clock import Clock, SystemClock
from bot_cli.runtime.executor import SENDS, PositionSeen
from bot_cli.state_store import PendingEntryStore, UnknownEntry
from bot_cli.store.codec import CorruptRecord, decode, encode
from bot_cli.venue import BOOK_WEIGHT_ALL_SYMBOLS, BOOK_WEIGHT_ONE_SYMBOL, Metered, NotFound, Venue


log = logging.getLogger("bot_cli.engine")
T = TypeVar("T")
R = TypeVar("R", OrderReport, AlgoReport)
CommandHook = Callable[[cm.Command], None]


class EntryNetting(BotError):
    """An entry refused before anything was written or sent: it would net against another
    entry's share of the same position (core.netting)."""


class Dropped(Exception):
    """The entry left the journal through another process (an operator's drop)."""

    def __init__(self, pending_id: PendingId) -> None:
        super().__init__(pending_id)
        self.pending_id = pending_id


@dataclass(frozen=True, slots=True)
class Recovery:
    plan: Plan
    lookups: Lookups
    calls: int  # REST calls the snapshot took
    weight: int | None = None  # the request weight they cost, where the venue counts it


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
    ) -> None:
        self.store, self.venue = store, venue
        self.clock = clock or SystemClock()
        self.policy, self.recv_window_ms = policy, recv_window_ms
        self.state: dict[PendingId, Pending] = {}
        self.timers: dict[PendingId, set[int]] = {}  # every deadline of an entry, not only the first
        self.alerts: list[tuple[PendingId, str]] = []
        self._gone: set[PendingId] = set()  # archived by this engine: ids are never reused
        self._on_command, self._on_alert = on_command, on_alert
        self._lock = asyncio.Lock()
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
                self.state.pop(pid, None)
                self.timers.pop(pid, None)
            else:
                self._absorb(key, record)
            changed.append(pid)
        return changed

    def _absorb(self, key: str, record: dict[str, object]) -> None:
        try:
            self.state[PendingId(key)] = decode(dict(record))
        except CorruptRecord as err:
            log.warning("journal record %s skipped: %s", key, err, extra={"entry": key, "event": "record_skipped"})

    # -- the seed's entry points ----------------------------------------------------

    async def execute_entry(self, spec: EntrySpec) -> Pending:
        """Persist the entry, then place it; returns the entry as it stands after the answer.

        Refused (EntryNetting, nothing written or sent) if it would net against another
        entry's share (core.netting): decided under the lock, against the entries in view."""
        now = self.clock.now_ms()
        pid = make_pending_id(now, secrets.randbelow(36**5))
        pending, cmds = open_entry(pid, spec, now, self.recv_window_ms)
        async with self._lock:
            if (conflict := netting_refusal(spec, self.state.values())) is not None:
                raise EntryNetting(conflict)
            self.state[pid] = pending
            await self._run(cmds)
        return self.state.get(pid) or pending

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

    async def on_order_report(self, report: OrderReport) -> None:
        """A matching-engine order update (stream or REST) for one of our ids."""
        parsed = parse_client_id(report.client_id)
        if parsed is None:
            return
        if parsed.leg is Leg.ENTRY:
            await self.handle(ev.entry_event(parsed.pending_id, report))
        elif parsed.leg is Leg.CLOSE and report.status is not OrderStatus.REJECTED:
            await self.handle(ev.CloseAccepted(parsed.pending_id))

    async def on_algo_report(self, report: AlgoReport) -> None:
        parsed = parse_client_id(report.client_id)
        if parsed is not None and parsed.leg in (Leg.SL, Leg.TP):
            await self.handle(ev.protection_event(parsed.pending_id, report))

    async def handle(self, event: ev.Event) -> None:
        async with self._lock:
            if event.pending_id not in self.state and event.pending_id not in self._gone:
                self.absorb_external()  # written by another process since we last looked
            await self._run(self._step(event))

    async def claim(self, pending_id: PendingId) -> bool:
        """Send a REQUESTED entry, deciding under the lock: a reconcile may have claimed it
        since the caller looked (then nothing is done: claimed twice would park it)."""
        async with self._lock:
            p = self.state.get(pending_id)
            if p is None or p.status is not Status.REQUESTED:
                return False
            conflict = netting_refusal(p.spec, self.state.values(), p) or ""
            await self._run(self._step(ev.EntryClaimed(pending_id, conflict)))
            return True

    async def run_due_checks(self) -> int:
        """Feed one CheckDue per entry with a due deadline (later ones stay); returns how many."""
        now = self.clock.now_ms()
        due = [pid for pid, ats in self.timers.items() if min(ats, default=now + 1) <= now]
        for pid in due:
            left = {at for at in self.timers.get(pid, set()) if at > now}
            if left:
                self.timers[pid] = left
            else:
                self.timers.pop(pid, None)
            if pid in self.state:
                await self.handle(ev.CheckDue(pid))
        return len(due)

    async def idle(self) -> None:
        """Return once no command sequence is running (and none can start before we return)."""
        async with self._lock:
            return

    def position_unexplained(self, positions: Mapping[tuple[str, PositionSide], Decimal]) -> bool:
        """A position below what this journal's entries hold: closed by hand, liquidated,
        ADL, or a leg whose report has not arrived yet. Reconcile to share it out."""
        live = list(self.state.values())
        return any(shortfall(live, symbol, side, amount) > 0 for (symbol, side), amount in positions.items())

    def next_check_at(self) -> int | None:
        return min((at for ats in self.timers.values() for at in ats), default=None)

    # -- reconciliation -------------------------------------------------------------

    async def snapshot(self, *, positions: bool = False) -> tuple[Snapshot, Lookups, int]:
        """The open books of the symbols the journal names, then only what they leave open."""
        open_orders, open_algos, reads = await self._open_books(book_symbols(self.state))
        lookups = lookups_needed(self.state, open_orders, open_algos, positions=positions)
        orders: dict[ClientId, OrderReport | None] = {}
        for symbol, cid in lookups.orders:
            orders[cid] = await _or_none(self.venue.query_order(symbol, cid))
        algos: dict[ClientId, AlgoReport | None] = {}
        for cid in lookups.algos:
            algos[cid] = await _or_none(self.venue.query_algo(cid))
        held = await self.venue.positions() if lookups.positions else None
        snap = Snapshot(open_orders, open_algos, orders, algos, held)
        return snap, lookups, reads + lookups.calls

    async def _open_books(
        self, symbols: tuple[str, ...]
    ) -> tuple[dict[ClientId, OrderReport], dict[ClientId, AlgoReport], int]:
        """Open orders and open algo orders: none for an empty journal; symbol by symbol (at
        once) while that costs less request weight than one read of every symbol's; else that."""
        if not symbols:
            return {}, {}, 0
        if len(symbols) * BOOK_WEIGHT_ONE_SYMBOL >= BOOK_WEIGHT_ALL_SYMBOLS:
            orders, algos = await self.venue.open_orders(), await self.venue.open_algo_orders()
            return _by_client_id(orders), _by_client_id(algos), 2
        orders = await _joined(self.venue.open_orders(s) for s in symbols)
        algos = await _joined(self.venue.open_algo_orders(s) for s in symbols)
        return _by_client_id(orders), _by_client_id(algos), 2 * len(symbols)

    async def recover(self, *, execute: bool = True, positions: bool = False) -> Recovery:
        """Reconcile the journal with the exchange; execute the plan unless told not to.

        positions=True reads the positions even where nothing else asks for them (a
        position that changed outside the bot's orders)."""
        async with self._lock:  # held across plan and execution: no event slips in between
            self.absorb_external()
            spent = self._weight_spent()
            snap, lookups, calls = await self.snapshot(positions=positions)
            weight = None if spent is None else (self._weight_spent() or 0) - spent
            plan = reconcile(self.state, snap, self.clock.now_ms(), self.policy)
            if execute:
                await self._execute_plan(plan)
        return Recovery(plan, lookups, calls, weight)

    def _weight_spent(self) -> int | None:
        return self.venue.weight_spent if isinstance(self.venue, Metered) else None

    async def execute_plan(self, plan: Plan) -> None:
        """Execute a plan made earlier by recover(execute=False), e.g. after a confirmation."""
        async with self._lock:
            await self._execute_plan(plan)

    async def _execute_plan(self, plan: Plan) -> None:
        for row in plan.rows:
            if row.pending_id in plan.state:
                self.state[row.pending_id] = plan.state[row.pending_id]
            else:
                self.state.pop(row.pending_id, None)
        await self._run(plan.commands)

    # -- the executor loop ----------------------------------------------------------

    def _step(self, event: ev.Event) -> list[cm.Command]:
        p = self.state.get(event.pending_id)
        if p is None:
            log.debug("event for an entry no longer pending (%s) ignored: %s", event.pending_id, type(event).__name__,
                      extra={"entry": event.pending_id, "event": type(event).__name__})
            return []
        event = self._shared_out(event)
        try:
            q, cmds = step(p, event, self.clock.now_ms(), self.policy)
        except InvalidTransition as err:  # one way, live as at reconcile: a human must look
            log.warning("%s", err, extra=_fields(p, event))
            q, cmds = step(p, ev.EvidenceConflict(p.pending_id, str(err)), self.clock.now_ms(), self.policy)
        if isinstance(event, ev.ProtectionRejected | ev.ProtectionWouldTrigger | ev.EntryRejected):
            log.warning("%s: %s refused (%s) %s", p.pending_id, getattr(event, "client_id", "entry"), event.code,
                        event.message, extra={**_fields(p, event), "code": event.code})
        if q.status is not p.status:
            log.info("%s %s -> %s%s", q.pending_id, p.status.value, q.status.value, f": {q.reason}" if q.reason else "",
                     extra={**_fields(q, event), "from_state": p.status.value})
        if q.status.terminal:
            self._gone.add(q.pending_id)  # late events for it (cancels of old legs) need no journal read
            self.state.pop(q.pending_id, None)
            self.timers.pop(q.pending_id, None)
        else:
            self.state[q.pending_id] = q
        return cmds

    def _shared_out(self, event: ev.Event) -> ev.Event:
        """A position read names the symbol's net position; the entry gets only its part of it."""
        if not isinstance(event, PositionSeen):
            return event
        p = self.state[event.pending_id]
        shares = allocate(self.state.values(), p.spec.symbol, p.spec.position_side, event.amount)
        return ev.PositionReport(event.pending_id, shares.get(event.pending_id, Decimal(0)))

    async def _run(self, cmds: Iterable[cm.Command]) -> None:
        """Execute in order; outcomes become events whose commands join the queue."""
        queue = deque(cmds)
        while queue:
            cmd = queue.popleft()
            try:
                events = await self._execute(cmd)
            except Dropped as gone:  # an operator dropped it meanwhile: send nothing more for it
                log.warning("entry %s was dropped by another process; its commands are skipped", gone.pending_id,
                            extra={"entry": gone.pending_id, "event": "dropped_elsewhere"})
                queue = deque(c for c in queue if _entry_of_command(c) != gone.pending_id)
                continue
            if self._on_command is not None:
                self._on_command(cmd)
            for event in events:
                queue.extend(self._step(event))

    async def _execute(self, cmd: cm.Command) -> list[ev.Event]:
        if isinstance(cmd, cm.PersistPending):
            self._persist(cmd.pending, cmd.new)
        elif isinstance(cmd, cm.ArchivePending):
            self._archive(cmd)
        elif isinstance(cmd, cm.ScheduleCheck):
            self.timers.setdefault(cmd.pending_id, set()).add(cmd.at)
        elif isinstance(cmd, cm.Alert):
            self.alerts.append((cmd.pending_id, cmd.message))
            log.error("entry %s needs attention: %s", cmd.pending_id, cmd.message,
                      extra={"entry": cmd.pending_id, "event": cmd.kind})
            if self._on_alert is not None:
                self._on_alert(cmd.pending_id, cmd.message, cmd.kind)
        else:
            return await SENDS[type(cmd)](self.venue, cmd)
        return []

    def _persist(self, p: Pending, new: bool) -> None:
        """Durable before the next command. A record another process archived stays archived."""
        if new:
            self.store.save(p.pending_id, encode(p))
        elif not self.store.update(p.pending_id, encode(p)):
            self._gone.add(p.pending_id)
            self.state.pop(p.pending_id, None)
            self.timers.pop(p.pending_id, None)
            raise Dropped(p.pending_id)

    def _archive(self, cmd: cm.ArchivePending) -> None:
        with contextlib.suppress(UnknownEntry):  # another process archived it first (pending drop)
            self.store.remove(cmd.pending.pending_id, cmd.reason, record=encode(cmd.pending))


def _fields(p: Pending, event: ev.Event) -> dict[str, object]:
    """Structured fields of a log line about one entry (JSON logs carry them)."""
    return {"entry": p.pending_id, "symbol": p.spec.symbol, "state": p.status.value,
            "client_id": getattr(event, "client_id", None), "event": type(event).__name__}


def _entry_of_command(cmd: cm.Command) -> PendingId | None:
    if isinstance(cmd, cm.PersistPending | cm.ArchivePending):
        return cmd.pending.pending_id
    return getattr(cmd, "pending_id", None)


def _by_client_id(reports: Iterable[R]) -> dict[ClientId, R]:
    return {r.client_id: r for r in reports}


async def _joined(reads: Iterable[Awaitable[list[R]]]) -> list[R]:
    """The reads run at once, their answers joined; the first failure is raised once all ended."""
    answers = await asyncio.gather(*reads, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [report for answer in answers if not isinstance(answer, BaseException) for report in answer]


async def _or_none(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except NotFound:
        return None
