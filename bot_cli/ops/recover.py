"""`bot recover`: the daemon's reconciliation as a one-shot; the dry-run shows its plan.

``dry_run`` reads the journal and the exchange and returns the plan (changing nothing, even
with a daemon running). ``recover`` takes the state dir's lock, shows the plan, asks, reads
the exchange again (a plan that changed meanwhile is shown and asked about again), executes
it and lets the checks it scheduled run; it returns what was done and what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_cli.errors import BotError
from bot_cli.ops.journal import UNREADABLE, Unreadable, find_unreadable
from bot_cli.state_store import PendingEntryStore


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.core.commands import Command
    from bot_cli.core.model import Pending, PendingId
    from bot_cli.core.reconcile import Plan
    from bot_cli.runtime.engine import ExecutionEngine, Recovery
    from bot_cli.venue import Venue


@dataclass(frozen=True, slots=True)
class Look:
    """A plan as built from one look at the journal and the exchange, and what the look cost."""

    recovery: Recovery
    unreadable: list[Unreadable]
    weight: int  # the request weight spent so far by this command
    hedge_mode: bool  # how the calls are sent (positionSide or reduceOnly)

    @property
    def has_work(self) -> bool:
        return self.recovery.plan.has_work

    @property
    def needs_attention(self) -> bool:
        from bot_cli.core.model import Status

        parked = any(r.result is Status.NEEDS_ATTENTION for r in self.recovery.plan.rows)
        return parked or bool(self.unreadable)


@dataclass(frozen=True, slots=True)
class Done:
    """A recover that ran: the plan executed (None: the operator said no) and what it left."""

    look: Look
    replanned: bool
    report: RecoverReport | None


Show = Callable[[Look, bool], None]  # a plan, and whether it is a re-plan
Ask = Callable[[bool], bool]  # execute? (True: asked about a re-plan)


async def dry_run(cfg: Config, state_dir: Path) -> Look:
    """The plan; nothing is written or sent, and a daemon may be running."""
    from bot_cli.connect import connect

    async with connect(cfg, state_dir) as conn:  # an unreachable venue: no file touched
        unreadable = _unreadable(state_dir)
        recovery = await _engine(cfg, state_dir, conn.rest).recover(execute=False)
        return Look(recovery, unreadable, conn.rest.weight_spent, conn.rest.hedge_mode)


async def recover(cfg: Config, state_dir: Path, *, yes: bool, ask: Ask, show: Show) -> Done:
    """Show, confirm (``ask`` unless ``yes``), execute; BotError if a daemon holds the state dir."""
    from bot_cli.connect import connect
    from bot_cli.runtime.settle import settle
    from bot_cli.state_store import DaemonLock, LockHeld, lock_holder

    if (holder := lock_holder(state_dir)) is not None:
        raise BotError(f"`bot run` (pid {holder}) holds {state_dir} and reconciles on its own; "
                       "use --dry-run to see the plan, or stop the daemon first")  # fmt: skip
    try:
        with DaemonLock(state_dir):
            log = CommandLog()
            async with connect(cfg, state_dir) as conn:
                rest = conn.rest
                unreadable = _unreadable(state_dir)
                engine = _engine(cfg, state_dir, rest, log)

                def look(r: Recovery) -> Look:
                    return Look(r, unreadable, rest.weight_spent, rest.hedge_mode)

                first = look(await engine.recover(execute=False))
                show(first, False)
                if not first.has_work:
                    return Done(first, False, recover_report(engine.state, log, unreadable, engine.timers))
                chosen = await confirm_fresh(engine, first.recovery, yes=yes, ask=ask,
                                             show=lambda r: show(look(r), True))  # fmt: skip
                if chosen is None:
                    return Done(first, False, None)
                recovery, replanned = chosen
                await engine.execute_plan(recovery.plan)
                await settle(engine, limit_s=cfg.venue.recv_window_ms / 1000 + 10)
                report = recover_report(engine.state, log, unreadable, engine.timers)
                return Done(look(recovery), replanned, report)
    except LockHeld as err:
        raise BotError(f"`bot run` (pid {err.pid}) took {state_dir} meanwhile; it reconciles on its own") from None


def _engine(cfg: Config, state_dir: Path, rest: Venue, log: CommandLog | None = None) -> ExecutionEngine:
    from bot_cli.runtime.engine import ExecutionEngine

    store = PendingEntryStore(state_dir)
    return ExecutionEngine(store, rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms, on_command=log)


def _unreadable(state_dir: Path) -> list[Unreadable]:
    with PendingEntryStore(state_dir) as store:  # its own view: the engine's polls stay intact
        return find_unreadable(store)


# -- the steps ------------------------------------------------------------------------------


def plan_key(plan: Plan) -> tuple[Any, ...]:
    """What a plan does, without the times in it: equal for two looks at an unchanged exchange."""
    return tuple(
        (r.pending_id, r.local, r.exchange, r.result, tuple(_timeless(c) for c in r.commands))
        for r in plan.rows
    )


def _timeless(cmd: Command) -> object:
    from bot_cli.core import commands as cm

    if isinstance(cmd, cm.PersistPending):
        return ("persist", cmd.pending.status, cmd.new)
    if isinstance(cmd, cm.ArchivePending):
        return ("archive", cmd.pending.status, cmd.reason)
    if isinstance(cmd, cm.ScheduleCheck):
        return ("check", cmd.pending_id)
    return cmd  # sends, queries and alerts carry no time


async def confirm_fresh(
    engine: ExecutionEngine, shown: Recovery, *, yes: bool,
    ask: Callable[[bool], bool], show: Callable[[Recovery], None],
) -> tuple[Recovery, bool] | None:
    """The plan to execute and whether it was re-planned; None if the operator said no.

    After every yes the exchange is read again: a plan that changed meanwhile is shown and
    asked about again (ask(True)); with `yes` it is taken at once.
    """
    replanned = False
    while True:
        if not yes and not ask(replanned):
            return None
        fresh = await engine.recover(execute=False)
        if plan_key(fresh.plan) == plan_key(shown.plan):
            return fresh, replanned
        replanned = True
        show(fresh)
        if yes or not fresh.plan.has_work:
            return fresh, replanned
        shown = fresh


class CommandLog:
    """The commands an engine executed, by entry, in order (pass as its on_command hook)."""

    def __init__(self) -> None:
        self.by_entry: dict[PendingId, list[Command]] = {}

    def __call__(self, cmd: Command) -> None:
        pid = getattr(cmd, "pending_id", None) or cmd.pending.pending_id  # type: ignore[union-attr]
        self.by_entry.setdefault(pid, []).append(cmd)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where one entry ended up: its status and reason (or UNREADABLE) and what was executed."""

    pending_id: str
    status: str
    reason: str
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True)
class RecoverReport:
    executed: tuple[Outcome, ...]  # entries something was executed for
    attention: tuple[Outcome, ...]  # entries (and unreadable records) an operator must look at
    waiting: tuple[str, ...]  # entries with a check still scheduled
    pending: int  # entries left in the journal


def recover_report(
    state: Mapping[PendingId, Pending], log: CommandLog, unreadable: Iterable[Unreadable],
    waiting: Iterable[PendingId] = (),
) -> RecoverReport:
    """What a recover left behind, from the engine's state and the commands it executed."""
    from bot_cli.core.model import Status

    executed = tuple(_outcome(pid, state.get(pid), cmds) for pid, cmds in log.by_entry.items())
    attention = [Outcome(pid, p.status.value, p.reason) for pid, p in sorted(state.items())
                 if p.status is Status.NEEDS_ATTENTION]
    attention += [Outcome(u.key, UNREADABLE, f"{u.reason}; cannot be reconciled: {u.advice}") for u in unreadable]
    return RecoverReport(executed, tuple(attention), tuple(sorted(waiting)), len(state))


def _outcome(pid: PendingId, p: Pending | None, cmds: list[Command]) -> Outcome:
    from bot_cli.core.commands import ArchivePending

    if p is not None:
        return Outcome(pid, p.status.value, p.reason, tuple(cmds))
    last = next((c for c in reversed(cmds) if isinstance(c, ArchivePending)), None)
    if last is None:
        return Outcome(pid, "GONE", "left the journal through another process", tuple(cmds))
    return Outcome(pid, last.pending.status.value, last.reason, tuple(cmds))
