"""`bot enter`: an operator entry, persisted before it is sent.

With no daemon running, this process takes the state dir's lock, sends the entry and
records the answer; `bot run` (or `bot recover`) protects it when it fills. With a
daemon running, the entry is written as REQUESTED and the daemon sends it: one
process sends per state dir, always.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli import ops
from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, warn
from bot_cli.errors import BotError, UsageError


if TYPE_CHECKING:
    from decimal import Decimal

    from bot_cli.core.model import EntrySpec, Pending, PositionSide
    from bot_cli.state_store import PendingEntryStore


class SideArg(str, Enum):
    buy = "buy"
    sell = "sell"


HANDOFF_WAIT_S = 10.0


def enter(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    side: Annotated[SideArg, typer.Argument(help="buy or sell.")],
    quantity: Annotated[str, typer.Argument(help="Quantity in the base asset.")],
    sl: Annotated[str, typer.Option("--sl", help="Stop-loss trigger price (required).")],
    price: Annotated[str | None, typer.Option("--price", help="Limit price; omit for a market entry.")] = None,
    tp: Annotated[str | None, typer.Option("--tp", help="Take-profit trigger price.")] = None,
    position_side: Annotated[str | None, typer.Option("--position-side", help="LONG or SHORT (hedge mode only).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Persist an entry with its stop-loss and take-profit, then place it."""
    import asyncio

    obj: AppContext = ctx.obj
    qty = ops.parse_decimal("quantity", quantity)
    stop = ops.parse_decimal("--sl", sl)
    limit = None if price is None else ops.parse_decimal("--price", price)
    take = None if tp is None else ops.parse_decimal("--tp", tp)
    p, handled_by = asyncio.run(_enter(obj, symbol.upper(), side.value, qty, limit, stop, take, position_side))
    _show(p, handled_by, as_json)


async def _enter(
    obj: AppContext, symbol: str, side: str, qty: Decimal, price: Decimal | None,
    sl: Decimal, tp: Decimal | None, position_side: str | None,
) -> tuple[Pending, str]:
    from bot_cli.connect import connect
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import DaemonLock, LockHeld, PendingEntryStore

    cfg = obj.config
    async with connect(cfg, obj.state_dir) as conn:
        filters = (await conn.rest.exchange_info()).get(symbol)
        if filters is None:
            raise UsageError(f"symbol {symbol} is not traded on the {conn.venue_name} venue")
        spec = ops.build_spec(filters, symbol, side, qty, price, sl, tp, _position_side(conn.rest.hedge_mode, side, position_side))
        store = PendingEntryStore(obj.state_dir)
        try:
            with DaemonLock(obj.state_dir):
                engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms)
                return await engine.execute_entry(spec), "this process"
        except LockHeld as held:
            return await _hand_off(store, spec, cfg.venue.recv_window_ms), f"bot run (pid {held.pid})"


def _position_side(hedge: bool, side: str, given: str | None) -> PositionSide:
    from bot_cli.core.model import PositionSide

    if not hedge:
        if given not in (None, "BOTH", "both"):
            raise UsageError("--position-side is for hedge mode; this account is in one-way mode")
        return PositionSide.BOTH
    if given is None:
        return PositionSide.LONG if side == "buy" else PositionSide.SHORT
    try:
        return PositionSide(given.upper())
    except ValueError:
        raise UsageError(f"--position-side {given!r} is not LONG or SHORT") from None


async def _hand_off(store: PendingEntryStore, spec: EntrySpec, recv_window_ms: int) -> Pending:
    """Write the entry as REQUESTED and wait for the daemon to send it."""
    import asyncio
    import secrets

    from bot_cli.core.engine import request_entry
    from bot_cli.core.ids import make_pending_id
    from bot_cli.core.model import Status
    from bot_cli.store.codec import decode, encode

    now = time.time_ns() // 1_000_000
    pid = make_pending_id(now, secrets.randbelow(36**5))
    p, _ = request_entry(pid, spec, now, recv_window_ms)
    store.save(pid, encode(p))
    end = time.monotonic() + HANDOFF_WAIT_S
    while time.monotonic() < end:
        await asyncio.sleep(0.1)
        store.poll()
        record = store.load_all().get(pid)
        if record is None:
            archived = [a for a in store.archived() if a.get("id") == pid]
            return decode(archived[-1]["rec"]) if archived else p
        current = decode(record)
        if current.status not in (Status.REQUESTED, Status.SUBMITTING):
            return current
    return decode(store.load_all().get(pid, encode(p)))


def _show(p: Pending, handled_by: str, as_json: bool) -> None:
    from bot_cli.core.ids import client_id
    from bot_cli.core.model import Leg, Status

    cid = client_id(p.pending_id, Leg.ENTRY)
    if as_json:
        print_json({"id": p.pending_id, "entry_client_id": cid, "state": p.status.value, "reason": p.reason,
                    "sent_by": handled_by, "filled_quantity": str(p.filled_qty)})
    else:
        typer.echo(f"entry {p.pending_id} ({cid}): {p.status.value}{' - ' + p.reason if p.reason else ''} [sent by {handled_by}]")
    if p.status in (Status.NOT_PLACED, Status.NEEDS_ATTENTION):
        raise BotError(f"entry {p.pending_id} was not placed: {p.reason or p.status.value}")
    if handled_by == "this process" and not p.status.terminal:
        warn("no daemon is running: start `bot run` (or run `bot recover`) so the entry is protected when it fills")
