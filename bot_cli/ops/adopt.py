"""Adopting a part of a position no entry holds: `bot adopt`, ``Client.adopt``, and the daemon's
``[protection] unclaimed = "protect"`` policy (``auto_spec``).

A position larger than the journal's entries explain (a trade by hand, an entry that filled
unseen) is not the bot's, and nothing protects it. Adopting it makes it an entry of its own
(``OrderType.ADOPTED``): no entry order is sent, its share is the adopted quantity from the
start, and it gets its own stop-loss and take-profit like any entry.

The unclaimed part is ``core.shares.unclaimed``: an entry order still working explains its
unfilled rest. The adoption is checked as an entry is (``core.checks`` at the mark: triggers on
the right side and on the tick, MARKET_LOT_SIZE for the legs; no MIN_NOTIONAL, no entry order
goes) and admitted (``core.netting``, ``core.admission``) under ``admitting``, where the journal
is read again: two adoptions of one part cannot both pass. A refusal writes and sends nothing.

With `bot run` holding the state dir, the adopted entry is written for it (its legs left to
the daemon's journal watcher); otherwise this process places the legs under the lock. Either
way the call waits, bounded, until the legs are live (PROTECTED).

What it costs (request weight): the mark (1), positionRisk (5), exchangeInfo (1) only when the
cache is stale, the account's conditional orders (40) unless the daemon's heartbeat counted
them; with no daemon also the clock and the rate limits, then the legs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from bot_cli.core.checks import Filters, check_entry
from bot_cli.core.engine import request_adoption
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Pending, PositionKey, PositionSide, Side
from bot_cli.core.summary import Unclaimed, unclaimed_positions
from bot_cli.errors import BotError
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.ops import market
from bot_cli.ops.checks import (
    EXCHANGE_FILTERS,
    Account,
    EntryRefused,
    admitting,
    journal_entries,
    position_side,
    refuse,
)
from bot_cli.ops.enter import (
    EXIT_NOT_PROTECTED,
    FOLLOW_S,
    HANDOFF_WAIT_S,
    THIS_PROCESS,
    Result,
    await_daemon,
    final,
    follow,
    opened,
    settled,
    unread,
)
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import JOURNAL_NAME, DaemonLock, LockHeld, PendingEntryStore, lock_holder
from bot_cli.store.codec import encode
from bot_cli.venue import VenueError


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.connect import Connection
    from bot_cli.exchange.rest import BinanceRest


__all__ = ["Adoption", "Names", "Seen", "StopDistances", "adopt", "adoption_spec", "auto_spec", "decide"]

# core.checks names what it refuses; callers name arguments.
_FIELDS = {"stop-loss": "stop_loss", "take-profit": "take_profit", "notional": "quantity"}


@dataclass(frozen=True, slots=True)
class Adoption:
    """What the operator asks to adopt. ``position_side`` None: the one that has an unclaimed
    part (hedge mode); ``quantity`` None: all of the unclaimed part."""

    symbol: str
    stop_loss: Decimal
    take_profit: Decimal | None = None
    position_side: str | None = None
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Names:
    """How the caller spells its arguments in a refusal (`--quantity` on the command line)."""

    position_side: str = "position_side"
    quantity: str = "quantity"


@dataclass(frozen=True, slots=True)
class Seen:
    """What the venue said, read before anything is decided."""

    filters: SymbolFilters
    mark: Decimal
    positions: Mapping[PositionKey, Decimal]
    hedge: bool
    account: Account
    info: market.Info


# -- the pure part: what is adopted, and with which stops -----------------------------------------


def adoption_spec(part: Unclaimed, quantity: Decimal, stop_loss: Decimal, take_profit: Decimal | None) -> EntrySpec:
    """The entry holding ``quantity`` of ``part``: its direction, no entry order, no price."""
    return EntrySpec(
        part.symbol, part.side, quantity, OrderType.ADOPTED, None, stop_loss, take_profit, part.position_side
    )


class StopDistances(Protocol):
    """The "protect" policy's distances from the mark, in percent (config.ProtectionConfig)."""

    @property
    def unclaimed_stop_pct(self) -> float: ...
    @property
    def unclaimed_take_pct(self) -> float: ...


def auto_spec(unclaimed: Unclaimed, mark: Decimal, filters: Filters, cfg: StopDistances) -> EntrySpec | None:
    """The adoption of all of ``unclaimed`` with its stop-loss ``unclaimed_stop_pct`` from the mark
    on its losing side (a take-profit ``unclaimed_take_pct`` on the other, when above 0); None
    when it would break a filter (core.checks), so the part stays flagged for a person.

    Each trigger is rounded to the tick away from the mark, so it never lands on or across it."""
    losing = -1 if unclaimed.side is Side.BUY else 1
    stop = _off_mark(mark, losing * _pct(cfg.unclaimed_stop_pct), filters.tick_size)
    take_pct = _pct(cfg.unclaimed_take_pct)
    take = _off_mark(mark, -losing * take_pct, filters.tick_size) if take_pct > 0 else None
    spec = adoption_spec(unclaimed, unclaimed.quantity, stop, take)
    return None if check_entry(spec, filters, mark) is not None else spec


def _pct(value: float) -> Decimal:
    return Decimal(str(value))  # the decimal the config wrote, not its binary neighbour


def _off_mark(mark: Decimal, pct: Decimal, tick: Decimal) -> Decimal:
    """``mark`` moved by ``pct`` percent, rounded to ``tick`` further from the mark."""
    raw = mark * (1 + pct / 100)
    if tick <= 0:
        return raw
    rounding = ROUND_CEILING if pct > 0 else ROUND_FLOOR
    return (raw / tick).to_integral_value(rounding=rounding) * tick


def decide(ask: Adoption, seen: Seen, entries: Sequence[Pending], names: Names = Names()) -> EntrySpec:
    """The entry ``ask`` makes of the unclaimed part, once it passes the filters at the mark and
    admission against ``entries``; EntryRefused (one line, naming the field) otherwise."""
    part = _unclaimed_part(ask, seen, entries, names)
    quantity = part.quantity if ask.quantity is None else ask.quantity
    if quantity > part.quantity:
        raise EntryRefused("quantity", (
            f"{names.quantity} {quantity} is more than the {part.quantity} of {part.symbol}'s position"
            f" {part.position} that no entry holds; use at most {part.quantity}"))  # fmt: skip
    spec = adoption_spec(part, quantity, ask.stop_loss, ask.take_profit)
    violation = check_entry(spec, seen.filters, seen.mark)
    if violation is not None:
        field = _FIELDS.get(violation.subject, violation.subject)
        raise EntryRefused(field, violation.message, by_filter=violation.filter in EXCHANGE_FILTERS)
    # A part no entry holds is protected even beside another entry: left bare, it has no stop.
    refuse(spec, list(entries), seen.account, stacking=True)
    return spec


def _unclaimed_part(ask: Adoption, seen: Seen, entries: Sequence[Pending], names: Names) -> Unclaimed:
    sides = _position_sides(ask.position_side, seen.hedge, names.position_side)
    positions = {(ask.symbol, s): seen.positions.get((ask.symbol, s), Decimal(0)) for s in sides}
    found = unclaimed_positions(entries, positions)
    if len(found) > 1:
        raise EntryRefused("position_side", (
            f"both the LONG and the SHORT position of {ask.symbol} have a part no entry holds:"
            f" give {names.position_side} LONG or SHORT"))  # fmt: skip
    if not found:
        raise EntryRefused("symbol", _nothing(ask.symbol, positions))
    return found[0]


def _position_sides(given: str | None, hedge: bool, name: str) -> list[PositionSide]:
    """BOTH in one-way mode; in hedge mode the side given, else both looked at."""
    if hedge and given is None:
        return [PositionSide.LONG, PositionSide.SHORT]
    return [position_side(hedge, "buy", given, name)]  # "buy": only a default when none is given


def _nothing(symbol: str, positions: Mapping[PositionKey, Decimal]) -> str:
    held = {ps: amount for (_, ps), amount in positions.items() if amount != 0}
    if not held:
        return f"nothing to adopt: {symbol} has no open position"
    shown = ", ".join(f"{amount} ({ps.value})" for ps, amount in held.items())
    return (f"nothing to adopt: {symbol}'s position {shown} is all held by entries in the journal"
            " (or their orders still working)")


# -- reading the venue --------------------------------------------------------------------------


async def look(conn: Connection, cfg: Config, state_dir: Path, symbol: str) -> Seen:
    """The symbol's filters and mark, the positions, and the account's foreign conditional orders."""
    rest = conn.rest
    try:
        info = await market.info_for(rest, cfg.rest_url(), state_dir, symbol)
        filters = info.filters(symbol)
        if filters is None:
            raise EntryRefused("symbol", f"symbol {symbol} is not traded on the {conn.venue_name} venue")
        mark = await rest.mark_price(symbol)
        positions = await rest.positions()
        conditional = await market.foreign_conditional(rest, state_dir, partial(market.live_ids, state_dir))
    except VenueError as err:
        raise _unread(rest, err, symbol, conn.venue_name) from None
    account = Account(conditional, 0, filters.max_num_orders)  # no entry order: no open-order slot
    return Seen(filters, mark, positions, rest.hedge_mode, account, info)


async def _prejudged(
    conn: Connection, cfg: Config, state_dir: Path, ask: Adoption, seen: Seen, *, names: Names
) -> Seen:
    """Decide once against the journal as it is, before any lock or file is taken: a refusal
    then leaves no trace (market.decided: one a newer exchangeInfo could lift is decided again
    against one read now)."""
    entries = _entries(state_dir)

    def against(info: market.Info) -> Seen:
        filters = info.filters(ask.symbol)
        if filters is None:
            raise EntryRefused("symbol", f"symbol {ask.symbol} is no longer traded")
        now = replace(seen, filters=filters, info=info)
        decide(ask, now, entries, names)
        return now

    try:
        return await market.decided(conn.rest, cfg.rest_url(), seen.info, against)
    except VenueError as err:
        raise _unread(conn.rest, err, ask.symbol, conn.venue_name) from None


def _entries(state_dir: Path) -> list[Pending]:
    """The journal's readable entries; none (and nothing created) when there is no journal."""
    if not (state_dir / JOURNAL_NAME).exists():
        return []
    with PendingEntryStore(state_dir) as store:
        return journal_entries(store)


def _unread(rest: BinanceRest, err: VenueError, symbol: str, venue_name: str) -> BotError:
    return unread(rest, err, f"{symbol}'s filters, mark price and position", venue_name)


# -- adopting ------------------------------------------------------------------------------------


async def adopt(
    cfg: Config, state_dir: Path, ask: Adoption, *, names: Names = Names(), timeout: float = FOLLOW_S,
    say: Callable[[str], None] | None = None,
) -> Result:  # fmt: skip
    """Adopt the unclaimed part of ``ask.symbol``'s position by the rules above."""
    async with opened(cfg, state_dir, say) as conn:
        seen = await look(conn, cfg, state_dir, ask.symbol)
        seen = await _prejudged(conn, cfg, state_dir, ask, seen, names=names)
        with PendingEntryStore(state_dir) as store:
            with admitting(state_dir):
                spec = decide(ask, seen, journal_entries(store), names)
                market.keep_info(state_dir, seen.info)  # only now: a refusal writes nothing
                engine, p, holder = await _adopt_or_request(store, conn, cfg, spec)
            if engine is None:
                return await _hand_off(store, p, state_dir, holder)
            return await _follow(engine, state_dir, p, timeout)


async def _adopt_or_request(
    store: PendingEntryStore, conn: Connection, cfg: Config, spec: EntrySpec
) -> tuple[ExecutionEngine | None, Pending, int | None]:
    """Adopted and its legs placed here; or, the state dir's lock being held, written for its
    holder (no engine; the holder's pid). Either way the record is durable before the first
    await (the engine flushes before it waits), so an adoption decided after this one, even in
    the same event loop under the re-entrant admission lock, sees it."""
    avg = None  # positionRisk's entryPrice: the REST client reads only positionAmt
    window = cfg.venue.recv_window_ms
    try:
        with DaemonLock(store.path):
            engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=window)
            return engine, await engine.adopt(spec, avg), None
    except LockHeld as held:
        now = time.time_ns() // 1_000_000
        pid = make_pending_id(now, secrets.randbelow(36**5))
        p, _ = request_adoption(pid, spec, avg, now, window)
        store.save(pid, encode(p))
        return None, p, held.pid


async def _follow(engine: ExecutionEngine, state_dir: Path, p: Pending, timeout: float) -> Result:
    """Reconcile until the legs are live (ops.enter.follow), then say where it stands."""
    p = await follow(engine, state_dir, p, timeout)
    if settled(p):
        return final(p, THIS_PROCESS)
    if holder := lock_holder(state_dir):
        return Result(p, THIS_PROCESS, 0, f"adopted entry {p.pending_id} is {p.status.value}; process {holder}"
                                          f" holds {state_dir} now and places its legs")  # fmt: skip
    return Result(p, THIS_PROCESS, EXIT_NOT_PROTECTED, (
        f"adopted entry {p.pending_id} is not protected yet ({p.status.value}) after {timeout:g}s and no daemon"
        " is running: start `bot run` now, it places its stop-loss"))  # fmt: skip


async def _hand_off(store: PendingEntryStore, p: Pending, state_dir: Path, holder: int | None) -> Result:
    """Wait for the daemon to place the legs of the adopted entry ``p``, or to be gone."""
    by = f"bot run (pid {holder})"
    p, gone = await await_daemon(store, p, state_dir, settled)
    if settled(p):
        return final(p, by)
    if gone:
        return Result(p, by, EXIT_NOT_PROTECTED, (
            f"the daemon (pid {holder}) stopped before placing the legs of adopted entry {p.pending_id};"
            " it is in the journal: start `bot run`, it places its stop-loss"))  # fmt: skip
    return Result(p, by, 0, (
        f"the daemon (pid {holder}) has not placed the legs of adopted entry {p.pending_id} in"
        f" {HANDOFF_WAIT_S:g}s; it is {p.status.value} and stays with the daemon"))  # fmt: skip


async def protect_unclaimed(engine: ExecutionEngine, part: Unclaimed, cfg: Config, state_dir: Path, venue: str) -> str:
    """The daemon's own adoption under ``[protection] unclaimed = "protect"``: all of ``part``,
    its stop-loss (and take-profit) at the configured distances from the mark (``auto_spec``),
    checked against netting and the account's limits as any entry is, decided and persisted under
    the admission lock (a `bot adopt` at the same moment sees it); one line saying what was done."""
    rest = cast("BinanceRest", engine.venue)  # the daemon's venue is always the REST client
    info = await market.info_for(rest, venue, state_dir, part.symbol)
    filters = info.filters(part.symbol)
    spec = None if filters is None else auto_spec(part, await rest.mark_price(part.symbol), filters, cfg.protection)
    what = f"{part.symbol} {part.position_side.value}: {part.side.value} {part.quantity} held by no entry"
    if spec is None:
        return f"{what}: not adopted, a filter refuses its stop at {cfg.protection.unclaimed_stop_pct}% from the mark"
    with admitting(state_dir):
        if (why := engine.refusal(spec)) is not None:
            return f"{what}: not adopted: {why}"
        p = engine.adopt_now(spec, None)
    await engine.quiet(p.pending_id)
    return f"{what}: adopted as entry {p.pending_id}, stop-loss {spec.stop_loss}" + (
        f", take-profit {spec.take_profit}" if spec.take_profit is not None else "")

