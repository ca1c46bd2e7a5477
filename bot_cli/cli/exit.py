"""`bot cancel ID [--close]` and `bot close ID|SYMBOL`: an operator's exits, through the core.

Both are operator events of the lifecycle table (OperatorCancel, OperatorClose); what can
take one is checked first, from the journal, so a refusal changes nothing.

With a daemon holding the state dir, the request is left for it (store.requests) and this
process watches the journal and the archive, bounded by --timeout, until the entry's record
shows the effect. With none, this process takes the lock, reconciles with the exchange,
applies the event through an ExecutionEngine and follows the entry's checks until it settles
(holding the lock only for each look, so a `bot run` started meanwhile takes over).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, warn
from bot_cli.core.model import Pending, Status
from bot_cli.errors import BotError


if TYPE_CHECKING:
    from bot_cli.core.events import Event
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore

CANCEL, CANCEL_CLOSE, CLOSE = "cancel", "cancel-close", "close"  # store.requests.VERBS
WORDS = {CANCEL: "cancel", CANCEL_CLOSE: "cancel and close", CLOSE: "close"}
NOT_SETTLED = 3  # not done within --timeout: the daemon (or the next `bot run`) finishes it
FOLLOW_S = 15.0
POLL_S = 0.1  # the daemon takes requests every 0.1 s
GONE_PROBES = 3  # the lock seen free this many polls in a row: the daemon is gone
FIRST_LOOK_S, MAX_LOOK_S = 0.1, 2.0  # no daemon: reconcile looks, doubling
THIS_PROCESS = "this process"
_TIMEOUT_HELP = "Seconds to wait for the effect (daemon) or to follow the entry (no daemon)."


@dataclass(frozen=True, slots=True)
class Outcome:
    """One entry as it stands, who acted, the exit code and its one line (stderr)."""

    pending: Pending
    by: str
    code: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class Handoff:
    """The lock was taken by another process before this one could act: ask it instead."""

    holder: int | None


def cancel(
    ctx: typer.Context,
    pending_id: Annotated[str, typer.Argument(help="The entry's id (see `bot pending list`).")],
    close: Annotated[bool, typer.Option("--close", help="Also close at market what filled (otherwise it stays protected).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Cancel the rest of a working entry order; what filled stays protected (--close: closed).

    Example: bot cancel bc0mi3k2x7a1b2c; bot cancel bc0mi3k2x7a1b2c --close

    Exit 0: done (cancelled; with a fill, protected or closed).

    Exit 1: refused, nothing changed (unknown id, nothing left to cancel); needs attention;
    or the daemon stopped first (the request stays for the next `bot run`).

    Exit 3: not settled within --timeout; the daemon (or the next `bot run`) finishes it.
    """
    _run(ctx.obj, pending_id, CANCEL_CLOSE if close else CANCEL, timeout, as_json)


def close(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="An entry's id, or a symbol: every entry on it with a share.")],
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Close an entry's share at market (reduce-only) and cancel its legs; a SYMBOL closes each entry on it.

    The rest of a working entry order is cancelled first; each entry closes its own share only.

    Example: bot close bc0mi3k2x7a1b2c; bot close BTCUSDT

    Exit 0: closed (or, with a daemon, the close is in flight).

    Exit 1: refused, nothing changed (unknown id, nothing filled, no share); needs attention;
    or the daemon stopped first (the request stays for the next `bot run`).

    Exit 3: not settled within --timeout; the daemon (or the next `bot run`) finishes it.
    """
    _run(ctx.obj, target, CLOSE, timeout, as_json)


def _run(obj: AppContext, target: str, verb: str, timeout: float, as_json: bool) -> None:
    obj.config  # a config error surfaces before anything else
    if not obj.state_dir.is_dir():
        raise BotError(f"no pending entry {target} in {obj.state_dir}: it has no journal yet")
    _show(asyncio.run(_exit(obj, target, verb, timeout)), as_json)


async def _exit(obj: AppContext, target: str, verb: str, timeout: float) -> list[Outcome]:
    from bot_cli import ops
    from bot_cli.state_store import PendingEntryStore, lock_holder

    with PendingEntryStore(obj.state_dir) as store:
        entries, _ = ops.read_journal(store)
        targets = resolve(entries, target, verb, lambda key: why_not(obj.state_dir, key))
        holder = lock_holder(obj.state_dir)
        if holder is None:
            alone = await _alone(obj, store, target, verb, timeout)
            if not isinstance(alone, Handoff):
                return alone
            holder = alone.holder
        return await _ask_daemon(store, targets, verb, holder, timeout)


# -- what can take the request (pure) ----------------------------------------------------


def resolve(entries: Mapping[Any, Pending], target: str, verb: str, gone: Callable[[str], str]) -> list[Pending]:
    """The entries the request applies to; a BotError (nothing changed) when none can take it."""
    from bot_cli.core.ids import is_pending_id

    if verb == CLOSE and not is_pending_id(target):
        return _by_symbol(entries, target.upper())
    p = entries.get(target)
    if p is None:
        raise BotError(gone(target))
    refusal = close_refusal(p) if verb == CLOSE else cancel_refusal(p)
    if refusal is not None:
        raise BotError(refusal)
    return [p]


def cancel_refusal(p: Pending) -> str | None:
    """Why an operator cancel would do nothing for this entry; None if it can take one."""
    pid = p.pending_id
    if not p.entry_done:
        return _not_in_table(p, CANCEL)
    over = f"its entry order is over ({p.filled_qty} of {p.spec.quantity} filled)"
    if p.share > 0:
        return f"entry {pid} has nothing to cancel: {over}; `bot close {pid}` closes its share"
    return f"entry {pid} has nothing to cancel: {over} and it holds no share ({p.status.value})"


def close_refusal(p: Pending) -> str | None:
    """Why an operator close would do nothing for this entry; None if it can take one."""
    pid = p.pending_id
    if p.filled_qty == 0:
        return (f"entry {pid} is {p.status.value} with nothing filled: nothing to close;"
                f" `bot cancel {pid}` cancels its order")
    if p.share == 0:
        return f"entry {pid} ({p.status.value}) holds no share any more: nothing to close"
    return _not_in_table(p, CLOSE)


def _not_in_table(p: Pending, verb: str) -> str | None:
    """The lifecycle table has the last word: no row, no request (a daemon would park it)."""
    from bot_cli.core.engine import transition
    from bot_cli.core.errors import InvalidTransition

    try:
        transition(p.status, event(verb, p))
    except InvalidTransition:
        return f"entry {p.pending_id} is {p.status.value}: it cannot be {WORDS[verb]}d now"
    return None


def _by_symbol(entries: Mapping[Any, Pending], symbol: str) -> list[Pending]:
    mine = sorted((p for p in entries.values() if p.spec.symbol == symbol), key=lambda p: p.pending_id)
    if not mine:
        raise BotError(f"no pending entry on {symbol} (nor an entry with that id): see `bot pending list`")
    ok = [p for p in mine if close_refusal(p) is None]
    if not ok:
        which = ", ".join(f"{p.pending_id} {p.status.value}" for p in mine)
        raise BotError(f"no entry on {symbol} holds a share to close ({which}); `bot cancel ID` cancels a"
                       " working entry order")
    return ok


def why_not(state_dir: Path, key: str) -> str:
    """Why an id is not a pending entry that can be acted on, in one line."""
    from bot_cli.cli.history import find, iso
    from bot_cli.ops import Unreadable

    found = find(state_dir, key)
    if found is None:
        return f"no pending entry {key} in {state_dir}: see `bot pending list`"
    if isinstance(found.entry, Unreadable):
        return f"the record of {key} cannot be read ({found.entry.reason}): nothing can be sent for it"
    a, p = found.archived, found.entry
    when = "" if a is None else f" {iso(a.at_ms)}"
    return f"entry {key} is no longer pending: archived{when} as {p.status.value} ({p.reason}); see `bot history {key}`"


def event(verb: str, p: Pending) -> Event:
    from bot_cli.core.events import OperatorCancel, OperatorClose

    if verb == CLOSE:
        return OperatorClose(p.pending_id)
    return OperatorCancel(p.pending_id, close=verb == CANCEL_CLOSE)


def applied(p: Pending, verb: str) -> bool:
    """The record shows the request's effect (what a daemon's answer is waited for)."""
    if p.status.terminal or p.status is Status.NEEDS_ATTENTION:
        return True
    winding = p.status is Status.EXITING and (p.close is not None or p.share == 0)
    if verb == CANCEL:
        return p.entry_done
    return p.entry_done and winding if verb == CANCEL_CLOSE else winding


def settled(p: Pending, verb: str) -> bool:
    """Nothing more to wait for: over, parked for a person, or (cancel) protected and resting."""
    if p.status.terminal or p.status is Status.NEEDS_ATTENTION:
        return True
    return verb == CANCEL and p.entry_done and p.status is Status.PROTECTED


# -- a daemon holds the state dir: leave it a request -----------------------------------


async def _ask_daemon(
    store: PendingEntryStore, targets: list[Pending], verb: str, holder: int | None, timeout: float
) -> list[Outcome]:
    from bot_cli.state_store import lock_holder
    from bot_cli.store import requests

    files = {p.pending_id: requests.put(store.path, p.pending_id, verb) for p in targets}
    last = {p.pending_id: p for p in targets}
    end, free = time.monotonic() + timeout, 0
    while time.monotonic() < end and free < GONE_PROBES:
        await asyncio.sleep(POLL_S)
        _refresh(store, last)
        if all(not files[pid].exists() and applied(p, verb) for pid, p in last.items()):
            break
        free = free + 1 if lock_holder(store.path) is None else 0
    by = f"bot run (pid {holder})"
    return [_from_daemon(p, verb, by, taken=not files[pid].exists(), gone=free >= GONE_PROBES, timeout=timeout)
            for pid, p in last.items()]


def _refresh(store: PendingEntryStore, last: dict[Any, Pending]) -> None:
    """Take in what changed for our entries: the journal record, or the archived one."""
    from bot_cli.cli.history import find_archived
    from bot_cli.ops import decode_record

    for key, record in store.poll():
        if key not in last:
            continue
        found = decode_record(key, record) if record is not None else getattr(find_archived(store, key), "entry", None)
        if isinstance(found, Pending):
            last[key] = found


def _from_daemon(p: Pending, verb: str, by: str, *, taken: bool, gone: bool, timeout: float) -> Outcome:
    pid, daemon = p.pending_id, by.removeprefix("bot run ")
    if taken and applied(p, verb):
        return final(p, verb, by)
    if gone and not taken:
        return Outcome(p, by, 1, (f"the daemon {daemon} stopped before taking the request to {WORDS[verb]} {pid}:"
                                  " the request stays in the state dir and the next `bot run` applies it"))
    if gone:
        return Outcome(p, by, 1, (f"the daemon {daemon} took the request to {WORDS[verb]} {pid} and stopped"
                                  f" before it was done: it is {p.status.value}; the next `bot run` finishes it"))
    if not taken:
        return Outcome(p, by, NOT_SETTLED, (f"the daemon {daemon} has not taken the request to {WORDS[verb]} {pid}"
                                            f" in {timeout:g}s: it stays for the daemon; see `bot status`"))
    return Outcome(p, by, NOT_SETTLED, (f"the daemon {daemon} is still working on {pid} after {timeout:g}s:"
                                        f" it is {p.status.value}; see `bot history {pid}`"))


# -- no daemon: this process applies the event and follows ------------------------------


async def _alone(
    obj: AppContext, store: PendingEntryStore, target: str, verb: str, timeout: float
) -> list[Outcome] | Handoff:
    from bot_cli.connect import connect
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import DaemonLock, LockHeld
    from bot_cli.venue import VenueError

    cfg = obj.config
    async with connect(cfg, obj.state_dir) as conn:
        engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms)
        try:
            with DaemonLock(obj.state_dir):
                await engine.recover()  # the exchange first: a fill while nobody watched
                targets = resolve(engine.state, target, verb, lambda key: why_not(obj.state_dir, key))
                for p in targets:
                    await engine.handle(event(verb, p))
        except LockHeld as held:
            return Handoff(held.pid)
        except VenueError as err:
            raise BotError(f"the {conn.venue_name} venue failed while reconciling ({err}): nothing was"
                           f" sent to {WORDS[verb]} {target}; try again") from None
        last = await _follow(engine, obj.state_dir, [p.pending_id for p in targets], verb, timeout)
    return [_from_here(p, verb, obj.state_dir, timeout) for p in last.values()]


async def _follow(engine: ExecutionEngine, state_dir: Path, pids: list[Any], verb: str, timeout: float) -> dict[Any, Pending]:
    """Run the entries' due checks (else reconcile, backing off) until settled or the bound."""
    from bot_cli.state_store import DaemonLock, LockHeld
    from bot_cli.venue import VenueError

    last = {pid: _latest(engine, pid, None) for pid in pids}
    end, delay = time.monotonic() + timeout, FIRST_LOOK_S
    while not all(settled(p, verb) for p in last.values()) and time.monotonic() < end:
        due = engine.next_check_at()
        wait = delay if due is None else max(0.0, (due - engine.clock.now_ms()) / 1000)
        await asyncio.sleep(min(wait, max(0.0, end - time.monotonic())))
        try:
            with DaemonLock(state_dir):
                if due is not None and due <= engine.clock.now_ms():
                    await engine.run_due_checks()
                else:
                    await engine.recover()
                    delay = min(delay * 2, MAX_LOOK_S)
        except LockHeld:
            engine.absorb_external()  # a `bot run` drives it now: watch what it writes
        except VenueError:
            pass  # transient: the next look asks again
        last = {pid: _latest(engine, pid, p) for pid, p in last.items()}
    return last


def _latest(engine: ExecutionEngine, pid: Any, known: Pending | None) -> Pending:
    """The live entry, else its last archived record (it left the journal), else what we had."""
    from bot_cli.cli.history import find_archived

    p = engine.state.get(pid)
    if p is not None:
        return p
    found = find_archived(engine.store, pid)
    if found is not None and isinstance(found.entry, Pending):
        return found.entry
    assert known is not None, f"{pid} is neither pending nor archived"
    return known


def _from_here(p: Pending, verb: str, state_dir: Path, timeout: float) -> Outcome:
    from bot_cli.state_store import lock_holder

    if settled(p, verb):
        return final(p, verb, THIS_PROCESS)
    holder = lock_holder(state_dir)
    if holder:
        return Outcome(p, THIS_PROCESS, NOT_SETTLED, (f"entry {p.pending_id} is {p.status.value}; `bot run`"
                                                      f" (pid {holder}) holds the state dir now and finishes it"))
    return Outcome(p, THIS_PROCESS, NOT_SETTLED, (
        f"entry {p.pending_id} is {p.status.value} after {timeout:g}s and no daemon is running:"
        f" start `bot run`, it finishes the {WORDS[verb]}"))  # fmt: skip


# -- the answer -------------------------------------------------------------------------


def final(p: Pending, verb: str, by: str) -> Outcome:
    if p.status is Status.NEEDS_ATTENTION:
        return Outcome(p, by, 1, f"entry {p.pending_id} needs attention: {p.reason}; see `bot history {p.pending_id}`")
    return Outcome(p, by)


def what(p: Pending) -> str:
    """The state in words, for the stdout line."""
    if p.status.terminal:
        return p.reason or p.status.value.lower()
    if p.status is Status.PROTECTED:
        return f"entry order over with {p.filled_qty} filled; its share {p.share} stays protected"
    if p.status is Status.EXITING and p.close is not None:
        return f"market close {p.close.client_id} of {p.close.quantity} in flight ({p.close.state.value})"
    if p.status is Status.EXITING and p.share == 0:
        return "closed at market; its legs are being cancelled"
    return p.reason or ("entry order over" if p.entry_done else "entry order still working")


def _show(outcomes: list[Outcome], as_json: bool) -> None:
    if as_json:
        print_json({"results": [{
            "id": o.pending.pending_id, "symbol": o.pending.spec.symbol, "state": o.pending.status.value,
            "reason": o.pending.reason, "filled_quantity": str(o.pending.filled_qty),
            "share": str(o.pending.share), "by": o.by, "note": o.note or None, "exit_code": o.code,
        } for o in outcomes]})  # fmt: skip
    else:
        for o in outcomes:
            p = o.pending
            typer.echo(f"entry {p.pending_id} ({p.spec.symbol}): {p.status.value} - {what(p)} [by {o.by}]")
    notes = "; ".join(o.note for o in outcomes if o.note)
    if any(o.code == 1 for o in outcomes):
        raise BotError(notes)
    if notes:
        warn(notes)
    if code := max((o.code for o in outcomes), default=0):
        raise typer.Exit(code)
