"""``POST /signal``: a signal becomes a REQUESTED entry, durable before the answer.

Answers (JSON, one line each; ``error`` names the ``field`` at fault where there is one):

- 202 ``{"id", "entry_client_id", "status": "REQUESTED"}``: fsync'd; the daemon sends it.
- 409 ``{"id", "error"}``: the key was used before, by entry ``id``; nothing new was written.
- 400 bad JSON, 401 bad or missing auth, 413 body too big, 422 a field is wrong (unknown
  symbol, filters violated, ...), 429 too many signals, 503 the daemon is not connected to
  the exchange or the venue cannot be read: nothing was written or sent.

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

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot_cli.api._types import daemon_connection
from bot_cli.api.keys import Claim, Keys
from bot_cli.core.checks import Filters
from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg
from bot_cli.errors import BotError
from bot_cli.inbox.guard import RateLimit, body_auth, header_auth, read_body
from bot_cli.inbox.signals import Refused, Signal, parse_json, parse_signal, refusal, resolve
from bot_cli.ops.checks import EntryRefused, Market, checked_spec, refuse_netting
from bot_cli.state_store import PendingEntryStore, StoreError
from bot_cli.venue import VenueError


log = logging.getLogger("bot_cli.inbox")
FILTERS_TTL_S = 300.0  # filters change rarely; an unknown symbol re-reads them sooner
MISSING_RETRY_S = 30.0
Connected = Callable[[], bool]


class FilterCache:
    """The venue's filters, read again every few minutes (Binance's list is large), or sooner
    for a symbol not in them; the mark price is read for every signal."""

    def __init__(self, market: Market, venue_name: str) -> None:
        self.market, self.venue_name = market, venue_name
        self._filters: dict[str, Filters] = {}
        self._at = -FILTERS_TTL_S

    async def read(self, symbol: str) -> tuple[Filters, Decimal]:
        age = time.monotonic() - self._at
        try:
            if age > FILTERS_TTL_S or (symbol not in self._filters and age > MISSING_RETRY_S):
                self._filters, self._at = dict(await self.market.exchange_info()), time.monotonic()
            filters = self._filters.get(symbol)
            if filters is None:
                why = f"symbol {symbol} is not traded on the {self.venue_name} venue"
                raise EntryRefused("symbol", why)
            return filters, await self.market.mark_price(symbol)
        except VenueError as err:
            raise BotError(f"cannot read {symbol}'s filters and mark price ({err})") from None


class Inbox:
    """The handler's state: the journal, the secret, the limits, the daemon's connection."""

    def __init__(
        self, state_dir: Path, market: Market, secret: bytes, *, venue_name: str = "",
        recv_window_ms: int = 5000, max_body_bytes: int = 16_384, max_per_minute: int = 120,
        connected: Connected | None = None, on_accepted: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.state_dir, self.secret, self.max_body = state_dir, secret, max_body_bytes
        self.recv_window_ms, self.connected = recv_window_ms, connected
        self.on_accepted = on_accepted
        self.store = PendingEntryStore(state_dir)
        self.keys = Keys(state_dir)
        self.filters = FilterCache(market, venue_name)
        self.limit = RateLimit(max_per_minute)

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

    async def health(self, _: Request) -> JSONResponse:
        why = self._not_connected()
        if why is not None:
            return JSONResponse({"connected": False, "error": why}, 503)
        return JSONResponse({"connected": True})

    async def _accept(self, request: Request) -> Claim:
        """Every check in the order of the answers' precedence; the claim is the last step."""
        if not self.limit.take():
            raise Refused(429, "too many signals: inbox.max_per_minute reached; retry later")
        body = await read_body(request, self.max_body)
        by_header = header_auth(request.headers, body, self.secret)
        if by_header is False:
            raise Refused(401, "authentication failed: X-Bot-Signature or X-Bot-Secret is wrong")
        obj = parse_json(body)
        if by_header is None and not body_auth(obj, self.secret):
            raise Refused(401, "authentication failed: no X-Bot-Signature, X-Bot-Secret or secret")
        signal = parse_signal(obj)
        first = await asyncio.to_thread(self.keys.lookup, self.store, signal.key)
        if first is not None:  # a retry of a post whose answer was lost, or a repeated alert
            raise Refused(409, _used(first.pending_id), "key", id=first.pending_id)
        if (why := self._not_connected()) is not None:
            raise Refused(503, f"{why}: signal refused, nothing written; retry later")
        spec = await self._checked(signal)
        try:
            await asyncio.to_thread(refuse_netting, self.store, spec)
        except EntryRefused as err:
            raise Refused(422, f"{err}; nothing written", err.field) from None
        now = time.time_ns() // 1_000_000
        window = self.recv_window_ms
        return await asyncio.to_thread(self.keys.claim, self.store, signal.key, spec, now, window)

    async def _checked(self, signal: Signal) -> EntrySpec:
        try:
            filters, mark = await self.filters.read(signal.symbol)
        except EntryRefused as err:
            raise Refused(422, str(err), err.field) from None
        except BotError as err:
            raise Refused(503, f"{err}; nothing written") from None
        order = resolve(signal, filters, mark)
        try:
            return checked_spec(order, filters, mark, self.filters.market.hedge_mode)
        except EntryRefused as err:
            raise refusal(signal, order, err) from None

    def _not_connected(self) -> str | None:
        if self.connected is None:
            return daemon_connection(self.state_dir)
        return None if self.connected() else "the daemon is not connected to the exchange"


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
            Route("/health", inbox.health, methods=["GET"]),
        ],
        exception_handlers={StoreError: store_failed, OSError: store_failed},
    )
