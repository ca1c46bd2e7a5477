"""`bot pending drop`: forget entries, refusing while that would leave orders unfollowed.

Dropping a pending entry makes the bot forget it: the core's OperatorDrop decides from the
journal (core.drop); refuse while its order is still open on the exchange or its position is
unprotected, unless the operator insists. When they do (--force), what the entry left working
is cancelled by its client ids, unless --keep-orders; the position it held is left as it is,
and said so. Entries are archived, never erased.

Another process (the daemon) writes the same journal: it may claim, send or move an entry
between the moment a drop reads its record and the moment it archives it. So each archive is a
compare-and-swap against the record the drop decided on (`PendingEntryStore.remove_if`): an
entry whose record changed meanwhile is refused, and nothing of it is archived or cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot_cli.core.ids import client_id, is_pending_id
from bot_cli.core.model import ENTRY_WORKING, ClientId, Leg, LegState, Pending, PendingId
from bot_cli.errors import BotError, UsageError
from bot_cli.ops.journal import UNREADABLE, Unreadable, decode_record
from bot_cli.state_store import PendingEntryStore, Record
from bot_cli.venue import NotFound, Venue, VenueError


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.core.commands import ArchivePending

T = TypeVar("T")


# -- from the journal -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DropPlan:
    """The named journal records, decoded or not, and why forgetting each may be unsafe.

    ``records`` holds each record as it was read: the drop archives it only while the journal
    still holds exactly that, so what was checked (and confirmed) is what is dropped."""

    entries: dict[PendingId, Pending]
    unreadable: dict[str, Unreadable]
    records: dict[str, Record]

    @property
    def ids(self) -> list[str]:
        return [*self.entries, *self.unreadable]

    def blockers(self) -> list[str]:
        from bot_cli.core.drop import drop_blocker

        found = [b for p in self.entries.values() if (b := drop_blocker(p)) is not None]
        found += [f"{u.key}: its record cannot be read ({u.reason}), so what it left on the exchange "
                  "is unknown" for u in self.unreadable.values()]
        return found


class DropRefused(BotError):
    """Dropping would leave orders working on the exchange with nothing following them."""

    def __init__(self, blockers: list[str]) -> None:
        super().__init__(f"refusing to drop: {'; '.join(blockers)} (use --force to drop anyway)")


@dataclass(frozen=True, slots=True)
class DropResult:
    dropped: list[str]
    left_live: dict[str, str]  # id -> what may still work on the exchange, in words
    gone: list[str]  # archived meanwhile by another process
    changed: dict[str, str]  # id -> its state now: its record changed after it was read, not dropped

    def refusal(self) -> str | None:
        """One line naming the entries not dropped because their record changed; None if none."""
        if not self.changed:
            return None
        which = ", ".join(f"{pid} changed while deciding (now {now})" for pid, now in self.changed.items())
        what = "nothing was dropped" if not self.dropped else f"{', '.join(self.changed)} not dropped"
        return f"{which}: {what}; look again with `bot pending list`"


def plan_drop(store: PendingEntryStore, ids: list[str]) -> DropPlan:
    """The named records, or a UsageError naming the unknown ids (nothing changed)."""
    records = store.load_all()
    unknown = [i for i in ids if i not in records]
    if unknown:
        raise UsageError(
            f"no pending entry {', '.join(unknown)} in {store.path}: see `bot pending list` for the ids"
        )
    named = {key: records[key] for key in ids}
    entries: dict[PendingId, Pending] = {}
    unreadable: dict[str, Unreadable] = {}
    for key, record in named.items():
        found = decode_record(key, record)
        if isinstance(found, Unreadable):
            unreadable[key] = found
        else:
            entries[PendingId(key)] = found
    return DropPlan(entries, unreadable, named)


def drop_pending(
    store: PendingEntryStore, ids: list[str], *, now_ms: int, reason: str = "dropped", force: bool = False
) -> DropResult:
    """Read the named records, then drop them as `drop_planned` does."""
    return drop_planned(store, plan_drop(store, ids), now_ms=now_ms, reason=reason, force=force)


def drop_planned(
    store: PendingEntryStore, plan: DropPlan, *, now_ms: int, reason: str = "dropped", force: bool = False
) -> DropResult:
    """Archive the entries through the core's OperatorDrop; refuses unsafe ones unless forced.

    Every entry is stepped before anything is written. Each is archived only while its journal
    record is still the plan's; one that changed is left as it is now, and named in ``changed``.
    An unreadable record is archived as it is (only when forced).
    """
    from bot_cli.core.drop import still_live

    if not force and (blockers := plan.blockers()):
        raise DropRefused(blockers)
    commands = [_drop_command(p, now_ms, reason) for p in plan.entries.values()]
    refused = _archive_all(store, plan, commands, reason)
    changed = _states_now(store, refused)
    left: dict[str, str] = {pid: ", ".join(live) for pid, p in plan.entries.items() if (live := still_live(p))}
    left.update(dict.fromkeys(plan.unreadable, "the orders of its unreadable record, if any (never checked)"))
    dropped = [i for i in plan.ids if i not in refused]
    gone = [key for key in refused if key not in changed]
    return DropResult(dropped, {i: left[i] for i in dropped if i in left}, gone, changed)


def _drop_command(p: Pending, now_ms: int, reason: str) -> ArchivePending:
    """The ArchivePending the lifecycle answers OperatorDrop with; anything else is refused."""
    from bot_cli.core.commands import ArchivePending
    from bot_cli.core.engine import step
    from bot_cli.core.errors import InvalidTransition
    from bot_cli.core.events import OperatorDrop

    try:
        _, cmds = step(p, OperatorDrop(p.pending_id, reason), now_ms)
    except InvalidTransition as err:
        raise BotError(f"{err}: nothing was dropped") from None
    archives = [c for c in cmds if isinstance(c, ArchivePending)]
    others = [type(c).__name__ for c in cmds if not isinstance(c, ArchivePending)]
    if others or len(archives) != 1:
        raise BotError(f"{p.pending_id}: a drop asks for {', '.join(others) or 'no archive'}, which "
                       "`bot pending drop` cannot carry out: nothing was dropped")
    return archives[0]


def _archive_all(
    store: PendingEntryStore, plan: DropPlan, commands: list[ArchivePending], reason: str
) -> list[str]:
    """Execute the ArchivePendings (an unreadable record is archived as it is), each one only
    while the journal still holds the record the plan read; the ids refused."""
    from bot_cli.store.codec import encode

    todo: list[tuple[str, str, Record | None]] = [(c.pending.pending_id, c.reason, encode(c.pending)) for c in commands]
    todo += [(key, reason, None) for key in plan.unreadable]
    return [key for key, why, record in todo
            if not store.remove_if(key, why, expected=plan.records[key], record=record)]  # fmt: skip


def _states_now(store: PendingEntryStore, keys: list[str]) -> dict[str, str]:
    """The state each refused record is in now; one no longer in the journal is not listed."""
    if not keys:
        return {}
    records = store.load_all()
    now: dict[str, str] = {}
    for key in keys:
        if (record := records.get(key)) is not None:
            found = decode_record(key, record)
            now[key] = UNREADABLE if isinstance(found, Unreadable) else found.status.value
    return now


# -- from the exchange ----------------------------------------------------------------------


async def check_drop(cfg: Config, state_dir: Path, entries: dict[PendingId, Pending]) -> None:
    """Refuse (BotError, nothing changed) while the exchange shows an entry's order open or its
    position unprotected, or cannot be read."""
    problems = await _check(cfg, state_dir, entries)
    if problems:
        raise BotError("; ".join(problems) + " — refusing to drop (use --force to drop anyway)")


async def _check(cfg: Config, state_dir: Path, entries: dict[PendingId, Pending]) -> list[str]:
    from bot_cli.connect import connect

    try:
        async with connect(cfg, state_dir) as conn:
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


# -- pending drop --force: cancel what the entries left working, then forget them --------------


_DEAD_LEG = (LegState.FIRED,)  # a fired leg's child order is a market order: nothing to cancel


@dataclass(frozen=True, slots=True)
class Cancels:
    """What a forced drop cancelled on the exchange for one entry, and what it left there."""

    canceled: tuple[str, ...]
    left: tuple[str, ...]
    failed: bool = False  # a cancel got no definite answer


def working(plan: DropPlan) -> list[str]:
    """The ids whose orders may still work on the exchange, by the journal (an unreadable one: maybe)."""
    from bot_cli.core.drop import still_live

    ids = [pid for pid, p in plan.entries.items() if still_live(p)]
    return ids + [k for k in plan.unreadable if is_pending_id(k)]


def cancellable(plan: DropPlan) -> list[str]:
    """The ids a forced drop looks up on the exchange: every one that names orders there.

    Not only those the journal calls live: the exchange, read once the operator has answered,
    is what says which orders still work (one may have appeared while the prompt was up)."""
    return [key for key in plan.ids if is_pending_id(key)]


async def drop_and_cancel(
    cfg: Config, state_dir: Path, store: PendingEntryStore, plan: DropPlan, now_ms: int
) -> tuple[DropResult, dict[str, Cancels]]:
    """Read the exchange, drop (so no daemon re-places a leg we cancel), then cancel by id.

    Call it once the operator has answered: the cancels are what the exchange shows then. The
    venue is reached first: if it cannot be, nothing is dropped. An entry whose record changed
    since the plan is not dropped, and none of its orders is touched (someone follows it)."""
    from bot_cli.connect import connect

    ids, cancels = set(cancellable(plan)), {}
    try:
        async with connect(cfg, state_dir) as conn:
            orders = [(r.symbol, r.client_id) for r in await conn.rest.open_orders()]
            algos = [r.client_id for r in await conn.rest.open_algo_orders()]
            result = drop_planned(store, plan, now_ms=now_ms, force=True)
            for pid in (i for i in result.dropped if i in ids):
                entry = plan.entries.get(PendingId(pid))
                cancels[pid] = await _cancel_all(conn.rest, pid, entry, orders, algos)
    except VenueError as err:  # only the two listings raise it: nothing dropped yet
        raise BotError(f"cannot read the exchange's open orders ({err}): nothing was dropped; try"
                       " again, or drop with --keep-orders and cancel them there") from None
    except BotError as err:  # connect, or the drop refused: nothing dropped either
        raise BotError(f"{err}; nothing was dropped (--keep-orders drops without cancelling)"
                       ) from None
    return result, cancels


async def _cancel_all(
    venue: Venue,
    pid: str,
    p: Pending | None,
    orders: Sequence[tuple[str, str]],
    algos: Sequence[str],
) -> Cancels:
    """Cancel the entry order and every leg, known from the record or seen open on the venue."""
    prefix, entry_id = f"{pid}-", f"{pid}-e"
    entry = [(s, c) for s, c in orders if c.startswith(prefix)]
    if p is not None and p.status in ENTRY_WORKING and entry_id not in (c for _, c in entry):
        entry.append((p.spec.symbol, entry_id))  # not visible in the listing yet, maybe
    legs = {c for c in algos if c.startswith(prefix)}
    if p is not None:
        legs |= {x.client_id for x in p.protections if x.state not in _DEAD_LEG}
    canceled: list[str] = []
    left: list[str] = []
    filled = Decimal(0)
    for symbol, cid in entry:
        call = partial(venue.cancel_order, symbol, ClientId(cid))
        report = await _cancel(call, cid, canceled, left)
        if report is not None and cid == entry_id:
            filled = report.filled_qty
    for cid in sorted(legs):
        await _cancel(partial(venue.cancel_protection, ClientId(cid)), cid, canceled, left)
    failed = bool(left)
    return Cancels(tuple(canceled), (*left, *_unprotected(p, filled)), failed)


async def _cancel(
    call: Callable[[], Awaitable[T]], cid: str, canceled: list[str], left: list[str]
) -> T | None:
    """One cancel by client id: done (in ``canceled``), no longer open, or failed (in ``left``)."""
    try:
        answer = await call()
    except NotFound:
        return None  # not open: filled, fired or cancelled already
    except VenueError as err:
        left.append(f"{cid} (cancel failed: {err})")
        return None
    canceled.append(cid)
    return answer


def _unprotected(p: Pending | None, filled_on_cancel: Decimal) -> list[str]:
    """The position the entry held, now with nothing protecting it; and a close in flight."""
    if p is None:
        return []
    left = []
    if p.close is not None:
        c = p.close
        left.append(f"market close {c.client_id} ({c.state.value}): it executes or not on its own")
    share = max(p.share, filled_on_cancel - p.exited)
    if share > 0:
        left.append(f"its share of {share} {p.spec.symbol} stays open with no stop-loss;"
                    " close it on the exchange")  # fmt: skip
    return left
