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
    """List the pending entries in the journal."""
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
        (r.pending_id, r.symbol, r.side, r.quantity, r.filled, r.status, r.entry_client_id,
         r.stop_loss, r.take_profit or "-", age(r.age_s(now)))
        for r in rows
    ]
    table(f"{len(rows)} pending entries in {obj.state_dir}", HEADERS, cells)


@app.command("drop")
def drop(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Pending ids to drop (see `bot pending list`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Drop even if the exchange shows it live or unprotected.")] = False,
) -> None:
    """Move pending entries to the archive (reason: dropped). Nothing is erased."""
    obj: AppContext = ctx.obj
    store = PendingEntryStore(obj.state_dir)
    found = ops.check_ids(store, ids)
    from bot_cli.cli import guard

    guard.check_drop(obj, found, force)
    if not yes and not typer.confirm(f"Drop {len(found)} pending entr{'y' if len(found) == 1 else 'ies'} ({', '.join(found)})?"):
        raise typer.Exit(1)
    dropped = ops.drop_pending(store, list(found), "dropped")
    typer.echo(f"dropped {len(dropped)}: {', '.join(dropped)} (moved to {store.archive_path})")
