"""A built-in demo strategy for the paper venue (off unless `[demo] enabled = true`).

Every `every_s` seconds it enters near the market, alternating buy and sell, with a
stop-loss and take-profit a few tenths of a percent away, so `bot run` shows entries,
fills and protections happening. It only ever talks to the paper venue.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import httpx

from bot_cli import ops
from bot_cli.core.model import PositionSide
from bot_cli.errors import BotError


log = logging.getLogger("bot_cli.demo")
OFFSET = Decimal("0.0003")  # the entry rests this far inside the market, so it fills soon


def start_demo(cfg: Any, conn: Any, engine: Any, view: Any) -> asyncio.Task[None] | None:
    if not cfg.demo.enabled or cfg.venue.kind != "paper":
        return None
    return asyncio.create_task(_loop(cfg, conn, engine, view), name="demo")


def demo_levels(side: str, market: Decimal, stop_pct: float, take_pct: float) -> tuple[Decimal, Decimal, Decimal]:
    """Entry, stop-loss and take-profit around the market for one side (before tick rounding)."""
    sign = Decimal(1) if side == "buy" else Decimal(-1)
    entry = market * (1 - sign * OFFSET)
    stop = entry * (1 - sign * Decimal(str(stop_pct)) / 100)
    take = entry * (1 + sign * Decimal(str(take_pct)) / 100)
    return entry, stop, take


async def _loop(cfg: Any, conn: Any, engine: Any, view: Any) -> None:
    d = cfg.demo
    filters = (await conn.rest.exchange_info())[d.symbol]
    sides = ("buy", "sell")
    n = 0
    while True:
        side = sides[n % 2]
        n += 1
        try:
            market = await _market(cfg.rest_url(), d.symbol)
            entry, stop, take = (filters.quantize_price(x) for x in demo_levels(side, market, d.stop_pct, d.take_pct))
            ps = PositionSide.BOTH if not conn.rest.hedge_mode else (PositionSide.LONG if side == "buy" else PositionSide.SHORT)
            spec = ops.build_spec(filters, d.symbol, side, Decimal(d.quantity), entry, stop, take, ps)
            view.note(f"demo: {side} {d.quantity} {d.symbol} @ {entry} (sl {stop}, tp {take})")
            await engine.execute_entry(spec)
        except (BotError, httpx.HTTPError, KeyError) as err:
            log.warning("demo entry skipped: %s", err)
        await asyncio.sleep(d.every_s)


async def _market(rest_url: str, symbol: str) -> Decimal:
    async with httpx.AsyncClient(base_url=rest_url, timeout=5) as client:
        response = await client.get("/paper/state")
        response.raise_for_status()
        return Decimal(response.json()["prices"][symbol])
