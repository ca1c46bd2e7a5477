"""`bot pending list` and `bot pending drop`."""

from __future__ import annotations

import gc
import time
from typing import Annotated

import typer

from bot_cli import ops
from bot_cli.cli.context import AppContext
from bot_cli.cli.render import age, print_json, table, warn
from bot_cli.state_store import PendingEntryStore


app = typer.Typer(no_args_is_help=True, help="Inspect and purge pending entries (archived, never erased).")
HEADERS = ("id", "symbol", "side", "qty", "filled", "state", "entry client id", "stop-loss", "take-profit", "age")


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the pending entries in the journal (a record the bot cannot read shows as UNREADABLE)."""
    gc.disable()  # a short process over many small records: the cycle collector only costs time
    obj: AppContext = ctx.obj
    rows, problems = ops.list_pending(PendingEntryStore(obj.state_dir))
    now = time.time_ns() // 1_000_000
    for problem in problems:
        warn(problem)
    if as_json:
        print_json({"pending": [r.as_json(now) for r in rows]})
        return
    cells = [
        (r.pending_id, r.symbol, r.side, r.quantity, r.filled, r.status, r.entry_client_id or "-",
         r.stop_loss, r.take_profit or "-", _age(r.age_s(now)))
        for r in rows
    ]
    table(f"{len(rows)} pending entries in {obj.state_dir}", HEADERS, cells)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else age(seconds)


@app.command("drop")
def drop(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Pending ids to drop (see `bot pending list`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Drop even if its orders may still work on the exchange, or its record is unreadable."
    )] = False,
) -> None:
    """Move pending entries to the archive (reason: dropped). Nothing is erased.

    Refused, unless --force, while the journal says an entry's orders may still be working
    (entry order, stop-loss/take-profit, a close in flight), while its record is unreadable,
    or while the exchange shows its order open or its position unprotected.
    """
    obj: AppContext = ctx.obj
    store = PendingEntryStore(obj.state_dir)
    plan = ops.plan_drop(store, ids)
    if not force:
        if blockers := plan.blockers():
            raise ops.DropRefused(blockers)  # decided from the journal: no exchange call needed
        from bot_cli.cli import guard

        guard.check_drop(obj, plan.entries, force)
    if not yes and not typer.confirm(f"Drop {len(plan.ids)} pending entr{'y' if len(plan.ids) == 1 else 'ies'} ({', '.join(plan.ids)})?"):
        raise typer.Exit(1)
    result = ops.drop_pending(store, plan.ids, now_ms=time.time_ns() // 1_000_000, force=force)
    for pid, live in result.left_live.items():
        warn(f"{pid} dropped; still on the exchange, with nothing following it now: {live}; "
             "cancel there what is not wanted")
    for pid in result.gone:
        warn(f"{pid} had already left the journal (archived by another process)")
    typer.echo(f"dropped {len(result.dropped)}: {', '.join(result.dropped) or '-'} (moved to {store.archive_path})")
