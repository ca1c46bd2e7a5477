"""`bot cancel`, `bot close` and `bot amend`: an operator's requests, through the core.

Both are operator events of the lifecycle table; what can take one is checked first, so a
refusal changes nothing. With a daemon holding the state dir, a request is left for it
(store.requests) and the record is watched, bounded, for the effect. With none, this process
takes the lock, reconciles, applies the event through an ExecutionEngine and follows the
entry's checks, holding the lock only for each look (a `bot run` started meanwhile takes over).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_cli.core.history import operator_noted
from bot_cli.errors import BotError
from bot_cli.ops.journal import read_back, read_journal, why_not


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.core.events import Event, OperatorAmend
    from bot_cli.core.model import Pending
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore

CANCEL, CANCEL_CLOSE, CLOSE, AMEND = "cancel", "cancel-close", "close", "amend"  # store.requests.VERBS
WORDS = {CANCEL: "cancel", CANCEL_CLOSE: "cancel and close", CLOSE: "close", AMEND: "amend"}
DONE = {CANCEL: "cancelled", CANCEL_CLOSE: "cancelled and closed", CLOSE: "closed", AMEND: "amended"}
NOT_SETTLED = 3  # not done within --timeout: the daemon (or the next `bot run`) finishes it
FOLLOW_S = 15.0
POLL_S = 0.1  # the daemon takes requests every 0.1 s
GONE_PROBES = 3  # the lock seen free this many polls in a row: the daemon is gone
FIRST_LOOK_S, MAX_LOOK_S = 0.1, 2.0  # no daemon: reconcile looks, doubling
THIS_PROCESS = "this process"
# core.model.Status values: the model (and asyncio) load only when cancel or close runs.
ATTENTION, EXITING, PROTECTED = "NEEDS_ATTENTION", "EXITING", "PROTECTED"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One entry as it stands, who acted, the exit code and its one line (stderr)."""

    pending: Pending
    by: str
    code: int = 0
    note: str = ""


async def exit_entries(
    cfg: Config, state_dir: Path, target: str, *, verb: str, timeout: float, levels: OperatorAmend | None = None
) -> list[Outcome]:
    """Apply ``verb`` (CANCEL, CANCEL_CLOSE, CLOSE, or AMEND as ``levels`` says) to ``target``: through
    the daemon if one holds the state dir, else here; BotError (nothing changed) if no entry can
    take it."""
    from bot_cli.state_store import LockHeld, PendingEntryStore, lock_holder

    _journal_exists(state_dir, target)
    with PendingEntryStore(state_dir) as store:
        entries, _ = read_journal(store)
        targets = resolve(entries, target, verb, lambda key: why_not(state_dir, key))
        holder = lock_holder(state_dir)
        if holder is None:
            try:
                return await _alone(cfg, state_dir, store, target, verb=verb, timeout=timeout, levels=levels)
            except LockHeld as held:  # a `bot run` took the state dir first: ask it instead
                holder = held.pid
        return await _ask_daemon(store, targets, verb, holder, timeout, levels=levels)


def _journal_exists(state_dir: Path, target: str) -> None:
    if not state_dir.is_dir():
        raise BotError(f"no pending entry {target} in {state_dir}: it has no journal yet")


# -- what can take the request (pure) ----------------------------------------------------


def resolve(
    entries: Mapping[Any, Pending], target: str, verb: str, gone: Callable[[str], str]
) -> list[Pending]:
    """The entries the request applies to; a BotError (nothing changed) when none can take it."""
    from bot_cli.core.ids import is_pending_id

    if verb == CLOSE and not is_pending_id(target):
        return _by_symbol(entries, target.upper())
    p = entries.get(target)
    if p is None:
        raise BotError(gone(target))
    refusal = {CLOSE: close_refusal, AMEND: amend_refusal}.get(verb, cancel_refusal)(p)
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
                f" `bot cancel {pid}` cancels its order")  # fmt: skip
    if p.share == 0:
        return f"entry {pid} ({p.status.value}) holds no share any more: nothing to close"
    return _not_in_table(p, CLOSE)


def amend_refusal(p: Pending) -> str | None:
    """Why an entry cannot take new levels now; None if it can."""
    if p.status.value == EXITING:
        return (f"entry {p.pending_id} is EXITING (a leg fired, or it is being closed): there is no stop left to"
                f" move; `bot history {p.pending_id}` says what happened")  # fmt: skip
    return _not_in_table(p, AMEND)


def _not_in_table(p: Pending, verb: str) -> str | None:
    """The lifecycle table has the last word: no row, no request (a daemon would park it)."""
    from bot_cli.core.engine import transition
    from bot_cli.core.errors import InvalidTransition

    try:
        transition(p.status, event(verb, p))
    except InvalidTransition:
        return f"entry {p.pending_id} is {p.status.value}: it cannot be {DONE[verb]} now"
    return None


def _by_symbol(entries: Mapping[Any, Pending], symbol: str) -> list[Pending]:
    mine = sorted((p for p in entries.values() if p.spec.symbol == symbol),
                  key=lambda p: p.pending_id)  # fmt: skip
    if not mine:
        raise BotError(f"no pending entry on {symbol} (nor an entry with that id):"
                       " see `bot pending list`")  # fmt: skip
    ok = [p for p in mine if close_refusal(p) is None]
    if not ok:
        which = ", ".join(f"{p.pending_id} {p.status.value}" for p in mine)
        raise BotError(f"no entry on {symbol} holds a share to close ({which});"
                       " `bot cancel ID` cancels a working entry order")  # fmt: skip
    return ok


def event(verb: str, p: Pending, levels: OperatorAmend | None = None) -> Event:
    from bot_cli.core.events import OperatorAmend, OperatorCancel, OperatorClose

    if verb == CLOSE:
        return OperatorClose(p.pending_id)
    if verb == AMEND:
        return levels or OperatorAmend(p.pending_id)
    return OperatorCancel(p.pending_id, close=verb == CANCEL_CLOSE)


def applied(p: Pending, verb: str, levels: OperatorAmend | None = None) -> bool:
    """The record shows the request's effect (what a daemon's answer is waited for)."""
    if p.status.terminal or p.status.value == ATTENTION:
        return True
    if verb == AMEND:
        return _at_levels(p, levels)
    winding = p.status.value == EXITING and (p.close is not None or p.share == 0)
    if verb == CANCEL:
        return p.entry_done
    return p.entry_done and winding if verb == CANCEL_CLOSE else winding


def _at_levels(p: Pending, levels: OperatorAmend | None) -> bool:
    """The record has taken the amend: moving its spec again changes nothing."""
    return levels is None or levels.moved(p.spec) == p.spec


def settled(p: Pending, verb: str, levels: OperatorAmend | None = None) -> bool:
    """Nothing more to wait for: over, parked for a person, (cancel) protected and resting, or
    (amend) the new levels taken and, where a share is held, the legs at them and resting."""
    if p.status.terminal or p.status.value == ATTENTION:
        return True
    if verb == AMEND:
        return _at_levels(p, levels) and (p.share == 0 or p.status.value == PROTECTED)
    return verb == CANCEL and p.entry_done and p.status.value == PROTECTED


# -- a daemon holds the state dir: leave it a request -----------------------------------


async def _ask_daemon(
    store: PendingEntryStore, targets: list[Pending], verb: str, holder: int | None, timeout: float,
    *, levels: OperatorAmend | None = None,
) -> list[Outcome]:
    import asyncio

    from bot_cli.state_store import lock_holder
    from bot_cli.store import requests

    asked_at = time.time_ns() // 1_000_000
    params = requests.amend_params(levels) if levels is not None else {}
    files = {p.pending_id: requests.put(store.path, p.pending_id, verb, params) for p in targets}
    last = {p.pending_id: p for p in targets}
    end, free = time.monotonic() + timeout, 0
    while time.monotonic() < end and free < GONE_PROBES:
        await asyncio.sleep(POLL_S)
        _refresh(store, last)
        if all(not files[pid].exists() and settled(p, verb, levels) for pid, p in last.items()):
            break
        free = free + 1 if lock_holder(store.path) is None else 0
    daemon = f"pid {holder}" if holder else "holding the lock"
    return [_from_daemon(p, verb, daemon, taken=_taken(files[pid], p, asked_at), gone=free >= GONE_PROBES,
                         wait=timeout, levels=levels) for pid, p in last.items()]  # fmt: skip


def _taken(request: Path, p: Pending, asked_at: int) -> bool:
    """The daemon took the request: it removed the file, or (killed before it could) the
    entry's record already carries the operator's step, written before the file goes."""
    return not request.exists() or operator_noted(p, asked_at)


def _refresh(store: PendingEntryStore, last: dict[Any, Pending]) -> None:
    """Take in what changed for our entries: the journal record, or the archived one."""
    for key, record in store.poll():
        if key in last and (entry := read_back(store, key, record)) is not None:
            last[key] = entry


def _from_daemon(
    p: Pending, verb: str, daemon: str, *, taken: bool, gone: bool, wait: float, levels: OperatorAmend | None = None
) -> Outcome:
    """The daemon's answer as seen in the record, or what became of the request."""
    by, it, asked = f"bot run ({daemon})", f"the daemon ({daemon})", f"{WORDS[verb]} {p.pending_id}"
    if taken and applied(p, verb, levels) and (verb != AMEND or settled(p, verb, levels)):
        return final(p, by)
    if gone and not taken:
        return Outcome(p, by, 1, f"{it} stopped before taking the request to {asked}: the request"
                                 " stays in the state dir and the next `bot run` applies it")
    if gone:
        return Outcome(p, by, 1, f"{it} took the request to {asked} and stopped before it was done:"
                                 f" it is {p.status.value}; the next `bot run` finishes it")
    if not taken:
        return Outcome(p, by, NOT_SETTLED, f"{it} has not taken the request to {asked} in"
                                           f" {wait:g}s: it stays for the daemon; see `bot status`")
    return Outcome(p, by, NOT_SETTLED, f"{it} is still working on {p.pending_id} after {wait:g}s:"
                                       f" it is {p.status.value}; see `bot history {p.pending_id}`")


# -- no daemon: this process applies the event and follows ------------------------------


async def _alone(
    cfg: Config, state_dir: Path, store: PendingEntryStore, target: str, *, verb: str, timeout: float,
    levels: OperatorAmend | None = None,
) -> list[Outcome]:
    """Reconcile, apply the event, follow; LockHeld if a `bot run` holds the state dir."""
    from bot_cli.connect import connect
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import DaemonLock
    from bot_cli.venue import VenueError

    async with connect(cfg, state_dir) as conn:
        window = cfg.venue.recv_window_ms
        engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=window)
        try:
            with DaemonLock(state_dir):
                await engine.recover()  # the exchange first: a fill while nobody watched
                targets = resolve(engine.state, target, verb, lambda k: why_not(state_dir, k))
                for p in targets:
                    await engine.handle(event(verb, p, levels))
        except VenueError as err:
            raise BotError(f"the {conn.venue_name} venue failed while reconciling ({err}): nothing"
                           f" was sent to {WORDS[verb]} {target}; try again") from None
        last = await _follow(engine, state_dir, targets, verb, timeout, levels=levels)
    return [_from_here(p, verb, state_dir, timeout, levels) for p in last.values()]


async def _follow(
    engine: ExecutionEngine, state_dir: Path, targets: list[Pending], verb: str, timeout: float,
    *, levels: OperatorAmend | None = None,
) -> dict[Any, Pending]:
    """Run the entries' due checks (else reconcile, backing off) until settled or the bound."""
    import asyncio

    from bot_cli.state_store import DaemonLock, LockHeld
    from bot_cli.venue import VenueError

    last = {p.pending_id: _latest(engine, p.pending_id, p) for p in targets}
    end, delay = time.monotonic() + timeout, FIRST_LOOK_S
    while not all(settled(p, verb, levels) for p in last.values()) and time.monotonic() < end:
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


def _latest(engine: ExecutionEngine, pid: Any, known: Pending) -> Pending:
    """The live entry, else its last archived record (it left the journal), else what we had."""
    p = engine.state.get(pid)
    return p if p is not None else (read_back(engine.store, pid, None) or known)


def _from_here(
    p: Pending, verb: str, state_dir: Path, timeout: float, levels: OperatorAmend | None = None
) -> Outcome:
    from bot_cli.state_store import lock_holder

    if settled(p, verb, levels):
        return final(p, THIS_PROCESS)
    now = f"entry {p.pending_id} is {p.status.value}"
    if holder := lock_holder(state_dir):
        note = f"{now}; `bot run` (pid {holder}) holds the state dir now and finishes it"
    else:
        note = (f"{now} after {timeout:g}s and no daemon is running: start `bot run`, it finishes"
                f" the {WORDS[verb]}")  # fmt: skip
    return Outcome(p, THIS_PROCESS, NOT_SETTLED, note)


# -- the answer -------------------------------------------------------------------------


def final(p: Pending, by: str) -> Outcome:
    if p.status.value == ATTENTION:
        pid = p.pending_id
        return Outcome(p, by, 1, f"entry {pid} needs attention: {p.reason}; `bot history {pid}`")
    return Outcome(p, by)
