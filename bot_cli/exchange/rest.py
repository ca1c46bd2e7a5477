"""BinanceRest: the Binance USDⓈ-M REST venue over one httpx.AsyncClient.

Rules kept here (reference §2, §6, §7, §8):

* SIGNED requests carry every parameter in the query string and no body; ``recvWindow``
  and ``timestamp`` are appended, exactly that encoded string is signed, and
  ``signature`` goes last.
* A request whose outcome is unknown (read timeout, dropped connection, -1006, -1007,
  503 "Unknown error") raises ``OutcomeUnknown`` and is NEVER resent: the caller
  resolves it by querying the client id. Only GETs are retried, once, on transport errors.
* -1021 (clock skew, not executed): resync the clock, resend once with a new timestamp
  and the same client id.
* Transient trouble that definitely did not execute (-1008, 503 "Service Unavailable.",
  no connection made) raises ``Unavailable``: send again after ``retry_after``.
* 429/418 raise ``RateLimited``; after a 418 nothing is sent until the ban ends.
* Nothing here sleeps: a throttled read near 90% of the minute's weight (the limit
  exchangeInfo states, ``limits``) raises ``WeightThrottled`` at once (retry_after = seconds to
  the next minute). Order sends and cancels are never throttled here; the account's new-order
  budget (``order_room``, from the X-MBX-ORDER-COUNT-* headers and exchangeInfo's ORDERS
  limits) is what the daemon schedules them by. A -1015 without Retry-After waits until
  the order window rolls over.
* Error messages never contain the API key, the secret or a signature.
* Every request is built in ``requests`` (parameters, their order, the hedge/one-way rules,
  the refusals raised before sending), the same values ``bot recover --dry-run`` prints:
  what is shown is what is sent. The endpoint table lives in ``endpoints`` (no listenKey
  DELETE, on purpose); reading a reply (outcome, code, body, redaction) lives in ``replies``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from http import HTTPStatus

import httpx

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.model import AlgoReport, ClientId, OrderReport
from bot_cli.exchange import requests as rq
from bot_cli.exchange import wire
from bot_cli.exchange.endpoints import Endpoint, Security
from bot_cli.exchange.errors import RETRY_AFTER_S, Outcome, to_venue_error
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.limits import OrderBudget, WeightBudget, weight_per_minute
from bot_cli.exchange.replies import UNREADABLE, parse, read, redact, retry_after
from bot_cli.exchange.requests import Request
from bot_cli.exchange.signing import encode_params, sign
from bot_cli.venue import (
    OutcomeUnknown,
    Positions,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
    WeightThrottled,
)


__all__ = ["BinanceRest"]

# httpcore runs `import sniffio` on every request; with sniffio not installed each run is a failed
# search of sys.path (a tenth of a request's CPU in a burst). Marking it absent makes it fail at once.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]  # None: "not importable" (the import system's rule)

UNREACHABLE_RETRY_S = 1.0  # nothing was sent: a short wait, as for 503 "Service Unavailable."
TOO_MANY_ORDERS = -1015
_ORDER_COUNT_HEADERS = (("X-MBX-ORDER-COUNT-10S", 10_000), ("X-MBX-ORDER-COUNT-1M", 60_000))
_MAX_MESSAGE = 300
# Raised before a single byte reached the exchange: not executed, and worth another try.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Params = Sequence[tuple[str, str]]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceRest:
    """The Binance USDⓈ-M REST API as a ``bot_cli.venue.Venue``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        recv_window_ms: int = 5000,
        client: httpx.AsyncClient | None = None,
        clock_ms: Callable[[], int] = _wall_ms,
        timeout_s: float = 10.0,
        hedge_mode: bool = False,
        weight_limit: int | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._key, self._secret = api_key, api_secret
        self._recv_window_ms = recv_window_ms
        self.last_signed_ms: int | None = None
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._clock_ms = clock_ms
        self._timeout = httpx.Timeout(timeout_s)
        self.hedge_mode = hedge_mode
        self.time_offset_ms = 0  # server time minus local clock
        self.weight = WeightBudget(weight_limit)  # the limit: exchangeInfo's (load_limits)
        self.orders = OrderBudget()  # the account's new orders per window (load_limits)
        self.calls = 0  # requests handed to the transport
        self._banned_until_ms = 0  # local clock; set by a 418
        self._reads_held_until_ms = 0  # local clock; set by a 429: no read before it (Retry-After)

    @property
    def used_weight(self) -> int:
        """The exchange's count of this minute's request weight (X-MBX-USED-WEIGHT-1M)."""
        return self.weight.used

    @property
    def weight_spent(self) -> int:
        """The request weight of every answered request this client sent."""
        return self.weight.spent

    def order_room(self) -> int | None:
        """New orders that may be sent now without meeting -1015 (None: no limit known)."""
        return self.orders.room(self._server_ms())

    def order_wait_s(self) -> float:
        """Seconds until the fullest order window rolls over."""
        return self.orders.wait_s(self._server_ms())

    def order_reserve(self) -> int:
        """The last slots of an order window kept for stop-losses and closes."""
        return self.orders.reserve()

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    # --- Venue ---------------------------------------------------------------------

    async def place_entry(self, cmd: PlaceEntry) -> OrderReport:
        """POST /fapi/v1/order: the LIMIT or MARKET entry (ACK answer)."""
        what = f"new order {cmd.client_id}"
        body = await self._call(rq.new_entry(cmd, self.hedge_mode), what)
        return parse(wire.parse_order, body, what)

    async def place_protection(self, cmd: PlaceProtection) -> AlgoReport:
        """POST /fapi/v1/algoOrder: a CONDITIONAL STOP_MARKET (SL) or TAKE_PROFIT_MARKET (TP)."""
        what = f"new algo order {cmd.client_id}"
        body = await self._call(rq.new_protection(cmd, self.hedge_mode), what)
        return parse(wire.parse_algo, body, what)

    async def close_position(self, cmd: ClosePosition) -> OrderReport:
        """POST /fapi/v1/order: a reduce-only MARKET order (positionSide in hedge mode)."""
        what = f"close order {cmd.client_id}"
        body = await self._call(rq.close(cmd, self.hedge_mode), what)
        return parse(wire.parse_order, body, what)

    async def cancel_protection(self, client_id: ClientId) -> None:
        """DELETE /fapi/v1/algoOrder; NotFound (-2011/-2013) if it is no longer open."""
        what = f"cancel algo order {client_id}"
        parse(wire.parse_cancel_algo, await self._call(rq.cancel_algo(client_id), what), what)

    async def cancel_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        """DELETE /fapi/v1/order; the answer holds the final executedQty. NotFound (-2011)
        if it is no longer open: query it instead."""
        what = f"cancel order {client_id}"
        return parse(wire.parse_order, await self._call(rq.cancel_order(symbol, client_id), what), what)

    async def query_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        what = f"query order {client_id}"
        return parse(wire.parse_order, await self._call(rq.query_order(symbol, client_id), what), what)

    async def query_algo(self, client_id: ClientId) -> AlgoReport:
        what = f"query algo order {client_id}"
        return parse(wire.parse_algo, await self._call(rq.query_algo(client_id), what), what)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """GET /fapi/v1/openOrders: weight 1 for one symbol, 40 for all."""
        what = "open orders" if symbol is None else f"open orders of {symbol}"
        return parse(wire.parse_orders, await self._call(rq.open_orders(symbol), what), what)

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]:
        """GET /fapi/v1/openAlgoOrders: weight 1 for one symbol, 40 for all."""
        what = "open algo orders" if symbol is None else f"open algo orders of {symbol}"
        return parse(wire.parse_algos, await self._call(rq.open_algo_orders(symbol), what), what)

    async def positions(self) -> Positions:
        body = await self._call(rq.position_risk(), "position risk")
        return parse(wire.parse_position_risk, body, "position risk")

    async def mark_price(self, symbol: str) -> Decimal:
        """GET /fapi/v1/premiumIndex?symbol=: the price our SL/TP triggers watch."""
        what = f"mark price of {symbol}"
        mark = parse(wire.parse_premium_index, await self._call(rq.mark_price(symbol), what), what)
        if mark.symbol != symbol:
            raise OutcomeUnknown(f"{what}: the answer is for {mark.symbol}")
        return mark.price

    # --- beyond the Venue protocol -------------------------------------------------

    async def exchange_info(self) -> dict[str, SymbolFilters]:
        """The filters of every symbol (and the rate limits, taken in as load_limits does)."""
        body = await self._call(rq.exchange_info(), "exchange info")
        self._take_limits(body)
        return parse(wire.parse_exchange_info, body, "exchange info")

    async def load_limits(self) -> list[wire.RateLimit]:
        """Read exchangeInfo.rateLimits; the minute's request weight limit is throttled on."""
        return self._take_limits(await self._call(rq.exchange_info(), "exchange info"))

    def _take_limits(self, body: object) -> list[wire.RateLimit]:
        limits = parse(wire.parse_rate_limits, body, "exchange info rate limits")
        self.weight.limit = weight_per_minute(limits) or self.weight.limit
        self.orders.load(limits)
        return limits

    async def position_mode(self) -> bool:
        """True if the account is in Hedge Mode (weight 30: call it once at startup)."""
        body = await self._call(rq.position_mode(), "position mode")
        return parse(wire.parse_position_mode, body, "position mode")

    async def user_trades(self, symbol: str, order_id: int) -> list[wire.UserTrade]:
        what = f"user trades of {symbol} order {order_id}"
        return parse(wire.parse_user_trades, await self._call(rq.user_trades(symbol, order_id), what), what)

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> int:
        """Arm (or renew) the symbol's dead-man switch; 0 turns it off. Returns the countdown set."""
        what = f"countdown of {symbol}"
        body = await self._call(rq.countdown_cancel_all(symbol, countdown_ms), what)
        answered, countdown = parse(wire.parse_countdown, body, what)
        if answered != symbol:
            raise OutcomeUnknown(f"{what}: the answer is for {answered}")
        return countdown

    async def send(self, req: Request, what: str) -> object:
        """Any request built in ``exchange.requests`` (`bot probe`'s); the accepted body, raw."""
        return await self._call(req, what)

    async def new_listen_key(self) -> str:
        """POST /fapi/v1/listenKey: the account's key (the active one if it exists)."""
        body = await self._call(rq.new_listen_key(), "new listenKey")
        return parse(wire.parse_listen_key, body, "new listenKey")

    async def keepalive_listen_key(self) -> None:
        """PUT /fapi/v1/listenKey; NotFound (-1125) means: create a new key."""
        await self._call(rq.keepalive_listen_key(), "listenKey keepalive")

    async def sync_time(self) -> None:
        """Set the clock offset from GET /fapi/v1/time (midpoint of the round trip)."""
        before = self._clock_ms()
        body = await self._call(rq.server_time(), "server time")
        after = self._clock_ms()
        server = parse(wire.parse_server_time, body, "server time")
        self.time_offset_ms = server - (before + after) // 2

    def signed_query(self, params: Params) -> str:
        """The exact query string a SIGNED request sends now, signature last."""
        self.last_signed_ms = self._clock_ms()
        timestamp = self.last_signed_ms + self.time_offset_ms
        full = [*params, ("recvWindow", str(self._recv_window_ms)), ("timestamp", str(timestamp))]
        payload = encode_params(full)
        return f"{payload}&signature={sign(self._secret, payload)}"

    # --- one request ---------------------------------------------------------------

    async def _call(self, req: Request, what: str) -> object:
        """Send, resend once after -1021, and return the body of an accepted answer.

        A failure of a signed request carries the timestamp and recvWindow actually sent
        (after a resync, the second send's), which bound when it could still land."""
        try:
            return await self._call_once(req, what)
        except VenueError as err:
            if req.endpoint.security is Security.SIGNED and self.last_signed_ms is not None:
                err.sent_at_ms, err.recv_window_ms = self.last_signed_ms, self._recv_window_ms
            raise

    async def _call_once(self, req: Request, what: str) -> object:
        response = await self._exchange(req, what)
        outcome, code, msg, body = read(response)
        if outcome is Outcome.CLOCK_SKEW and req.endpoint.security is Security.SIGNED:
            await self._resync(what)
            response = await self._exchange(req, what)
            outcome, code, msg, body = read(response)
        if outcome is Outcome.ACCEPTED:
            if body is UNREADABLE:
                raise OutcomeUnknown(f"{what}: HTTP {response.status_code} with an unreadable body")
            return body
        raise self._error(outcome, code, msg, response, what)

    async def _resync(self, what: str) -> None:
        """Resync after -1021; if that fails the request is still definitely not executed."""
        try:
            await self.sync_time()
        except VenueError as exc:
            text = f"{what}: clock skew (-1021) and the time resync failed: {exc.message}"
            raise Rejected(text, -1021) from None

    async def _exchange(self, req: Request, what: str) -> httpx.Response:
        """One HTTP exchange, transport failures mapped; GETs get one more try."""
        ep = req.endpoint
        self._refuse_if_banned(what)
        self._refuse_if_held(ep, what)
        self._throttle(ep, what)
        failure: VenueError | None = None
        for _ in range(2 if ep.method == "GET" else 1):
            request = self._build(req)  # a fresh timestamp per attempt
            self.calls += 1
            if ep.counts_order:
                self.orders.sent(self._server_ms())
            try:
                response = await self._client.send(request)
            except _NEVER_SENT as exc:
                text = f"{what}: not sent, exchange unreachable ({type(exc).__name__})"
                failure = Unavailable(text, 0, UNREACHABLE_RETRY_S)
            except httpx.UnsupportedProtocol as exc:  # a bad base URL: no retry will fix it
                failure = Rejected(f"{what}: not sent ({type(exc).__name__})")
            except httpx.TransportError as exc:
                failure = OutcomeUnknown(f"{what}: no answer ({type(exc).__name__})")
            else:
                self._count(ep, response)
                return response
        assert failure is not None
        raise failure

    def _count(self, ep: Endpoint, response: httpx.Response) -> None:
        now = self._server_ms()
        self.weight.count(ep.weight, response.headers.get("X-MBX-USED-WEIGHT-1M", ""), now)
        if ep.counts_order:
            for name, span in _ORDER_COUNT_HEADERS:
                self.orders.counted(span, response.headers.get(name, ""), now)

    def _build(self, req: Request) -> httpx.Request:
        """The HTTP request: exactly ``req.query``, signed where the endpoint is SIGNED."""
        ep = req.endpoint
        query = self.signed_query(req.params) if ep.security is Security.SIGNED else req.query
        url = f"{self._base_url}{ep.path}" + (f"?{query}" if query else "")
        headers = {} if ep.security is Security.NONE else {"X-MBX-APIKEY": self._key}
        return self._client.build_request(ep.method, url, headers=headers, timeout=self._timeout)

    def _server_ms(self) -> int:
        """The exchange's clock, as far as the last sync says."""
        return self._clock_ms() + self.time_offset_ms

    def _throttle(self, ep: Endpoint, what: str) -> None:
        """Near the weight limit, refuse a read at once (WeightThrottled; never sleep: the caller
        decides what waits); orders and cancels always pass."""
        left_s = self.weight.refusal(ep.weight, self._server_ms()) if ep.throttled else None
        if left_s is not None:
            used, limit = self.weight.used, self.weight.limit
            raise WeightThrottled(f"{what}: not sent, {used} of {limit} weight used this minute", -1003, left_s)

    def _refuse_if_banned(self, what: str) -> None:
        left_ms = self._banned_until_ms - self._clock_ms()
        if left_ms > 0:
            text = f"{what}: not sent, IP banned for {left_ms / 1000:.0f} s more"
            raise RateLimited(text, -1003, left_ms / 1000)

    def _refuse_if_held(self, ep: Endpoint, what: str) -> None:
        """After a 429 no read goes out before its Retry-After, whichever task asks (going on
        past 429s earns a 418 ban); order sends and cancels are not held here."""
        left_ms = self._reads_held_until_ms - self._clock_ms()
        if ep.throttled and left_ms > 0:
            raise RateLimited(f"{what}: not sent, the exchange asked to wait {left_ms / 1000:.1f} s more (429)",
                              -1003, left_ms / 1000)  # fmt: skip

    def _error(
        self, outcome: Outcome, code: int | None, msg: str, response: httpx.Response, what: str
    ) -> VenueError:
        status = response.status_code
        coded = f" code {code}" if code is not None else ""
        # Redact before cutting: a cut through a secret would hide it from the redaction.
        text = redact(f"{what}: HTTP {status}{coded}: {msg}", (self._key, self._secret))[:_MAX_MESSAGE]
        if outcome not in RETRY_AFTER_S:
            return to_venue_error(outcome, code, text)
        default_s = RETRY_AFTER_S[outcome]
        if code == TOO_MANY_ORDERS:  # the order window is full until it rolls over
            self.orders.exhausted(self._server_ms())
            default_s = max(self.orders.wait_s(self._server_ms()), UNREACHABLE_RETRY_S)
        wait_s = retry_after(response, msg, default_s, self._server_ms())
        if status == HTTPStatus.IM_A_TEAPOT:  # an IP ban
            self._banned_until_ms = self._clock_ms() + int(wait_s * 1000)
        elif status == HTTPStatus.TOO_MANY_REQUESTS and code != TOO_MANY_ORDERS:
            self._reads_held_until_ms = max(self._reads_held_until_ms, self._clock_ms() + int(wait_s * 1000))
        return to_venue_error(outcome, code, text, retry_after=wait_s)
