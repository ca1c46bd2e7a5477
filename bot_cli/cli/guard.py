"""Checks against the exchange before a destructive local change.

Dropping a pending entry makes the bot forget it: refuse while its order is still
open on the exchange or its position is unprotected, unless the operator insists.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from bot_cli.cli.context import AppContext
from bot_cli.core.ids import client_id
from bot_cli.core.model import Leg, LegState, Pending, PendingId
from bot_cli.errors import BotError
from bot_cli.venue import NotFound, Venue, VenueError


def check_drop(ctx: AppContext, entries: dict[PendingId, Pending], force: bool) -> None:
    if force:
        return
    problems = asyncio.run(_check(ctx, entries))
    if problems:
        raise BotError("; ".join(problems) + " — refusing to drop (use --force to drop anyway)")


async def _check(ctx: AppContext, entries: dict[PendingId, Pending]) -> list[str]:
    from bot_cli.connect import connect

    try:
        async with connect(ctx.config, ctx.state_dir) as conn:
            return await drop_problems(conn.rest, entries)
    except (VenueError, BotError) as err:
        return [f"cannot check the exchange ({err})"]


async def drop_problems(venue: Venue, entries: dict[PendingId, Pending]) -> list[str]:
    """Why each entry should not be forgotten yet, in words; empty when all are safe."""
    open_orders = {r.client_id: r for r in await venue.open_orders()}
    open_algos = {r.client_id for r in await venue.open_algo_orders()}
    positions = await venue.positions()
    problems = []
    for pid, p in entries.items():
        cid = client_id(pid, Leg.ENTRY)
        if cid in open_orders:
            problems.append(f"{pid}: its entry order {cid} is still open on the exchange; cancel it first")
            continue
        filled = max(p.filled_qty, await _filled(venue, p))
        held = positions.get((p.spec.symbol, p.spec.position_side), Decimal(0))
        live = {x.leg for x in p.protections if x.client_id in open_algos and x.state is not LegState.CANCELING}
        if filled > 0 and held != 0 and not live >= set(p.spec.legs):
            problems.append(f"{pid}: {filled} filled and the {p.spec.symbol} position ({held}) is not protected")
    return problems


async def _filled(venue: Venue, p: Pending) -> Decimal:
    try:
        return (await venue.query_order(p.spec.symbol, client_id(p.pending_id, Leg.ENTRY))).filled_qty
    except NotFound:
        return Decimal(0)
