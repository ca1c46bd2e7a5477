"""`bot pending list` and `bot pending drop`."""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import age, print_json, table, warn
from bot_cli.errors import BotError
from bot_cli.ops.journal import PendingRow, list_pending, read_journal
from bot_cli.state_store import PendingEntryStore


if TYPE_CHECKING:
    from bot_cli.core.model import Pending
    from bot_cli.ops.drop import Cancels, DropResult


app = typer.Typer(no_args_is_help=True, help="Inspect and purge pending entries (archived, never erased).")
HEADERS = ("id", "symbol", "side", "qty", "filled", "state", "entry client id", "stop-loss", "take-profit", "age")
ALL_HEADERS = (
    "id", "symbol", "side", "qty", "filled", "share", "state", "stop-loss", "take-profit", "age",
)


_ALL_HELP = (
    "Also each entry's share and its orders on record (protective legs and market closes):"
    " client id, leg, quantity, trigger, state."
)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    all_: Annotated[bool, typer.Option("--all", help=_ALL_HELP)] = False,
) -> None:
    """List the pending entries in the journal (a record the bot cannot read shows as UNREADABLE).

    Protected entries stay listed until their share is flat; --all adds each entry's share and
    its live protective legs.

    Example: bot pending list; bot pending list --all --json
    """
    gc.disable()  # a short process over many small records: the cycle collector only costs time
    obj: AppContext = ctx.obj
    store = PendingEntryStore(obj.state_dir)
    rows, problems = list_pending(store)
    now = time.time_ns() // 1_000_000
    for problem in problems:
        warn(problem)
    if all_:
        _list_all(store, rows, now, as_json)
        return
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


def _list_all(
    store: PendingEntryStore, rows: list[PendingRow], now: int, as_json: bool
) -> None:
    """The listing plus every entry's share and orders on record (decoded in full: slower)."""
    from bot_cli.cli.history import LEG_HEADERS, leg_cells, legs_json

    decoded, _ = read_journal(store)
    entries: dict[str, Pending] = {str(pid): p for pid, p in decoded.items()}
    shares = {pid: str(p.share) for pid, p in entries.items()}
    if as_json:
        print_json({"pending": [
            {**r.as_json(now), "share": shares.get(r.pending_id),
             "legs": legs_json(entries[r.pending_id]) if r.pending_id in entries else []}
            for r in rows
        ]})  # fmt: skip
        return
    cells = [
        (r.pending_id, r.symbol, r.side, r.quantity, r.filled, shares.get(r.pending_id, "?"),
         r.status, r.stop_loss, r.take_profit or "-", _age(r.age_s(now)))
        for r in rows
    ]
    table(f"{len(rows)} pending entries in {store.path}", ALL_HEADERS, cells)
    legs = sorted(cell for p in entries.values() for cell in leg_cells(p))
    table(f"{len(legs)} orders on record (legs and closes)", LEG_HEADERS, legs)


_FORCE_HELP = "Drop even if its orders may still work on the exchange, or its record is unreadable."
_KEEP_HELP = (
    "With --force: leave the entry's orders working on the exchange (otherwise they are"
    " cancelled first)."
)


@app.command("drop")
def drop(
    ctx: typer.Context,
    ids: Annotated[list[str], typer.Argument(help="Pending ids to drop (see `bot pending list`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
    keep_orders: Annotated[bool, typer.Option("--keep-orders", help=_KEEP_HELP)] = False,
) -> None:
    """Move pending entries to the archive (reason: dropped). Nothing is erased.

    Refused, unless --force, while the journal says an entry's orders may still be working
    (entry order, stop-loss/take-profit, a close in flight), while its record is unreadable,
    or while the exchange shows its order open or its position unprotected. With --force, the
    exchange is read once the question is answered, and the entry order and the legs it shows
    still working are cancelled (unless --keep-orders); the position an entry held stays open,
    and the warning says so. An entry whose record changes before it is archived (the daemon
    claimed it, a fill moved it) is not dropped, and none of its orders is cancelled.

    Example: bot pending drop bc0mi3k2x7a1b2c --force --yes

    Exit 0: dropped. Exit 1: refused, unknown id, declined, changed meanwhile, or a cancel
    failed (one line).
    """
    import asyncio

    from bot_cli.ops import drop as dropping

    obj: AppContext = ctx.obj
    store = PendingEntryStore(obj.state_dir)
    plan = dropping.plan_drop(store, ids)  # what is checked and confirmed is what gets dropped
    if not force:
        if blockers := plan.blockers():
            raise dropping.DropRefused(blockers)  # decided from the journal: no exchange call needed
        asyncio.run(dropping.check_drop(obj.config, obj.state_dir, plan.entries))
    cancel = force and not keep_orders and bool(dropping.cancellable(plan))
    if not yes and not typer.confirm(_question(plan.ids, dropping.working(plan) if cancel else None)):
        raise typer.Exit(1)
    now = time.time_ns() // 1_000_000
    if cancel:  # the exchange is read only now: what it shows after the answer is what gets cancelled
        result, cancels = asyncio.run(dropping.drop_and_cancel(obj.config, obj.state_dir, store, plan, now))
    else:
        result, cancels = dropping.drop_planned(store, plan, now_ms=now, force=force), {}
    _say_dropped(store, result, cancels)


def _question(ids: list[str], live: list[str] | None) -> str:
    """The confirmation; ``live``: the ids the journal says have orders working, when cancelling."""
    n = len(ids)
    what = f"{n} pending entr{'y' if n == 1 else 'ies'} ({', '.join(ids)})"
    if live is None:
        return f"Drop {what}?"
    if live:
        return f"Drop {what} and cancel the orders of {', '.join(live)} on the exchange?"
    return f"Drop {what} and cancel any of their orders the exchange shows?"


def _say_dropped(
    store: PendingEntryStore, result: DropResult, cancels: dict[str, Cancels]
) -> None:
    for pid in result.gone:
        warn(f"{pid} had already left the journal (archived by another process)")
    for pid, c in cancels.items():
        if c.canceled:
            typer.echo(f"{pid}: cancelled on the exchange: {', '.join(c.canceled)}")
    if result.dropped or not result.changed:
        dropped = ", ".join(result.dropped) or "-"
        typer.echo(f"dropped {len(result.dropped)}: {dropped} (moved to {store.archive_path})")
    failed = [f"{pid} dropped; left on the exchange: {'; '.join(c.left)}"
              for pid, c in cancels.items() if c.failed]  # fmt: skip
    refusal = result.refusal()
    if failed or refusal:
        raise BotError("; ".join([*failed, *([refusal] if refusal else [])]))
    _say_left(result, cancels)


def _say_left(result: DropResult, cancels: dict[str, Cancels]) -> None:
    """Warn about what the dropped entries left on the exchange, with nothing following it now."""
    for pid, c in cancels.items():
        if c.left:
            left = "; ".join(c.left)
            warn(f"{pid} dropped; left on the exchange, with nothing following it now: {left}")
    for pid, live in result.left_live.items():
        if pid not in cancels:
            warn(f"{pid} dropped; still on the exchange, with nothing following it now: {live}; "
                 "cancel there what is not wanted")
