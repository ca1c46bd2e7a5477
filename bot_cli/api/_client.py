"""The clients: ``AsyncClient`` (asyncio) and ``Client`` (plain calls). Strictly private.

Both go the way `bot enter` goes: the same checks, the same journal, the same hand-off to a
running daemon, the same one-shot rules without one (see ``bot_cli.ops.enter``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from bot_cli.api._types import DaemonStatus, Entry, RequestResult, all_entries, find, read_status
from bot_cli.api.keys import Claim, Keys, key_problem
from bot_cli.config import Config, load_config
from bot_cli.core.model import EntrySpec, Pending, Side, Status, Trail
from bot_cli.core.numbers import NotANumber, positive, shown
from bot_cli.errors import UsageError
from bot_cli.ops import adopt as adopting
from bot_cli.ops import enter as flow
from bot_cli.ops.checks import EntryRefused, Order
from bot_cli.state_store import PendingEntryStore
from bot_cli.store import requests


log = logging.getLogger("bot_cli.api")
T = TypeVar("T")
Number = Decimal | str | int
PathArg = str | os.PathLike[str]
ConfigArg = Config | PathArg | None
REQUEST_WAIT_S = flow.HANDOFF_WAIT_S
REQUEST_POLL_S = 0.05


class UnknownEntryError(UsageError):
    """No such entry in the journal; nothing was asked of the daemon."""


class NothingToDoError(UsageError):
    """The cancel or close would do nothing for this entry (`bot cancel` / `bot close` refuse it
    with the same line); nothing was asked of the daemon."""


class AsyncClient:
    """Entries for one state dir, from asyncio code. See ``Client`` for the rules."""

    def __init__(self, state_dir: PathArg, config: ConfigArg = None) -> None:
        self.state_dir = Path(state_dir)
        self.config = config if isinstance(config, Config) else load_config(config)

    async def enter(
        self, symbol: str, side: str | Side, quantity: Number, *, stop_loss: Number,
        price: Number | None = None, take_profit: Number | None = None, key: str | None = None,
        position_side: str | None = None, wait: bool = False, timeout: float = flow.FOLLOW_S,
        tp_levels: Sequence[tuple[Number, Number | None]] = (), trail: Number | None = None,
        activate: Number | None = None,
    ) -> Entry:  # fmt: skip
        """Check, persist and place an entry; see ``Client.enter``. ``tp_levels``: take profit in
        steps, (price, percent of the quantity) for each level but the last, (price, None) for the
        last; ``trail`` (percent) with ``activate``: a trailing stop beside the stop-loss."""
        order = replace(_order(
            symbol, side, quantity, price=price, stop_loss=stop_loss, take_profit=take_profit,
            position_side=position_side,
        ), tp_levels=tuple(
            (_decimal("tp_levels", tp), None if pct is None else _decimal("tp_levels", pct)) for tp, pct in tp_levels
        ), trail=_trail(trail, activate))  # fmt: skip
        if key is not None:
            if (problem := key_problem(key)) is not None:
                raise EntryRefused("key", problem)
            keys = Keys(self.state_dir)
            if keys.used(key):  # no state dir is created for a key never used
                with PendingEntryStore(self.state_dir) as store:
                    first = keys.lookup(store, key)
                if first is not None:
                    return _duplicate(first, key)
        return await self._place(order, key, wait, timeout)

    async def _place(self, order: Order, key: str | None, wait: bool, timeout: float) -> Entry:
        cfg = self.config
        async with flow.opened(cfg, self.state_dir, say=log.warning) as conn:
            entry = await flow.checked(conn, cfg, self.state_dir, order)
            claimed = None
            if key is not None:
                keys = Keys(self.state_dir)
                # before the key is spent on it; a concurrent call with this key may have saved it first
                with flow.admitted(self.state_dir, entry, lambda store: keys.lookup(store, key)) as first:
                    c = Claim(first, new=False) if first is not None else self._claim(key, entry.spec)
                if not c.new:
                    return _duplicate(c.pending, key)
                claimed = c.pending
            result = await flow.place(
                conn.rest, cfg, self.state_dir, entry, wait=wait, timeout=timeout, claimed=claimed
            )
        return _entry(result)

    async def adopt(
        self, symbol: str, stop_loss: Number, *, take_profit: Number | None = None,
        position_side: str | None = None, quantity: Number | None = None,
    ) -> Entry:  # fmt: skip
        """Protect the part of ``symbol``'s position no entry holds; see ``Client.adopt``."""
        ask = adopting.Adoption(
            _symbol(symbol), _decimal("stop_loss", stop_loss),
            None if take_profit is None else _decimal("take_profit", take_profit), position_side,
            None if quantity is None else _decimal("quantity", quantity),
        )  # fmt: skip
        return _entry(await adopting.adopt(self.config, self.state_dir, ask, say=log.warning))

    def _claim(self, key: str, spec: EntrySpec) -> Claim:
        with PendingEntryStore(self.state_dir) as store:
            keys = Keys(self.state_dir)
            try:
                now = time.time_ns() // 1_000_000
                return keys.claim(store, key, spec, now, self.config.venue.recv_window_ms)
            finally:
                keys.close()

    async def cancel(self, entry_id: str, *, close_filled: bool = False) -> RequestResult:
        """Cancel the entry order; with ``close_filled`` also close what filled, at market."""
        return await self._ask(entry_id, "cancel-close" if close_filled else "cancel")

    async def close(self, entry_id: str) -> RequestResult:
        """Close the entry's share at market and cancel its legs."""
        return await self._ask(entry_id, "close")

    async def amend(
        self, entry_id: str, *, stop_loss: Number | None = None,
        take_profit: Number | list[Number] | tuple[Number, ...] | None = None, breakeven: bool = False,
        timeout: float = flow.FOLLOW_S, trail: Number | None = None, activate: Number | None = None,
    ) -> Entry:  # fmt: skip
        """Move the entry's stop-loss and/or take-profit (``breakeven``: the stop to the average
        fill plus the round trip's fees), as `bot amend` does: checked first (a refusal raises
        BotError with the CLI's line, nothing changed), written before anything is sent, the new
        leg live before the old one goes; through the daemon, or this process when none runs.
        The entry as it stands after; ``watched`` False with a ``note`` when not settled in time."""
        from bot_cli.ops.amend import Amendment, amend

        tps = take_profit if isinstance(take_profit, list | tuple) else () if take_profit is None else (take_profit,)
        ask = Amendment(
            None if stop_loss is None else _decimal("stop_loss", stop_loss),
            tuple(_decimal("take_profit", x) for x in tps), breakeven, _trail(trail, activate),
        )  # fmt: skip
        fee = Decimal(str(self.config.protection.breakeven_fee_pct))
        outcome = await amend(self.config, self.state_dir, entry_id, ask, timeout=timeout, fee_pct=fee)
        return Entry.of(outcome.pending, sent_by=outcome.by, watched=outcome.code == 0, note=outcome.note)

    async def _ask(self, entry_id: str, verb: str) -> RequestResult:
        from bot_cli.ops.exit import cancel_refusal, close_refusal

        p = find(self.state_dir, entry_id)
        if p is None:
            raise UnknownEntryError(f"no entry {entry_id} in {self.state_dir}: nothing was asked")
        if (why := close_refusal(p) if verb == "close" else cancel_refusal(p)) is not None:
            raise NothingToDoError(f"{why}; nothing was asked")
        path = requests.put(self.state_dir, entry_id, verb)
        daemon = read_status(self.state_dir)
        if not daemon.running:
            note = (f"no daemon is running: the {verb} of {entry_id} waits in {path.parent}"
                    " until `bot run` starts and applies it")  # fmt: skip
            return RequestResult(entry_id, verb, False, self.entry(entry_id), note)
        applied = await _until(lambda: not path.exists(), REQUEST_WAIT_S)
        note = "" if applied else (
            f"the daemon (pid {daemon.pid}) has not taken the {verb} of {entry_id} in"
            f" {REQUEST_WAIT_S:g}s; the request stays for it"
        )  # fmt: skip
        return RequestResult(entry_id, verb, applied, self.entry(entry_id), note)

    def status(self) -> DaemonStatus:
        """Whether a daemon follows the state dir, its stream, and the journal's counts."""
        return read_status(self.state_dir)

    def entries(self) -> list[Entry]:
        """The journal's entries (those still live), oldest first."""
        if not self.state_dir.is_dir():
            return []
        ordered = sorted(all_entries(self.state_dir), key=lambda p: p.created_at)
        return [Entry.of(p) for p in ordered]

    def entry(self, entry_id: str) -> Entry | None:
        """One entry from the journal, else the archive; None if neither holds it."""
        p = find(self.state_dir, entry_id) if self.state_dir.is_dir() else None
        return None if p is None else Entry.of(p)


class Client:
    """Entries for one state dir, from plain (synchronous) Python code.

    ``Client(state_dir, config=None)``: ``config`` is a ``Config``, a TOML path, or None for
    ./bot.toml if present (else the defaults: the paper venue).

    ``enter(...)`` checks the entry exactly as `bot enter` does (raising ``EntryRefused``
    naming the field, with nothing written or sent), then:

    - a daemon runs: the entry is saved REQUESTED and the daemon sends and protects it; the
      call waits (up to 10 s) for the daemon to take it;
    - no daemon: this process sends it; a market entry (a limit one with ``wait=True``) is
      followed until protected (up to ``timeout`` s). Otherwise the returned entry has
      ``watched=False`` and a ``note``: nothing protects a fill until `bot run` starts.

    ``key="..."``: an idempotency key. It maps to one entry forever: the same key again
    returns that first entry (``duplicate=True``) and sends nothing, even across processes
    and crashes.
    """

    def __init__(self, state_dir: PathArg, config: ConfigArg = None) -> None:
        self._async = AsyncClient(state_dir, config)

    @property
    def state_dir(self) -> Path:
        return self._async.state_dir

    def enter(
        self, symbol: str, side: str | Side, quantity: Number, *, stop_loss: Number,
        price: Number | None = None, take_profit: Number | None = None, key: str | None = None,
        position_side: str | None = None, wait: bool = False, timeout: float = flow.FOLLOW_S,
        tp_levels: Sequence[tuple[Number, Number | None]] = (), trail: Number | None = None,
        activate: Number | None = None,
    ) -> Entry:  # fmt: skip
        return _run(self._async.enter(
            symbol, side, quantity, stop_loss=stop_loss, price=price, take_profit=take_profit,
            key=key, position_side=position_side, wait=wait, timeout=timeout, tp_levels=tp_levels, trail=trail,
            activate=activate,
        ))  # fmt: skip

    def adopt(
        self, symbol: str, stop_loss: Number, *, take_profit: Number | None = None,
        position_side: str | None = None, quantity: Number | None = None,
    ) -> Entry:  # fmt: skip
        """Protect the part of ``symbol``'s position no entry holds (a trade by hand, an entry
        that filled unseen): it becomes an entry of its own, with no entry order, whose stop-loss
        (and take-profit) cover ``quantity`` (default: all of that part).

        Checked and admitted as `bot adopt` does: ``EntryRefused`` (nothing written or sent)
        when no part is unclaimed, ``quantity`` exceeds it, a trigger is on the wrong side of
        the mark or off the tick, or the legs do not fit. With a daemon the entry is handed to
        it; without one this process places the legs. ``watched`` is False, with a ``note``,
        when the legs are not live yet and nothing will place them until `bot run` starts."""
        return _run(self._async.adopt(
            symbol, stop_loss, take_profit=take_profit, position_side=position_side, quantity=quantity,
        ))  # fmt: skip

    def cancel(self, entry_id: str, *, close_filled: bool = False) -> RequestResult:
        return _run(self._async.cancel(entry_id, close_filled=close_filled))

    def close(self, entry_id: str) -> RequestResult:
        return _run(self._async.close(entry_id))

    def amend(
        self, entry_id: str, *, stop_loss: Number | None = None,
        take_profit: Number | list[Number] | tuple[Number, ...] | None = None, breakeven: bool = False,
        timeout: float = flow.FOLLOW_S, trail: Number | None = None, activate: Number | None = None,
    ) -> Entry:  # fmt: skip
        """See ``AsyncClient.amend``."""
        return _run(self._async.amend(entry_id, stop_loss=stop_loss, take_profit=take_profit, breakeven=breakeven,
                                      timeout=timeout, trail=trail, activate=activate))  # fmt: skip

    def status(self) -> DaemonStatus:
        return self._async.status()

    def entries(self) -> list[Entry]:
        return self._async.entries()

    def entry(self, entry_id: str) -> Entry | None:
        return self._async.entry(entry_id)


# -- helpers -----------------------------------------------------------------------------


def _run(coro: Awaitable[T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    coro.close()  # type: ignore[attr-defined]
    raise RuntimeError("bot_cli Client blocks; inside a running event loop use AsyncClient")


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(REQUEST_POLL_S)
    return True


def _entry(r: flow.Result) -> Entry:
    p = r.pending
    waiting = r.code == 1 and p.status in (Status.REQUESTED, Status.SUBMITTING)
    unwatched = r.code in (flow.EXIT_NOT_PROTECTED, flow.EXIT_UNWATCHED) or waiting
    return Entry.of(p, sent_by=r.sent_by, watched=not unwatched, note=r.note)


def _duplicate(first: Pending, key: str) -> Entry:
    note = f"key {key!r} was used by entry {first.pending_id} already: nothing was sent"
    return Entry.of(first, duplicate=True, note=note)


def _order(
    symbol: str, side: str | Side, quantity: Number, *, price: Number | None, stop_loss: Number,
    take_profit: Number | None, position_side: str | None,
) -> Order:  # fmt: skip
    side_text = side.value.lower() if isinstance(side, Side) else str(side).lower()
    if side_text not in ("buy", "sell"):
        raise EntryRefused("side", f"side {side!r} is not buy or sell")
    return Order(
        _symbol(symbol), side_text, _decimal("quantity", quantity),
        None if price is None else _decimal("price", price), _decimal("stop_loss", stop_loss),
        None if take_profit is None else _decimal("take_profit", take_profit), position_side,
    )  # fmt: skip


def _trail(trail: Number | None, activate: Number | None) -> Trail | None:
    if trail is None:
        if activate is not None:
            raise EntryRefused("activate", "activate is the trailing stop's: give trail with it")
        return None
    return Trail(_decimal("trail", trail), None if activate is None else _decimal("activate", activate))


def _symbol(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol:
        raise EntryRefused("symbol", f"symbol {symbol!r} must be a non-empty string")
    return symbol.upper()


def _decimal(name: str, value: object) -> Decimal:
    """A positive, finite Decimal; a float is refused, since money must be exact."""
    if isinstance(value, float | bool):
        kind = type(value).__name__
        raise EntryRefused(name, f"{name} {value!r} is a {kind}: give a Decimal or a string")
    if isinstance(value, str):
        try:
            return positive(name, value)
        except NotANumber as err:
            raise EntryRefused(name, str(err)) from None
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise EntryRefused(name, f"{name} {shown(repr(value))} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise EntryRefused(name, f"{name} {shown(str(number))} must be a positive number")
    return number
