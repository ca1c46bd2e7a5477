"""`bot recover [--dry-run]`: the daemon's reconciliation as a one-shot.

Exit codes: 0 nothing to do (or done), 2 the dry-run found work, 1 error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.errors import BotError


if TYPE_CHECKING:
    from bot_cli.runtime.engine import ExecutionEngine, Recovery

WORK_FOUND = 2


def recover(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Execute without asking.")] = False,
) -> None:
    """Reconcile the journal with the exchange: show the plan, then (unless --dry-run) execute it."""
    import asyncio

    from bot_cli.state_store import DaemonLock, LockHeld, lock_holder

    obj: AppContext = ctx.obj
    obj.config  # a config error surfaces before anything else
    holder = lock_holder(obj.state_dir)
    if holder is not None and not dry_run:
        raise BotError(
            f"`bot run` (pid {holder}) holds {obj.state_dir} and reconciles on its own; "
            "use --dry-run to see the plan, or stop the daemon first"
        )
    if dry_run:
        recovery, weight = asyncio.run(_plan(obj))
        _show(recovery, as_json, obj, weight)
        raise typer.Exit(WORK_FOUND if recovery.plan.has_work else 0)
    try:
        with DaemonLock(obj.state_dir):
            asyncio.run(_recover(obj, as_json, yes))
    except LockHeld as err:
        raise BotError(f"`bot run` (pid {err.pid}) took {obj.state_dir} meanwhile; it reconciles on its own") from None


async def _plan(obj: AppContext) -> tuple[Recovery, int]:
    from bot_cli.connect import connect

    async with connect(obj.config, obj.state_dir) as conn:
        engine = _engine(obj, conn.rest)
        recovery = await engine.recover(execute=False)
        return recovery, conn.rest.weight_spent


async def _recover(obj: AppContext, as_json: bool, yes: bool) -> None:
    from bot_cli.connect import connect
    from bot_cli.runtime.settle import settle

    async with connect(obj.config, obj.state_dir) as conn:
        engine = _engine(obj, conn.rest)
        recovery = await engine.recover(execute=False)
        _show(recovery, as_json, obj, conn.rest.weight_spent)
        if not recovery.plan.has_work:
            return
        if not yes and not typer.confirm("Execute this plan?"):
            raise typer.Exit(1)
        await engine.execute_plan(recovery.plan)
        left = await settle(engine, limit_s=obj.config.venue.recv_window_ms / 1000 + 10)
        if not as_json:
            typer.echo(f"done; {len(engine.state)} entries remain pending" + (f", {left} still waiting on a check" if left else ""))


def _engine(obj: AppContext, rest: object) -> ExecutionEngine:
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore

    cfg = obj.config
    store = PendingEntryStore(obj.state_dir)
    return ExecutionEngine(store, rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms)  # type: ignore[arg-type]


def _show(recovery: Recovery, as_json: bool, obj: AppContext, weight: int = 0) -> None:
    from bot_cli.cli.calls import describe

    plan = recovery.plan
    if as_json:
        print_json({
            "has_work": plan.has_work,
            "rest_calls": recovery.calls,
            "request_weight": weight,
            "plan": [
                {"id": r.pending_id, "local": r.local.value, "exchange": r.exchange, "result": r.result.value,
                 "calls": [describe(c) for c in r.commands]}
                for r in plan.rows
            ],
        })
        return
    rows = [
        (r.pending_id, r.local.value, r.exchange, r.result.value if r.commands else "keep",
         "\n".join(describe(c) for c in r.commands) or "-")
        for r in plan.rows
    ]
    table(f"recovery plan for {obj.state_dir} ({recovery.calls} REST calls, request weight {weight}, to build it)",
          ("entry", "file says", "exchange says", "action", "calls"), rows)
