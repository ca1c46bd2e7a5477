"""A built-in demo strategy for the paper venue (off unless `[demo] enabled = true`).

Every `every_s` seconds it enters near the market, alternating buy and sell, with a
stop-loss and take-profit a few tenths of a percent away, so `bot run` shows entries,
fills and protections happening. It only ever talks to the paper venue: it is a client of
the bot (`bot run` starts it beside the daemon), not a part of the venue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import httpx

from bot_cli.core.netting import netted_by
from bot_cli.errors import BotError
from bot_cli.ops.checks import Order, checked_spec


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.connect import Connection
    from bot_cli.exchange.filters import SymbolFilters
    from bot_cli.runtime.engine import ExecutionEngine


log = logging.getLogger("bot_cli.demo")
OFFSET = Decimal("0.0003")  # the entry rests this far inside the market, so it fills soon
SIDES = ("buy", "sell")


class Notes(Protocol):
    """Where the demo says what it does (bot run's view)."""

    def note(self, text: str, **fields: str) -> None: ...


def start_demo(cfg: Config, conn: Connection, engine: ExecutionEngine, view: Notes) -> asyncio.Task[None] | None:
    """The demo's task on the running loop, or None unless enabled on a paper venue."""
    if not cfg.demo.enabled or cfg.venue.kind != "paper":
        return None
    return asyncio.create_task(_Demo(cfg, conn, engine, view).run(), name="demo")


def demo_levels(side: str, market: Decimal, stop_pct: float, take_pct: float) -> tuple[Decimal, Decimal, Decimal]:
    """Entry, stop-loss and take-profit around the market for one side (before tick rounding)."""
    sign = Decimal(1) if side == "buy" else Decimal(-1)
    entry = market * (1 - sign * OFFSET)
    stop = entry * (1 - sign * Decimal(str(stop_pct)) / 100)
    take = entry * (1 + sign * Decimal(str(take_pct)) / 100)
    return entry, stop, take


@dataclass(frozen=True, slots=True)
class _Demo:
    """The demo's loop, with what it uses: the config, the venue, the engine and the view."""

    cfg: Config
    conn: Connection
    engine: ExecutionEngine
    view: Notes

    async def run(self) -> None:
        """Enter every ``every_s`` seconds, buy and sell in turn (while an entry holds a share,
        on its side: an opposite entry would net against it); a failed entry is skipped."""
        filters = (await self.conn.rest.exchange_info())[self.cfg.demo.symbol]
        for n in itertools.count():
            try:
                await self.enter(filters, SIDES[n % 2])
            except (BotError, httpx.HTTPError, KeyError) as err:
                log.warning("demo entry skipped: %s", err)
            await asyncio.sleep(self.cfg.demo.every_s)

    async def enter(self, filters: SymbolFilters, side: str, *, turned: bool = False) -> None:
        """One entry on ``side`` (or the side of an entry it would net against) near the market,
        with its stop-loss and take-profit."""
        d = self.cfg.demo
        market = await _market(self.cfg.rest_url(), d.symbol)
        levels = demo_levels(side, market, d.stop_pct, d.take_pct)
        entry, stop, take = (filters.quantize_price(x) for x in levels)
        order = Order(d.symbol, side, Decimal(d.quantity), entry, stop, take, None)
        spec = checked_spec(order, filters, market, self.conn.rest.hedge_mode)
        other = netted_by(spec, self.engine.state.values(), stacking=self.cfg.protection.stacking)
        if other is not None and other.spec.side is not spec.side and not turned:
            await self.enter(filters, other.spec.side.value.lower(), turned=True)
            return
        if other is not None:  # one entry per position: the next one waits until it is flat
            log.info("demo: %s holds %s; no new entry yet", other.pending_id, d.symbol)
            return
        self.view.note(f"demo: {side} {d.quantity} {d.symbol} @ {entry} (sl {stop}, tp {take})")
        await self.engine.execute_entry(spec)


async def _market(rest_url: str, symbol: str) -> Decimal:
    """The venue's price of ``symbol`` now (its admin API: the demo runs on the paper venue only)."""
    async with httpx.AsyncClient(base_url=rest_url, timeout=5) as client:
        response = await client.get("/paper/state")
        response.raise_for_status()
        return Decimal(response.json()["prices"][symbol])
