"""``POST /signal``: a signal becomes a REQUESTED entry, durable before the answer.

Answers (JSON, one line each; ``error`` names the ``field`` at fault where there is one):

- 202 ``{"id", "entry_client_id", "status": "REQUESTED"}``: fsync'd; the daemon sends it.
- 409 ``{"id", "error"}``: the key was used before, by entry ``id``; nothing new was written.
- 400 bad JSON, 401 bad or missing auth, 413 body too big, 422 a field is wrong (unknown
  symbol, filters violated, a side that would net against an entry's share, ``limit``: an
  order it needs would not fit the account's open-order limits), 429 too many signals, 503 the
  daemon is not connected to the exchange or the venue cannot be read: nothing was written or
  sent.

A request is authenticated before it counts: only signed signals take from
``max_per_minute``, so nobody without the secret can use up the signals' budget. Requests that
fail authentication have a budget of their own per source address (429 beyond it).

Admission (netting and the account's limits, ``ops.checks.refuse``) and the key's claim run
under one hold of the admission lock, as `bot enter` and the API admit theirs.

``GET /health``: 200 ``{"connected": true}`` or 503 with the reason (no auth; says nothing
about entries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot_cli.api._types import daemon_connection
from bot_cli.api.keys import Claim, Keys
from bot_cli.core.admission import foreign
from bot_cli.core.events import OperatorAmend
from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, Pending
from bot_cli.errors import BotError
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.inbox.amend import levels_for, parse_amend
from bot_cli.inbox.guard import RateLimit, Strangers, body_auth, header_auth, read_body
from bot_cli.inbox.signals import Refused, Signal, parse_json, parse_signal, refusal, resolve
from bot_cli.ops.checks import Account, EntryRefused, Market, admitting, checked_spec, journal_entries, refuse
from bot_cli.ops.exit import amend_refusal
from bot_cli.ops.journal import decode_record
from bot_cli.ops.market import daemon_account, foreign_open
from bot_cli.state_store import PendingEntryStore, StoreError
from bot_cli.store import requests
from bot_cli.venue import RateLimited, VenueError


log = logging.getLogger("bot_cli.inbox")
FILTERS_TTL_S = 300.0  # filters change rarely; an unknown symbol or a filter refusal re-reads them sooner
MISSING_RETRY_S = 30.0
FOREIGN_KEEP_S = 60.0  # a count of our own (40 weight) when the daemon's heartbeat has none
Connected = Callable[[], bool]


class FilterCache:
    """The venue's filters, read again every few minutes (Binance's list is large), or sooner
    for a symbol not in them or after a refusal by a filter a newer list could lift; the mark
    price is read for every signal. The account's orders that no entry holds: the daemon's
    count of conditional ones (else one read of our own, kept a minute), and for a limit entry
    the symbol's open orders."""

    def __init__(self, market: Market, venue_name: str) -> None:
        self.market, self.venue_name = market, venue_name
        self._filters: dict[str, SymbolFilters] = {}
        self._at = -FILTERS_TTL_S
        self._foreign: tuple[float, int] | None = None  # (when, count) of our own read

    def refreshable(self) -> bool:
        return time.monotonic() - self._at > MISSING_RETRY_S

    async def read(self, symbol: str, *, again: bool = False) -> tuple[SymbolFilters, Decimal]:
        """The symbol's filters (read again now with ``again``) and its mark price."""
        age = time.monotonic() - self._at
        try:
            if age > FILTERS_TTL_S or ((again or symbol not in self._filters) and age > MISSING_RETRY_S):
                self._filters, self._at = dict(await self.market.exchange_info()), time.monotonic()
            filters = self._filters.get(symbol)
            if filters is None:
                why = f"symbol {symbol} is not traded on the {self.venue_name} venue"
                raise EntryRefused("symbol", why)
            return filters, await self.market.mark_price(symbol)
        except VenueError as err:
            raise BotError(_unread(f"{symbol}'s filters and mark price", err)) from None

    async def account(self, state_dir: Path, spec: EntrySpec, filters: SymbolFilters, live: frozenset[str]) -> Account:
        """What admission counts beside the journal (``live``: the journal's entry ids)."""
        try:
            counted = (await asyncio.to_thread(daemon_account, state_dir)).foreign_conditional
            if counted is None:
                counted = await self._own_count(live)
            opened = await foreign_open(self.market, spec, filters, lambda: live)
        except VenueError as err:
            raise BotError(_unread("the account's open orders", err)) from None
        return Account(counted, opened, filters.max_num_orders)

    async def _own_count(self, live: frozenset[str]) -> int:
        if self._foreign is None or time.monotonic() - self._foreign[0] > FOREIGN_KEEP_S:
            self._foreign = (time.monotonic(), foreign(await self.market.open_algo_orders(), live))
        return self._foreign[1]


def _unread(what: str, err: VenueError) -> str:
    if isinstance(err, RateLimited):  # reachable: the minute's request weight is spent
        return f"cannot read {what} now: the request weight is spent ({err}); retry in {err.retry_after:.0f} s"
    return f"cannot read {what} ({err})"


class Inbox:
    """The handler's state: the journal, the secret, the limits, the daemon's connection."""

    def __init__(
        self, state_dir: Path, market: Market, secret: bytes, *, venue_name: str = "",
        recv_window_ms: int = 5000, max_body_bytes: int = 16_384, max_per_minute: int = 120,
        connected: Connected | None = None, on_accepted: Callable[[str], None] | None = None,
        stacking: bool = False, breakeven_fee_pct: Decimal = Decimal("0.1"),
    ) -> None:  # fmt: skip
        self.state_dir, self.secret, self.max_body = state_dir, secret, max_body_bytes
        self.stacking, self.fee_pct = stacking, breakeven_fee_pct
        self.recv_window_ms, self.connected = recv_window_ms, connected
        self.on_accepted = on_accepted
        self.store = PendingEntryStore(state_dir)
        self.keys = Keys(state_dir)
        self.filters = FilterCache(market, venue_name)
        self.limit = RateLimit(max_per_minute)
        self.strangers = Strangers(max_per_minute)

    def close(self) -> None:
        self.keys.close()
        self.store.close()

    async def post_signal(self, request: Request) -> JSONResponse:
        try:
            c = await self._accept(request)
        except Refused as r:
            log.info("inbox: signal refused (%d): %s", r.status, r.message)
            body = {"error": r.message, **({"field": r.field} if r.field else {}), **r.extra}
            return JSONResponse(body, r.status)
        pid = c.pending.pending_id
        if not c.new:
            log.info("inbox: key already used by entry %s: nothing new written", pid)
            return JSONResponse({"id": pid, "error": _used(pid)}, 409)
        log.info("inbox: signal accepted as entry %s (REQUESTED)", pid)
        if self.on_accepted is not None:
            self.on_accepted(pid)  # e.g. wake the daemon's journal look now, not at its next tick
        body = {"id": pid, "entry_client_id": client_id(pid, Leg.ENTRY), "status": "REQUESTED"}
        return JSONResponse(body, 202)

    async def post_amend(self, request: Request) -> JSONResponse:
        """Move an entry's levels (``inbox.amend``): checked, then a request for the daemon."""
        try:
            pid, levels = await self._amend(request)
        except Refused as r:
            log.info("inbox: amend refused (%d): %s", r.status, r.message)
            return JSONResponse({"error": r.message, **({"field": r.field} if r.field else {})}, r.status)
        params = requests.amend_params(levels)
        log.info("inbox: amend of %s accepted: %s", pid, ", ".join(f"{k} {v}" for k, v in params.items()))
        if self.on_accepted is not None:
            self.on_accepted(pid)
        return JSONResponse({"id": pid, "status": "REQUESTED", **params}, 202)

    async def _amend(self, request: Request) -> tuple[str, OperatorAmend]:
        signal = parse_amend(await self._admitted(request))
        if (why := self._not_connected()) is not None:
            raise Refused(503, f"{why}: amend refused, nothing written; retry later")
        p = await asyncio.to_thread(_live_entry, self.store, signal.pending_id)
        if p is None:
            raise Refused(404, f"no pending entry {signal.pending_id}: see `bot pending list`", "id")
        if (refused := amend_refusal(p)) is not None:
            raise Refused(409, refused, "id")
        filters, mark = await self._read(p.spec.symbol)
        levels = levels_for(signal, p, filters, mark, self.fee_pct)
        await asyncio.to_thread(requests.put, self.state_dir, p.pending_id, "amend", requests.amend_params(levels))
        return p.pending_id, levels

    async def health(self, _: Request) -> JSONResponse:
        why = self._not_connected()
        if why is not None:
            return JSONResponse({"connected": False, "error": why}, 503)
        return JSONResponse({"connected": True})

    async def _accept(self, request: Request) -> Claim:
        """Every check in the order of the answers' precedence; the claim is the last step."""
        signal = parse_signal(await self._admitted(request))
        first = await asyncio.to_thread(self.keys.lookup, self.store, signal.key)
        if first is not None:  # a retry of a post whose answer was lost, or a repeated alert
            raise Refused(409, _used(first.pending_id), "key", id=first.pending_id)
        if (why := self._not_connected()) is not None:
            raise Refused(503, f"{why}: signal refused, nothing written; retry later")
        spec, filters = await self._checked(signal)
        live = await asyncio.to_thread(lambda: frozenset(self.store.load_all()))
        try:
            account = await self.filters.account(self.state_dir, spec, filters, live)
        except BotError as err:
            raise Refused(503, f"{err}; nothing written") from None
        try:
            return await asyncio.to_thread(self._admit_and_claim, signal.key, spec, account)
        except EntryRefused as err:
            raise Refused(422, f"{err}; nothing written", err.field) from None

    async def _admitted(self, request: Request) -> dict[str, Any]:
        """The body's JSON once the request proved the secret (a stranger's refusals counted per
        address) and fits the minute's budget of signals; 400/401/413/429 otherwise."""
        source = request.client.host if request.client is not None else "unknown"
        try:
            obj = self._authenticated(request, await read_body(request, self.max_body))
        except Refused as r:
            if not self.strangers.take(source):
                raise Refused(429, f"too many unauthenticated requests from {source}; retry later") from None
            raise r from None
        if not self.limit.take():
            raise Refused(429, "too many signals: inbox.max_per_minute reached; retry later")
        return obj

    def _authenticated(self, request: Request, body: bytes) -> dict[str, Any]:
        """The body's JSON, once the request proved it has the secret; 400/401 otherwise."""
        by_header = header_auth(request.headers, body, self.secret)
        if by_header is False:
            raise Refused(401, "authentication failed: X-Bot-Signature or X-Bot-Secret is wrong")
        obj = parse_json(body)
        if by_header is None and not body_auth(obj, self.secret):
            raise Refused(401, "authentication failed: no X-Bot-Signature, X-Bot-Secret or secret")
        return obj

    def _admit_and_claim(self, key: str, spec: EntrySpec, account: Account) -> Claim:
        """Netting and the account's limits against the journal, then the key's claim: one hold
        of the admission lock (in a worker thread: it may wait for another process)."""
        with admitting(self.state_dir):
            if (first := self.keys.lookup(self.store, key)) is not None:
                return Claim(first, new=False)  # a signal sent again: its entry, not a refusal
            refuse(spec, journal_entries(self.store), account, stacking=self.stacking)
            now = time.time_ns() // 1_000_000
            return self.keys.claim(self.store, key, spec, now, self.recv_window_ms)

    async def _checked(self, signal: Signal) -> tuple[EntrySpec, SymbolFilters]:
        """The signal as an entry that passes the filters; a refusal by a filter a newer
        exchangeInfo could lift is checked once more against one read now."""
        filters, mark = await self._read(signal.symbol)
        try:
            return self._spec(signal, filters, mark), filters
        except Refused as refused:
            if not (refused.by_filter and self.filters.refreshable()):
                raise
        filters, mark = await self._read(signal.symbol, again=True)
        return self._spec(signal, filters, mark), filters

    async def _read(self, symbol: str, again: bool = False) -> tuple[SymbolFilters, Decimal]:
        try:
            return await self.filters.read(symbol, again=again)
        except EntryRefused as err:
            raise Refused(422, str(err), err.field) from None
        except BotError as err:
            raise Refused(503, f"{err}; nothing written") from None

    def _spec(self, signal: Signal, filters: SymbolFilters, mark: Decimal) -> EntrySpec:
        order = resolve(signal, filters, mark)
        try:
            return checked_spec(order, filters, mark, self.filters.market.hedge_mode)
        except EntryRefused as err:
            raise refusal(signal, order, err) from None

    def _not_connected(self) -> str | None:
        if self.connected is None:
            return daemon_connection(self.state_dir)
        return None if self.connected() else "the daemon is not connected to the exchange"


def _live_entry(store: PendingEntryStore, pid: str) -> Pending | None:
    record = store.load_all().get(pid)
    p = None if record is None else decode_record(pid, record)
    return p if isinstance(p, Pending) else None


def _used(pid: str) -> str:
    return f"this key was used by entry {pid} already: nothing new was written or sent"


def create_app(inbox: Inbox) -> Starlette:
    """The ASGI app; StoreError (the state dir failing) answers 503, nothing acknowledged."""

    async def store_failed(_: Request, exc: Exception) -> JSONResponse:
        log.error("inbox: the state dir failed: %s", exc)
        return JSONResponse({"error": f"not saved ({exc}); retry later"}, 503)

    return Starlette(
        routes=[
            Route("/signal", inbox.post_signal, methods=["POST"]),
            Route("/amend", inbox.post_amend, methods=["POST"]),
            Route("/health", inbox.health, methods=["GET"]),
        ],
        exception_handlers={StoreError: store_failed, OSError: store_failed},
    )
