"""`bot probe`: the venue's unwritten rules, found out on the operator's own account.

Each probe is a small experiment with the smallest orders the symbol allows, far from the
market (a resting limit 15 % away, or as far as PERCENT_PRICE allows less 2 %; a stop 15 %
away), and cleans up after itself: whatever it
placed is cancelled and any position it opened is closed, even when it fails midway. Its
verdict is saved with its date and venue (``store.probes``) for the features that depend on
it.

- ``deadman``: a far resting limit and a far algo order, then a short countdownCancelAll that
  is not renewed. The limit must go; the algo order must stay. Verdict ``legs-survive``,
  ``legs-cancelled`` (the dead-man switch then stays off: it would strip every stop), or
  ``no-effect`` (the limit was still open: the countdown did not fire in time).
- ``gte-gtc``: a position of the smallest size, a stop with ``timeInForce=GTE_GTC`` on it,
  then the position closed. Verdict ``expires-on-close`` (Binance's own cleanup works: the
  venue cancels a stop whose position is gone), ``stays-after-close`` or ``refused``.
  Opening and closing the position costs two taker fees on the smallest notional.
- ``stop-before-position``: with no position, a reduce-only stop (a leg's shape) is placed:
  ``refused``, or accepted. Accepted, two such stops just either side of the mark show what
  the first to trigger does with no position (``accepted-EXPIRED`` and its reason, ...), or
  ``accepted-untriggered`` if the mark did not reach either in time.

The countdown cancels every regular order of the symbol, so probes run only on a symbol with
no regular order open, no position and no entry of the journal; and never beside `bot run`
(the caller holds the state dir's lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId, OrderReport, OrderStatus, PositionSide, Side
from bot_cli.errors import BotError
from bot_cli.exchange import requests as rq
from bot_cli.exchange import wire
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.replies import parse
from bot_cli.exchange.rest import BinanceRest
from bot_cli.store.probes import Verdict
from bot_cli.venue import NotFound, Rejected, VenueError


if TYPE_CHECKING:
    from bot_cli.config import Config


PROBES = ("deadman", "gte-gtc", "stop-before-position")
FAR = Decimal("0.15")  # how far from the mark the probe's resting orders are
NEAR = Decimal("0.0001")  # stop-before-position's triggers: this close, to see one trigger
POLL_S = 0.25
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Plan:
    """What the probes may use; fixed before anything is sent."""

    symbol: str
    filters: SymbolFilters
    countdown_s: float = 10.0  # deadman: the countdown armed and not renewed
    wait_s: float = 30.0  # how long to wait for what the venue does on its own
    hedge: bool = False


@dataclass(frozen=True, slots=True)
class _Seen:
    report: AlgoReport
    time_in_force: str
    reason: str  # why the service ended it ("" if it said nothing)


def _moved_on(seen: _Seen) -> bool:
    return seen.report.status is not AlgoStatus.NEW


class ProbeRefused(BotError):
    """Nothing was sent: the symbol is in use, or the probe is unknown."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def preflight(rest: BinanceRest, symbol: str, journal_symbols: set[str]) -> None:
    """The symbol must be free: no regular order (a countdown would cancel it), no position, no entry."""
    if symbol in journal_symbols:
        raise ProbeRefused(f"{symbol} has entries in the journal: probe another symbol (--symbol) or"
                           " wait until they are settled")  # fmt: skip
    orders = await rest.open_orders(symbol)
    if orders:
        raise ProbeRefused(f"{symbol} has {len(orders)} open regular order(s): the probe's countdown would cancel"
                           " them; probe another symbol (--symbol)")  # fmt: skip
    held = [f"{side.value} {qty}" for (sym, side), qty in (await rest.positions()).items() if sym == symbol and qty]
    if held:
        raise ProbeRefused(f"{symbol} has a position ({', '.join(held)}): probe another symbol (--symbol)")


async def run(
    rest: BinanceRest, plan: Plan, names: Sequence[str], venue: str, *, say: Callable[[str], None] = lambda _: None,
) -> list[Verdict]:
    """Run the probes named, one after another; each cleans up before the next starts."""
    probe = _Probe(rest, plan, say)
    verdicts = []
    for name in names:
        say(f"probe {name} on {plan.symbol} ...")
        verdict, detail = await probe.run(name)
        verdicts.append(Verdict(name, verdict, detail, _now_iso(), venue))
    return verdicts


class _Probe:
    def __init__(self, rest: BinanceRest, plan: Plan, say: Callable[[str], None]) -> None:
        self.rest, self.plan, self.say = rest, plan, say
        self.f = plan.filters
        self._orders: list[str] = []  # client ids placed, cancelled at the end if still open
        self._algos: list[str] = []
        self._run = secrets.token_hex(3)

    async def run(self, name: str) -> tuple[str, str]:
        body: dict[str, Callable[[], Awaitable[tuple[str, str]]]] = {
            "deadman": self._deadman, "gte-gtc": self._gte_gtc, "stop-before-position": self._stop_before_position,
        }
        try:
            verdict, detail = await body[name]()
        except VenueError as err:
            verdict, detail = "failed", f"the venue answered {err} (code {err.code})"
        left = await self._clean_up()
        if left:
            detail += f"; NOT cleaned up, cancel by hand: {left}"
        return verdict, detail

    # -- the probes ---------------------------------------------------------------------------

    async def _deadman(self) -> tuple[str, str]:
        mark = await self.rest.mark_price(self.plan.symbol)
        # far below, but inside PERCENT_PRICE (a BUY limit at least mark x multiplierDown), with room
        floor = self.f.multiplier_down + Decimal("0.02") if self.f.multiplier_down else Decimal(0)
        low, high = self._price(mark * max(1 - FAR, floor)), self._price(mark * (1 + FAR))
        qty = self._qty(low)
        limit = await self._order(Side.BUY, qty, price=low, tag="dl")
        algo = await self._algo(Side.BUY, qty, high, tag="da")
        countdown_ms = int(self.plan.countdown_s * 1000)
        await self.rest.countdown_cancel_all(self.plan.symbol, countdown_ms)
        started = time.monotonic()
        try:
            deadline = started + self.plan.countdown_s + max(5.0, self.plan.countdown_s)
            order = await self._until(lambda: self._query_order(limit), lambda o: o.status is not OrderStatus.NEW,
                                      deadline)  # fmt: skip
        finally:
            await self.rest.countdown_cancel_all(self.plan.symbol, 0)
        after = time.monotonic() - started
        if order.status is OrderStatus.NEW:
            return "no-effect", (f"the resting limit was still open {after:.0f}s after a {self.plan.countdown_s:g}s"
                                 " countdown was armed and not renewed")  # fmt: skip
        stop = await self.rest.query_algo(ClientId(algo))
        if stop.status is AlgoStatus.NEW:
            return "legs-survive", (f"a {self.plan.countdown_s:g}s countdown cancelled the resting limit"
                                    f" ({order.status.value} after {after:.0f}s) and left the algo order live")
        return "legs-cancelled", (f"a {self.plan.countdown_s:g}s countdown cancelled the resting limit and the algo"
                                  f" order too ({stop.status.value})")  # fmt: skip

    async def _gte_gtc(self) -> tuple[str, str]:
        mark = await self.rest.mark_price(self.plan.symbol)
        qty = self._qty(mark, market=True)
        ps = self._long
        await self._order(Side.BUY, qty, tag="go")
        try:
            stop = await self._algo(Side.SELL, qty, self._price(mark * (1 - FAR)), tag="gs", reduce=True, tif="GTE_GTC")
        except Rejected as err:
            await self._order(Side.SELL, qty, tag="gc", reduce=True)
            return "refused", f"timeInForce=GTE_GTC on an algo order was refused: {err.message} (code {err.code})"
        tif = (await self._seen(stop)).time_in_force
        await self._order(Side.SELL, qty, tag="gc", reduce=True)
        deadline = time.monotonic() + self.plan.wait_s
        seen = (await self._until(lambda: self._seen(stop), _moved_on, deadline)).report
        kept = f"accepted (answered timeInForce {tif or 'none'})"
        if seen.status is AlgoStatus.EXPIRED:
            return "expires-on-close", f"{kept}; the stop EXPIRED when the position ({ps.value}) was closed"
        if seen.status is AlgoStatus.NEW:
            return "stays-after-close", f"{kept}; the stop was open {self.plan.wait_s:g}s after the position closed"
        return f"closed-{seen.status.value}", f"{kept}; after the close the stop went {seen.status.value}"

    async def _stop_before_position(self) -> tuple[str, str]:
        mark = await self.rest.mark_price(self.plan.symbol)
        qty = self._qty(mark * (1 - FAR))
        try:
            far = await self._algo(Side.SELL, qty, self._price(mark * (1 - FAR)), tag="sf", reduce=True)
        except Rejected as err:
            return "refused", f"a reduce-only stop with no position was refused: {err.message} (code {err.code})"
        await self._cancel_algo(far)
        for _ in range(3):  # the mark may cross a near trigger before it lands: -2021, read it again
            mark = await self.rest.mark_price(self.plan.symbol)
            try:
                below = await self._algo(Side.SELL, qty, self._price(mark * (1 - NEAR)), tag="sb", reduce=True)
                above = await self._algo(Side.BUY, qty, self._price(mark * (1 + NEAR)) + self.f.tick_size, tag="sa",
                                         reduce=True, position_side=self._short)  # fmt: skip
                break
            except Rejected as err:
                if err.code not in (-2021, -4142):
                    raise
                await self._clean_up()
        else:
            return "accepted-untriggered", "accepted; the mark kept crossing the near triggers before they landed"
        deadline = time.monotonic() + self.plan.wait_s

        async def first() -> _Seen:
            for cid in (below, above):
                seen = await self._seen(cid)
                if _moved_on(seen):
                    return seen
            return seen

        last = await self._until(first, _moved_on, deadline)
        fired, reason = last.report, last.reason
        if fired.status is AlgoStatus.NEW:
            return "accepted-untriggered", f"accepted; the mark reached neither near trigger in {self.plan.wait_s:g}s"
        filled = f", {fired.executed_qty} executed" if fired.executed_qty else ""
        why = f" ({reason})" if reason else ""
        return f"accepted-{fired.status.value}", (
            f"accepted; at its trigger with no position it went {fired.status.value}{why}{filled}")

    # -- orders ------------------------------------------------------------------------------

    @property
    def _long(self) -> PositionSide:
        return PositionSide.LONG if self.plan.hedge else PositionSide.BOTH

    @property
    def _short(self) -> PositionSide:
        return PositionSide.SHORT if self.plan.hedge else PositionSide.BOTH

    def _cid(self, tag: str) -> str:
        return f"probe-{self._run}-{tag}{len(self._orders) + len(self._algos)}"

    async def _order(self, side: Side, qty: Decimal, *, tag: str, price: Decimal | None = None,
                     reduce: bool = False) -> str:  # fmt: skip
        cid = self._cid(tag)
        self._orders.append(cid)
        ps = self._long
        req = rq.order(self.plan.symbol, side, qty, cid, position_side=ps, hedge_mode=self.plan.hedge,
                       price=price, reduce=reduce, what=f"probe order {cid}")  # fmt: skip
        await self.rest.send(req, f"probe order {cid}")
        return cid

    async def _algo(self, side: Side, qty: Decimal, trigger: Decimal, *, tag: str, reduce: bool = False,
                    tif: str = "", position_side: PositionSide | None = None) -> str:  # fmt: skip
        cid = self._cid(tag)
        ps = position_side or self._long
        req = rq.algo_order(self.plan.symbol, side, qty, cid, kind="STOP_MARKET", trigger=rq.trigger_at(trigger),
                            position_side=ps, hedge_mode=self.plan.hedge, reduce=reduce, time_in_force=tif,
                            what=f"probe algo order {cid}")  # fmt: skip
        self._algos.append(cid)
        await self.rest.send(req, f"probe algo order {cid}")
        return cid

    async def _seen(self, cid: str) -> _Seen:
        """One query of an algo order: its report, and what the report type leaves out."""
        body = await self.rest.send(rq.query_algo(ClientId(cid)), f"query algo order {cid}")
        tif, reason = parse(wire.parse_algo_terms, body, "algo order")
        return _Seen(parse(wire.parse_algo, body, "algo order"), tif, reason)

    async def _query_order(self, cid: str) -> OrderReport:
        return await self.rest.query_order(self.plan.symbol, ClientId(cid))

    async def _cancel_algo(self, cid: str) -> None:
        with contextlib.suppress(NotFound):
            await self.rest.cancel_protection(ClientId(cid))

    async def _clean_up(self) -> str:
        """Cancel what is still open, close what the probe opened; what could not be is named."""
        left = []
        for cid in self._algos:
            try:
                await self._cancel_algo(cid)
            except VenueError as err:
                left.append(f"algo order {cid} ({err})")
        for cid in self._orders:
            try:
                await self.rest.cancel_order(self.plan.symbol, ClientId(cid))
            except NotFound:
                pass
            except VenueError as err:
                left.append(f"order {cid} ({err})")
        self._algos, self._orders = [], []
        try:
            await self._flatten()
        except VenueError as err:
            left.append(f"the position on {self.plan.symbol} ({err})")
        return ", ".join(left)

    async def _flatten(self) -> None:
        """Close any position on the symbol: the probe checked it had none when it started."""
        for (symbol, ps), amount in (await self.rest.positions()).items():
            if symbol == self.plan.symbol and amount:
                side = Side.SELL if amount > 0 else Side.BUY
                cid = self._cid("fl")
                req = rq.order(symbol, side, abs(amount), cid, position_side=ps, hedge_mode=self.plan.hedge,
                               reduce=True, what=f"probe close {cid}")  # fmt: skip
                await self.rest.send(req, f"probe close {cid}")

    async def _until(self, read: Callable[[], Awaitable[_T]], done: Callable[[_T], bool], deadline: float) -> _T:
        """Read until ``done`` or the deadline; the last read."""
        while True:
            seen = await read()
            if done(seen) or time.monotonic() >= deadline:
                return seen
            await asyncio.sleep(POLL_S)

    # -- sizes ---------------------------------------------------------------------------------

    def _price(self, price: Decimal) -> Decimal:
        return self.f.quantize_price(price)

    def _qty(self, price: Decimal, *, market: bool = False) -> Decimal:
        """The smallest quantity the filters take at ``price`` (MIN_NOTIONAL with a 10 % margin)."""
        step = self.f.market_step_size if market else self.f.step_size
        least = self.f.market_min_qty if market else self.f.min_qty
        need = self.f.min_notional * Decimal("1.1") / price if self.f.min_notional else Decimal(0)
        least = max(need, least)
        return (least / step).to_integral_value(rounding=ROUND_CEILING) * step if step else least


async def probe_venue(
    cfg: Config, state_dir: Path, names: Sequence[str], *, symbol: str, countdown_s: float, wait_s: float,
    say: Callable[[str], None] = lambda _: None,
) -> list[Verdict]:
    """Lock the state dir, connect, check the symbol is free, run the probes, save the verdicts.

    BotError (nothing sent) if `bot run` holds the state dir: its own countdowns and its view
    of the account would cross the probe's."""
    from bot_cli.connect import connect, venue_key
    from bot_cli.ops.checks import journal_entries
    from bot_cli.state_store import DaemonLock, LockHeld, PendingEntryStore, lock_holder
    from bot_cli.store import probes

    if (holder := lock_holder(state_dir)) is not None:
        raise BotError(f"`bot run` (pid {holder}) holds {state_dir}: stop it before probing (its dead-man"
                       " switch and the probe's countdown would cross)")  # fmt: skip
    try:
        with DaemonLock(state_dir):
            with PendingEntryStore(state_dir) as store:
                busy = {p.spec.symbol for p in journal_entries(store) if not p.status.terminal}
            async with connect(cfg, state_dir) as conn:
                rest = conn.rest
                filters = (await rest.exchange_info()).get(symbol)
                if filters is None:
                    raise ProbeRefused(f"{symbol} is not a symbol of the {conn.venue_name} venue")
                await preflight(rest, symbol, busy)
                plan = Plan(symbol, filters, countdown_s, wait_s, rest.hedge_mode)
                verdicts = await run(rest, plan, names, await venue_key(cfg), say=say)
            probes.save(state_dir, verdicts)
            return verdicts
    except LockHeld as err:
        raise BotError(f"pid {err.pid} holds {state_dir}: stop it before probing") from None
