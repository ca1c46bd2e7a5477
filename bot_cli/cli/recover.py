"""`bot recover [--dry-run]`: the daemon's reconciliation as a one-shot.

Exit codes: 0 nothing to do (or done); 2 the dry-run found work; 3 an operator must look
(an unreadable journal record, an entry needing attention), with or without work; 1 error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.errors import UsageError
from bot_cli.ops.journal import UNREADABLE


if TYPE_CHECKING:
    from bot_cli.core.commands import Command
    from bot_cli.ops.recover import Look, RecoverReport

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

    from bot_cli.ops import recover as recovering

    if as_json and not dry_run and not yes:
        raise UsageError("recover --json needs --yes to execute (a program cannot answer its prompt); "
                         "use --dry-run --json for the plan alone")
    obj: AppContext = ctx.obj
    obj.check_config()
    if dry_run:
        look = asyncio.run(recovering.dry_run(obj.config, obj.state_dir))
        if as_json:
            print_json(_plan_json(look))
        else:
            _show(look, obj)
        raise typer.Exit(ATTENTION if look.needs_attention else WORK_FOUND if look.has_work else 0)

    def show(look: Look, fresh: bool) -> None:
        if not as_json:
            _show(look, obj, fresh=fresh)

    done = asyncio.run(recovering.recover(obj.config, obj.state_dir, yes=yes, ask=_ask, show=show))
    if done.report is None:
        raise typer.Exit(1)  # the operator said no
    if as_json:
        executed = _report_json(done.report, done.look)
        print_json({**_plan_json(done.look), "replanned": done.replanned, **executed})
    else:
        _say_done(done.report, done.look, done.replanned)
    raise typer.Exit(ATTENTION if done.report.attention else 0)


_SENT = ("POST ", "DELETE ", "PUT ")  # what changed the exchange, not the reads or the journal


def _ask(replanned: bool) -> bool:
    question = ("The exchange changed after the plan was shown; execute this new plan?" if replanned
                else "Execute this plan?")
    return typer.confirm(question)


# -- output ---------------------------------------------------------------------------------


def _plan_json(look: Look) -> dict[str, Any]:
    plan = look.recovery.plan
    rows = [
        {"id": r.pending_id, "local": r.local.value, "exchange": r.exchange, "result": r.result.value,
         "calls": _calls(look, r.commands)}
        for r in plan.rows
    ]
    rows += [
        {"id": u.key, "local": UNREADABLE, "exchange": "not checked", "result": UNREADABLE, "calls": [],
         "attention": f"cannot be reconciled: {u.reason}; {u.advice}"}
        for u in look.unreadable
    ]
    return {
        "has_work": plan.has_work, "needs_attention": look.needs_attention,
        "rest_calls": look.recovery.calls, "request_weight": look.weight, "plan": rows,
    }


def _calls(look: Look, commands: Iterable[Command]) -> list[str]:
    """Each command as the request the REST client sends for it (or the local action)."""
    from bot_cli.cli.calls import describe

    return [describe(c, hedge_mode=look.hedge_mode) for c in commands]


def _report_json(report: RecoverReport, look: Look) -> dict[str, Any]:
    return {
        "executed": [{"id": o.pending_id, "calls": _calls(look, o.commands), "status": o.status,
                      "reason": o.reason} for o in report.executed],
        "left": {
            "pending": report.pending,
            "attention": [{"id": o.pending_id, "status": o.status, "reason": o.reason} for o in report.attention],
            "waiting": list(report.waiting),
        },
        "needs_attention": bool(report.attention),
    }


def _show(look: Look, obj: AppContext, fresh: bool = False) -> None:
    rows: list[tuple[str, str, str, str, str]] = [
        (r.pending_id, r.local.value, r.exchange, r.result.value if r.commands else "keep",
         "\n".join(_calls(look, r.commands)) or "-")
        for r in look.recovery.plan.rows
    ]
    rows += [
        (u.key, UNREADABLE, f"not checked ({u.reason})", "cannot be reconciled", u.advice)
        for u in look.unreadable
    ]
    what = "new recovery plan (the exchange changed)" if fresh else "recovery plan"
    calls, weight = look.recovery.calls, look.weight
    table(f"{what} for {obj.state_dir} ({calls} REST calls, request weight {weight}, to build it)",
          ("entry", "file says", "exchange says", "action", "calls"), rows)


def _say_done(report: RecoverReport, look: Look, replanned: bool) -> None:
    """What was sent for each entry and where it stands now, then what is left."""
    if replanned:
        typer.echo("re-planned: the exchange changed after the first look; the new plan was executed")
    for o in report.executed:
        typer.echo(f"{o.pending_id}: now {o.status}" + (f" ({o.reason})" if o.reason else ""))
        for call in _calls(look, o.commands):
            if call.startswith(_SENT):
                typer.echo(f"  sent {call}")
    waiting = f", {len(report.waiting)} still waiting on a check" if report.waiting else ""
    typer.echo(f"done; {report.pending} entries remain pending{waiting}")
    for o in report.attention:
        typer.echo(f"needs attention: {o.pending_id} {o.status}: {o.reason}")
