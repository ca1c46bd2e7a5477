"""Placing a checked entry: hand it to a running daemon, or send it here and follow it.

Shared by `bot enter` and the Python API. With a daemon (it holds the state dir's lock) the
entry is written as REQUESTED and the daemon sends and protects it; if the daemon goes away
before taking it, the result says so. With no daemon, this process sends it and follows a
MARKET entry (a LIMIT one with ``wait``) until it is protected, holding the lock only for each
look, so a `bot run` started meanwhile takes over.

What it costs (request weight): with the lock held, nothing is sent to connect; the filters
come from the cached exchangeInfo, the position mode and the foreign conditional orders from
the daemon's heartbeat (``ops.market``), so an entry reads the mark price (1), for a limit
entry the symbol's open orders (1), and exchangeInfo (1) only when the cache is stale. With
no daemon: the clock (1), the rate limits (1), the mark (1), the account's conditional orders
(40), then the send and the follow. Should the daemon be gone by the time the entry is sent,
this process sends it without a clock sync: a -1021 resyncs and resends once (exchange.rest).

An entry is admitted (core.netting, core.admission) under the admission lock, from the journal
read to its write: a refusal leaves nothing written or sent. An entry with an idempotency key
is first admitted and saved REQUESTED under its key (``api.keys``); this process sends it only
if no daemon does.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot_cli.config import Config
from bot_cli.core.engine import request_entry
from bot_cli.core.events import EntryClaimed
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Pending, Policy, Status
from bot_cli.errors import BotError
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.ops import market
from bot_cli.ops.checks import Account, EntryRefused, Order, admitting, checked_spec, journal_entries, refuse
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import JOURNAL_NAME, DaemonLock, LockHeld, PendingEntryStore, lock_holder
from bot_cli.store.codec import decode, encode
from bot_cli.venue import RateLimited, Venue, VenueError


if TYPE_CHECKING:
    from bot_cli.connect import Connection
    from bot_cli.exchange.rest import BinanceRest


EXIT_NOT_PROTECTED = 3  # no daemon: followed for the timeout, still not protected
EXIT_UNWATCHED = 4  # no daemon: a limit entry rests, and nothing will protect its fill
HANDOFF_WAIT_S = 10.0
HANDOFF_POLL_S = 0.1
GONE_PROBES = 3  # the daemon lock seen free this many polls in a row: the daemon is gone
FOLLOW_S = 15.0  # a market fill is protected in well under a second
FIRST_LOOK_S = 0.1  # then doubling: each look is a reconcile (Binance weight ~80 without symbol)
MAX_LOOK_S = 5.0
THIS_PROCESS = "this process"


@dataclass(frozen=True, slots=True)
class Result:
    """The entry as it stands, who sent it, the exit code and its one line."""

    pending: Pending
    sent_by: str
    code: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Checked:
    """An entry that passed the symbol's filters, with what admission counts beside the journal."""

    spec: EntrySpec
    account: Account = field(default_factory=Account)
    info: market.Info | None = None  # exchangeInfo as read: kept in the state dir once admitted
    stacking: bool = False  # [protection] stacking: another entry on its position is no refusal


async def enter(
    cfg: Config, state_dir: Path, order: Order, *, wait: bool, timeout: float, ps_name: str = "position_side",
) -> Result:  # fmt: skip
    """Check ``order`` against the venue's filters and mark price, then ``place`` it.

    A refusal (EntryRefused, naming the field as ``ps_name`` for the position side) leaves
    no trace: the state dir is not touched before the checks pass."""
    async with opened(cfg, state_dir) as conn:
        entry = await checked(conn, cfg, state_dir, order, ps_name)
        return await place(conn.rest, cfg, state_dir, entry, wait=wait, timeout=timeout)


@contextlib.asynccontextmanager
async def opened(
    cfg: Config, state_dir: Path, say: Callable[[str], None] | None = None
) -> AsyncIterator[Connection]:
    """The venue for one entry. With the state dir's lock held (the entry goes to the daemon)
    connecting sends nothing: the rate limits come from the cached exchangeInfo and the
    position mode from the daemon's heartbeat (else the config, else one read)."""
    from bot_cli.connect import connect

    light = lock_holder(state_dir) is not None
    async with connect(cfg, state_dir, say=say, light=light) as conn:
        if light:
            info = market.load_info(state_dir, cfg.rest_url())
            if info is not None:
                info.apply_limits(conn.rest)
            try:
                conn.rest.hedge_mode = await market.hedge_mode(conn.rest, cfg, state_dir)
            except VenueError as err:
                raise unread(conn.rest, err, "the account's position mode", conn.venue_name) from None
        yield conn


async def checked(
    conn: Connection, cfg: Config, state_dir: Path, order: Order, ps_name: str = "position_side"
) -> Checked:
    """``order`` as an entry, once it passes the symbol's filters at the venue's mark price,
    with the account's orders that admission counts beside the journal."""
    rest, symbol = conn.rest, order.symbol
    try:
        info = await market.info_for(rest, cfg.rest_url(), state_dir, symbol)
        if info.filters(symbol) is None:
            raise EntryRefused("symbol", f"symbol {symbol} is not traded on the {conn.venue_name} venue")
        mark = await rest.mark_price(symbol)
        spec, info, filters = await _filtered(rest, cfg.rest_url(), info, order, mark, ps_name=ps_name)
        account = await market.read_account(rest, state_dir, spec, filters)
    except VenueError as err:
        raise unread(rest, err, f"{symbol}'s filters, mark price and open orders", conn.venue_name) from None
    return Checked(spec, account, info, cfg.protection.stacking)


async def _filtered(
    rest: BinanceRest, venue: str, info: market.Info, order: Order, mark: Decimal, *, ps_name: str
) -> tuple[EntrySpec, market.Info, SymbolFilters]:
    """The entry checked against the filters (market.decided: a refusal a newer exchangeInfo
    could lift is checked once more against one read now)."""
    return await market.decided(rest, venue, info, lambda i: _against(i, order, mark, rest.hedge_mode, ps_name))


def _against(
    info: market.Info, order: Order, mark: Decimal, hedge: bool, ps_name: str
) -> tuple[EntrySpec, market.Info, SymbolFilters]:
    filters = info.filters(order.symbol)
    if filters is None:  # delisted since it was cached
        raise EntryRefused("symbol", f"symbol {order.symbol} is no longer traded")
    return checked_spec(order, filters, mark, hedge, ps_name), info, filters


def unread(rest: BinanceRest, err: VenueError, what: str, venue_name: str) -> BotError:
    """One line for a read that failed: the weight budget spent (never "cannot reach"), or not."""
    from bot_cli.connect import rate_limited_line

    if isinstance(err, RateLimited):
        return BotError(rate_limited_line(rest, err))
    return BotError(f"cannot read {what} from the {venue_name} venue ({err}); nothing was sent: try again")


async def place(
    venue: Venue, cfg: Config, state_dir: Path, entry: Checked, *,
    wait: bool, timeout: float, claimed: Pending | None = None,
) -> Result:  # fmt: skip
    """Admit ``entry`` and send it (or the REQUESTED entry ``claimed``, admitted when it was
    saved) by the rules above."""
    if claimed is None:
        _refuse_on_no_journal(state_dir, entry)
    with PendingEntryStore(state_dir) as store:
        engine, p, holder = await _send_or_request(store, venue, cfg, entry, claimed=claimed)
        if engine is None:
            return await _hand_off(store, p, cfg.policy, state_dir, holder)
        if entry.spec.order_type is OrderType.LIMIT and not wait:
            return _unwatched(p)
        return await _follow(engine, state_dir, p, timeout)


async def _send_or_request(
    store: PendingEntryStore, venue: Venue, cfg: Config, entry: Checked, *, claimed: Pending | None
) -> tuple[ExecutionEngine | None, Pending, int | None]:
    """Admitted under the admission lock, then sent here; or, the state dir's lock being held,
    written REQUESTED for its holder (no engine; the holder's pid)."""
    state_dir = Path(store.path)
    with admitting(state_dir) if claimed is None else contextlib.nullcontext():
        if claimed is None:
            _admit(store, state_dir, entry)
        try:
            with DaemonLock(state_dir):
                engine = _engine(store, venue, cfg)
                p = await (engine.execute_entry(entry.spec) if claimed is None else _send(engine, claimed))
            return engine, p, None
        except LockHeld as held:
            return None, claimed or _request(store, entry.spec, cfg.venue.recv_window_ms), held.pid


@contextlib.contextmanager
def admitted(
    state_dir: Path, entry: Checked, first: Callable[[PendingEntryStore], Pending | None] = lambda _: None
) -> Iterator[Pending | None]:
    """``entry`` admitted against the journal; the admission lock is held for the block, which
    writes it (the API's claim of a key). ``first``: the entry this request made before (a
    key used again), yielded instead of admitting it anew (it is no second entry)."""
    _refuse_on_no_journal(state_dir, entry)
    with PendingEntryStore(state_dir) as store, admitting(state_dir):
        found = first(store)
        if found is None:
            _admit(store, state_dir, entry)
        yield found


def _refuse_on_no_journal(state_dir: Path, entry: Checked) -> None:
    """With no journal yet, a refusal is known before one is created: nothing is written."""
    if not (Path(state_dir) / JOURNAL_NAME).exists():
        refuse(entry.spec, [], entry.account, stacking=entry.stacking)


def _admit(store: PendingEntryStore, state_dir: Path, entry: Checked) -> None:
    refuse(entry.spec, journal_entries(store), entry.account, stacking=entry.stacking)
    market.keep_info(state_dir, entry.info)  # only now: a refusal writes nothing


def _engine(store: PendingEntryStore, venue: Venue, cfg: Config) -> ExecutionEngine:
    window = cfg.venue.recv_window_ms
    return ExecutionEngine(store, venue, policy=cfg.policy, recv_window_ms=window)


async def _send(engine: ExecutionEngine, claimed: Pending) -> Pending:
    """Claim and send a REQUESTED entry (lock held); one someone already took is only read."""
    pid = claimed.pending_id
    live = engine.state.get(pid)
    if live is None or live.status is not Status.REQUESTED:
        return latest(engine.store, live, claimed)
    await engine.handle(EntryClaimed(pid))
    return latest(engine.store, engine.state.get(pid), claimed)


def _request(store: PendingEntryStore, spec: EntrySpec, recv_window_ms: int) -> Pending:
    now = time.time_ns() // 1_000_000
    pid = make_pending_id(now, secrets.randbelow(36**5))
    p, _ = request_entry(pid, spec, now, recv_window_ms)
    store.save(pid, encode(p))
    return p


# -- no daemon: this process sends and follows ------------------------------------------


def _unwatched(p: Pending) -> Result:
    if settled(p):
        return final(p, THIS_PROCESS)
    return Result(p, THIS_PROCESS, EXIT_UNWATCHED, (
        f"no daemon is running: nothing will protect a fill of limit entry {p.pending_id} until"
        " `bot run` is started; start it now (or enter with --wait)"
    ))  # fmt: skip


async def _follow(engine: ExecutionEngine, state_dir: Path, p: Pending, timeout: float) -> Result:
    return _followed(await follow(engine, state_dir, p, timeout), state_dir, timeout)


async def follow(engine: ExecutionEngine, state_dir: Path, p: Pending, timeout: float) -> Pending:
    """Reconcile until ``p`` is protected (or settled otherwise), bounded by ``timeout``; the
    entry as it stands then. The lock is taken for each look only: a `bot run` started meanwhile
    gets it and takes over; this process then only watches the journal."""
    end, delay = time.monotonic() + timeout, FIRST_LOOK_S
    while not settled(p) and time.monotonic() < end:
        await asyncio.sleep(min(delay, max(0.0, end - time.monotonic())))
        delay = min(delay * 2, MAX_LOOK_S)
        try:
            with DaemonLock(state_dir):
                await engine.recover()
                await engine.run_due_checks()
        except LockHeld:
            engine.absorb_external()  # another process drives it now: watch what it writes
        except VenueError:
            pass  # transient (unreachable, rate limited): the next look asks again
        p = latest(engine.store, engine.state.get(p.pending_id), p)
    return p


def _followed(p: Pending, state_dir: Path, timeout: float) -> Result:
    if settled(p):
        return final(p, THIS_PROCESS)
    holder = lock_holder(state_dir)
    if holder:  # a `bot run` started while we followed: it protects the fill now
        note = (f"entry {p.pending_id} is {p.status.value}; process {holder} holds {state_dir} now"
                " and protects it")
        return Result(p, THIS_PROCESS, 0, note)
    partly = p.status is Status.PARTIALLY_FILLED
    what = "is partly filled (that part protected), the rest working" if partly else (
        f"is not protected yet ({p.status.value})"
    )  # fmt: skip
    return Result(p, THIS_PROCESS, EXIT_NOT_PROTECTED, (
        f"entry {p.pending_id} {what} after {timeout:g}s and no daemon is running:"
        " start `bot run` now, it protects the fill"
    ))  # fmt: skip


# -- a daemon runs: hand the entry to it -------------------------------------------------


async def _hand_off(
    store: PendingEntryStore, p: Pending, policy: Policy, state_dir: Path, holder: int | None
) -> Result:
    """Wait for the daemon to send the REQUESTED entry ``p``, or to be gone."""
    by = f"bot run (pid {holder})"
    p, gone = await await_daemon(store, p, state_dir, _taken, lambda q: q.status is Status.REQUESTED)
    if _taken(p):
        return final(p, by)
    if gone:
        return not_sent(p, by, holder, policy)
    return _not_taken(p, by, holder, lock_holder(state_dir) is None, policy)


def _taken(p: Pending) -> bool:
    return p.status not in (Status.REQUESTED, Status.SUBMITTING)


async def await_daemon(
    store: PendingEntryStore, p: Pending, state_dir: Path, done: Callable[[Pending], bool],
    still_owed: Callable[[Pending], bool] = lambda _: True,
) -> tuple[Pending, bool]:
    """Watch the journal for ``p`` until ``done`` with it, for at most HANDOFF_WAIT_S; the entry
    as it stands then, and whether the daemon is gone (its lock free GONE_PROBES looks in a row
    while ``still_owed`` says the daemon still owed ``p`` something)."""
    end, free = time.monotonic() + HANDOFF_WAIT_S, 0
    while time.monotonic() < end:
        await asyncio.sleep(HANDOFF_POLL_S)
        store.poll()
        p = latest(store, journal_entry(store, p.pending_id), p)
        if done(p):
            return p, False
        free = free + 1 if lock_holder(state_dir) is None else 0
        if free >= GONE_PROBES and still_owed(p):
            return p, True
    return p, False


def not_sent(p: Pending, by: str, holder: int | None, policy: Policy) -> Result:
    """The daemon is gone and the entry still REQUESTED: say so, and what becomes of it."""
    left_s = (p.created_at + policy.request_ttl_ms - time.time_ns() // 1_000_000) / 1000
    if left_s > 0:
        fate = (f"it stays REQUESTED in the journal: a `bot run` started within {left_s:.0f}s"
                " sends it, later it expires unsent")
    else:
        fate = "its request has expired: the next `bot run` archives it as NOT_PLACED"
    gone = f"the daemon (pid {holder}) stopped before taking entry {p.pending_id}"
    return Result(p, by, 1, f"{gone}: it was not sent; {fate}")


def _not_taken(p: Pending, by: str, holder: int | None, gone: bool, policy: Policy) -> Result:
    """Still REQUESTED or SUBMITTING when the wait is over."""
    if p.status is Status.REQUESTED and gone:
        return not_sent(p, by, holder, policy)
    if p.status is Status.SUBMITTING and gone:
        return Result(p, by, 1, (
            f"the daemon (pid {holder}) stopped while sending entry {p.pending_id}: it may or may"
            " not be placed; start `bot run`, it finds out and protects a fill"
        ))  # fmt: skip
    return Result(p, by, 0, (
        f"the daemon (pid {holder}) has not finished taking entry {p.pending_id} in"
        f" {HANDOFF_WAIT_S:g}s; it is {p.status.value} and stays with the daemon"
    ))  # fmt: skip


# -- reading the entry back --------------------------------------------------------------


def journal_entry(store: PendingEntryStore, pid: str) -> Pending | None:
    record = store.load_all().get(pid)
    return None if record is None else decode(record)


def latest(store: PendingEntryStore, live: Pending | None, last: Pending) -> Pending:
    """The live record, else its last archived one (it left the journal), else what we had."""
    if live is not None:
        return live
    archived = [a for a in store.archived() if a.get("id") == last.pending_id]
    return decode(archived[-1]["rec"]) if archived else last


def settled(p: Pending) -> bool:
    """Protected (resting in the journal, or archived), needing a human, or over."""
    return p.status.terminal or p.status in (Status.PROTECTED, Status.NEEDS_ATTENTION)


def final(p: Pending, by: str) -> Result:
    why = p.reason or p.status.value
    if p.status is Status.PROTECTED:  # terminal (archived) or resting, depending on the core
        return Result(p, by)
    if p.status is Status.NOT_PLACED:
        return Result(p, by, 1, f"entry {p.pending_id} was not placed: {why}")
    if p.status is Status.NEEDS_ATTENTION:
        look = "see `bot pending list`"
        return Result(p, by, 1, f"entry {p.pending_id} needs attention: {why}; {look}")
    if p.status.terminal:  # canceled, closed at once, dropped: placed, but nothing left to protect
        return Result(p, by, 0, f"entry {p.pending_id} is {p.status.value}: {why}")
    return Result(p, by)
