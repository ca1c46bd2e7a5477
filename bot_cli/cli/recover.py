"""`bot recover [--dry-run]`: the daemon's reconciliation as a one-shot.

Exit codes: 0 nothing to do (or done); 2 the dry-run found work; 3 an operator must look
(an unreadable journal record, an entry needing attention), with or without work; 1 error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli import ops
from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.errors import BotError, UsageError


if TYPE_CHECKING:
    from bot_cli.runtime.engine import ExecutionEngine, Recovery

WORK_FOUND = 2
ATTENTION = 3
_JSON_HELP = "Print JSON: the plan; with --yes, also what was executed and what is left."


def recover(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Execute without asking.")] = False,
) -> None:
    """Reconcile the journal with the exchange: show the plan, then (unless --dry-run) execute it.

    After the confirmation the exchange is read again; a plan that changed meanwhile is shown
    and asked about again (with --yes: executed, and said to be re-planned).
    """
    import asyncio

    from bot_cli.state_store import DaemonLock, LockHeld, lock_holder

    if as_json and not dry_run and not yes:
        raise UsageError("recover --json needs --yes to execute (a program cannot answer its prompt); "
                         "use --dry-run --json for the plan alone")
    obj: AppContext = ctx.obj
    obj.check_config()
    holder = lock_holder(obj.state_dir)
    if holder is not None and not dry_run:
        raise BotError(
            f"`bot run` (pid {holder}) holds {obj.state_dir} and reconciles on its own; "
            "use --dry-run to see the plan, or stop the daemon first"
        )
    if dry_run:
        raise typer.Exit(asyncio.run(_dry_run(obj, as_json)))
    try:
        with DaemonLock(obj.state_dir):
            code = asyncio.run(_recover(obj, as_json, yes))
    except LockHeld as err:
        raise BotError(f"`bot run` (pid {err.pid}) took {obj.state_dir} meanwhile; it reconciles on its own") from None
    raise typer.Exit(code)


async def _dry_run(obj: AppContext, as_json: bool) -> int:
    from bot_cli.connect import connect

    async with connect(obj.config, obj.state_dir) as conn:  # an unreachable venue: no file touched
        unreadable = _unreadable(obj)
        recovery = await _engine(obj, conn.rest).recover(execute=False)
        weight = conn.rest.weight_spent
    if as_json:
        print_json(_plan_json(recovery, unreadable, weight))
    else:
        _show(recovery, unreadable, obj, weight)
    if unreadable or _needs_attention(recovery):
        return ATTENTION
    return WORK_FOUND if recovery.plan.has_work else 0


async def _recover(obj: AppContext, as_json: bool, yes: bool) -> int:
    from bot_cli.connect import connect
    from bot_cli.runtime.settle import settle

    log = ops.CommandLog()
    async with connect(obj.config, obj.state_dir) as conn:
        unreadable = _unreadable(obj)
        engine = _engine(obj, conn.rest, log)
        recovery, replanned = await engine.recover(execute=False), False
        if not as_json:
            _show(recovery, unreadable, obj, conn.rest.weight_spent)
        if recovery.plan.has_work:
            chosen = await ops.confirm_fresh(
                engine, recovery, yes=yes, ask=_ask,
                show=lambda r: None if as_json else _show(r, unreadable, obj, conn.rest.weight_spent, fresh=True),
            )
            if chosen is None:
                return 1  # the operator said no
            recovery, replanned = chosen
            await engine.execute_plan(recovery.plan)
            await settle(engine, limit_s=obj.config.venue.recv_window_ms / 1000 + 10)
        report = ops.recover_report(engine.state, log, unreadable, engine.timers)
        weight = conn.rest.weight_spent
    if as_json:
        print_json({**_plan_json(recovery, unreadable, weight), "replanned": replanned, **_report_json(report)})
    else:
        _say_done(report, replanned)
    return ATTENTION if report.attention else 0


def _ask(replanned: bool) -> bool:
    question = ("The exchange changed after the plan was shown; execute this new plan?" if replanned
                else "Execute this plan?")
    return typer.confirm(question)


def _engine(obj: AppContext, rest: object, log: ops.CommandLog | None = None) -> ExecutionEngine:
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore

    cfg = obj.config
    store = PendingEntryStore(obj.state_dir)
    return ExecutionEngine(store, rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms, on_command=log)  # type: ignore[arg-type]


def _unreadable(obj: AppContext) -> list[ops.Unreadable]:
    from bot_cli.state_store import PendingEntryStore

    with PendingEntryStore(obj.state_dir) as store:  # its own view: the engine's polls stay intact
        return ops.find_unreadable(store)


def _needs_attention(recovery: Recovery) -> bool:
    from bot_cli.core.model import Status

    return any(r.result is Status.NEEDS_ATTENTION for r in recovery.plan.rows)


# -- output ---------------------------------------------------------------------------------


def _plan_json(recovery: Recovery, unreadable: list[ops.Unreadable], weight: int) -> dict[str, Any]:
    from bot_cli.cli.calls import describe

    plan = recovery.plan
    rows = [
        {"id": r.pending_id, "local": r.local.value, "exchange": r.exchange, "result": r.result.value,
         "calls": [describe(c) for c in r.commands]}
        for r in plan.rows
    ]
    rows += [
        {"id": u.key, "local": ops.UNREADABLE, "exchange": "not checked", "result": ops.UNREADABLE, "calls": [],
         "attention": f"cannot be reconciled: {u.reason}; {u.advice}"}
        for u in unreadable
    ]
    return {
        "has_work": plan.has_work, "needs_attention": bool(unreadable) or _needs_attention(recovery),
        "rest_calls": recovery.calls, "request_weight": weight, "plan": rows,
    }


def _report_json(report: ops.RecoverReport) -> dict[str, Any]:
    from bot_cli.cli.calls import describe

    return {
        "executed": [{"id": o.pending_id, "calls": [describe(c) for c in o.commands], "status": o.status,
                      "reason": o.reason} for o in report.executed],
        "left": {
            "pending": report.pending,
            "attention": [{"id": o.pending_id, "status": o.status, "reason": o.reason} for o in report.attention],
            "waiting": list(report.waiting),
        },
        "needs_attention": bool(report.attention),
    }


def _show(
    recovery: Recovery, unreadable: list[ops.Unreadable], obj: AppContext, weight: int, fresh: bool = False
) -> None:
    from bot_cli.cli.calls import describe

    rows: list[tuple[str, str, str, str, str]] = [
        (r.pending_id, r.local.value, r.exchange, r.result.value if r.commands else "keep",
         "\n".join(describe(c) for c in r.commands) or "-")
        for r in recovery.plan.rows
    ]
    rows += [
        (u.key, ops.UNREADABLE, f"not checked ({u.reason})", "cannot be reconciled", u.advice)
        for u in unreadable
    ]
    what = "new recovery plan (the exchange changed)" if fresh else "recovery plan"
    table(f"{what} for {obj.state_dir} ({recovery.calls} REST calls, request weight {weight}, to build it)",
          ("entry", "file says", "exchange says", "action", "calls"), rows)


def _say_done(report: ops.RecoverReport, replanned: bool) -> None:
    if replanned:
        typer.echo("re-planned: the exchange changed after the first look; the new plan was executed")
    waiting = f", {len(report.waiting)} still waiting on a check" if report.waiting else ""
    typer.echo(f"done; {report.pending} entries remain pending{waiting}")
    for o in report.attention:
        typer.echo(f"needs attention: {o.pending_id} {o.status}: {o.reason}")
