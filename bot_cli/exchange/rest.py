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
* Nothing here sleeps: a throttled read near 90% of the minute's weight raises
  ``RateLimited`` at once (retry_after = seconds to the next minute), so the caller never
  holds its lock while waiting. Order sends and cancels are never throttled.
* Error messages never contain the API key, the secret or a signature.
* The endpoint table lives in ``endpoints`` (no listenKey DELETE, on purpose).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar

import httpx

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.model import AlgoReport, ClientId, Leg, OrderReport, OrderType, PositionSide
from bot_cli.exchange import endpoints as api
from bot_cli.exchange import wire
from bot_cli.exchange.endpoints import Endpoint, Security
from bot_cli.exchange.errors import RETRY_AFTER_S, Outcome, classify, to_venue_error
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.signing import encode_params, sign
from bot_cli.venue import (
    OutcomeUnknown,
    Positions,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
)


__all__ = ["BinanceRest"]

WEIGHT_LIMIT = 2400  # IP request weight per minute
THROTTLE_SHARE = 0.9
UNREACHABLE_RETRY_S = 1.0  # nothing was sent: a short wait, as for 503 "Service Unavailable."
_T = TypeVar("_T")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_BANNED_UNTIL = re.compile(r"banned until (\d{13})")
_MAX_MESSAGE = 300
# Raised before a single byte reached the exchange: not executed, and worth another try.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_ALGO_TYPE = {Leg.SL: "STOP_MARKET", Leg.TP: "TAKE_PROFIT_MARKET"}
Params = Sequence[tuple[str, str]]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _num(value: Decimal) -> str:
    """A Decimal as Binance wants it: plain digits, never an exponent."""
    return format(value, "f")


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
        self.used_weight = 0  # last X-MBX-USED-WEIGHT-1M seen, in minute _weight_minute
        self._weight_minute = 0
        self.weight_spent = 0  # sum of the known weights of answered requests
        self.calls = 0  # requests handed to the transport
        self._banned_until_ms = 0  # local clock; set by a 418

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
        params = [("symbol", cmd.symbol), ("side", cmd.side.value)]
        params += [("type", cmd.order_type.value), *self._side(cmd.position_side, what)]
        params.append(("quantity", _num(cmd.quantity)))
        if cmd.order_type is OrderType.LIMIT:
            if cmd.price is None:
                raise Rejected(f"{what}: a LIMIT order needs a price")
            params += [("price", _num(cmd.price)), ("timeInForce", "GTC")]
        params += [("newClientOrderId", cmd.client_id), ("newOrderRespType", "ACK")]
        return _parse(wire.parse_order, await self._call(api.NEW_ORDER, params, what), what)

    async def place_protection(self, cmd: PlaceProtection) -> AlgoReport:
        """POST /fapi/v1/algoOrder: a CONDITIONAL STOP_MARKET (SL) or TAKE_PROFIT_MARKET (TP)."""
        what = f"new algo order {cmd.client_id}"
        if cmd.leg not in _ALGO_TYPE:
            raise Rejected(f"{what}: leg {cmd.leg.name} is not a protection")
        params = [("algoType", "CONDITIONAL"), ("symbol", cmd.symbol), ("side", cmd.side.value)]
        params += self._side(cmd.position_side, what)
        params += [("type", _ALGO_TYPE[cmd.leg]), ("quantity", _num(cmd.quantity))]
        params += [("triggerPrice", _num(cmd.trigger_price)), ("workingType", "MARK_PRICE")]
        params += [*self._reduce_only(), ("clientAlgoId", cmd.client_id)]
        return _parse(wire.parse_algo, await self._call(api.NEW_ALGO, params, what), what)

    async def close_position(self, cmd: ClosePosition) -> OrderReport:
        """POST /fapi/v1/order: a reduce-only MARKET order (positionSide in hedge mode)."""
        what = f"close order {cmd.client_id}"
        params = [("symbol", cmd.symbol), ("side", cmd.side.value), ("type", "MARKET")]
        params += self._side(cmd.position_side, what)
        params += [("quantity", _num(cmd.quantity)), *self._reduce_only()]
        params += [("newClientOrderId", cmd.client_id), ("newOrderRespType", "ACK")]
        return _parse(wire.parse_order, await self._call(api.NEW_ORDER, params, what), what)

    async def cancel_protection(self, client_id: ClientId) -> None:
        """DELETE /fapi/v1/algoOrder; NotFound (-2011/-2013) if it is no longer open."""
        what = f"cancel algo order {client_id}"
        body = await self._call(api.CANCEL_ALGO, [("clientAlgoId", client_id)], what)
        _parse(wire.parse_cancel_algo, body, what)

    async def cancel_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        """DELETE /fapi/v1/order; the answer holds the final executedQty. NotFound (-2011)
        if it is no longer open: query it instead."""
        what = f"cancel order {client_id}"
        params = [("symbol", symbol), ("origClientOrderId", client_id)]
        return _parse(wire.parse_order, await self._call(api.CANCEL_ORDER, params, what), what)

    async def query_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        what = f"query order {client_id}"
        params = [("symbol", symbol), ("origClientOrderId", client_id)]
        return _parse(wire.parse_order, await self._call(api.QUERY_ORDER, params, what), what)

    async def query_algo(self, client_id: ClientId) -> AlgoReport:
        what = f"query algo order {client_id}"
        body = await self._call(api.QUERY_ALGO, [("clientAlgoId", client_id)], what)
        return _parse(wire.parse_algo, body, what)

    async def open_orders(self) -> list[OrderReport]:
        body = await self._call(api.OPEN_ORDERS, [], "open orders")
        return _parse(wire.parse_orders, body, "open orders")

    async def open_algo_orders(self) -> list[AlgoReport]:
        body = await self._call(api.OPEN_ALGOS, [], "open algo orders")
        return _parse(wire.parse_algos, body, "open algo orders")

    async def positions(self) -> Positions:
        body = await self._call(api.POSITION_RISK, [], "position risk")
        return _parse(wire.parse_position_risk, body, "position risk")

    async def mark_price(self, symbol: str) -> Decimal:
        """GET /fapi/v1/premiumIndex?symbol=: the price our SL/TP triggers watch."""
        what = f"mark price of {symbol}"
        body = await self._call(api.MARK_PRICE, [("symbol", symbol)], what)
        mark = _parse(wire.parse_premium_index, body, what)
        if mark.symbol != symbol:
            raise OutcomeUnknown(f"{what}: the answer is for {mark.symbol}")
        return mark.price

    # --- beyond the Venue protocol -------------------------------------------------

    async def exchange_info(self) -> dict[str, SymbolFilters]:
        body = await self._call(api.EXCHANGE_INFO, [], "exchange info")
        return _parse(wire.parse_exchange_info, body, "exchange info")

    async def position_mode(self) -> bool:
        """True if the account is in Hedge Mode (weight 30: call it once at startup)."""
        body = await self._call(api.POSITION_MODE, [], "position mode")
        return _parse(wire.parse_position_mode, body, "position mode")

    async def user_trades(self, symbol: str, order_id: int) -> list[wire.UserTrade]:
        what = f"user trades of {symbol} order {order_id}"
        params = [("symbol", symbol), ("orderId", str(order_id))]
        return _parse(wire.parse_user_trades, await self._call(api.USER_TRADES, params, what), what)

    async def new_listen_key(self) -> str:
        """POST /fapi/v1/listenKey: the account's key (the active one if it exists)."""
        body = await self._call(api.LISTEN_KEY_NEW, [], "new listenKey")
        return _parse(wire.parse_listen_key, body, "new listenKey")

    async def keepalive_listen_key(self) -> None:
        """PUT /fapi/v1/listenKey; NotFound (-1125) means: create a new key."""
        await self._call(api.LISTEN_KEY_KEEPALIVE, [], "listenKey keepalive")

    async def sync_time(self) -> None:
        """Set the clock offset from GET /fapi/v1/time (midpoint of the round trip)."""
        before = self._clock_ms()
        body = await self._call(api.TIME, [], "server time")
        after = self._clock_ms()
        server = _parse(wire.parse_server_time, body, "server time")
        self.time_offset_ms = server - (before + after) // 2

    def signed_query(self, params: Params) -> str:
        """The exact query string a SIGNED request sends now, signature last."""
        self.last_signed_ms = self._clock_ms()
        timestamp = self.last_signed_ms + self.time_offset_ms
        full = [*params, ("recvWindow", str(self._recv_window_ms)), ("timestamp", str(timestamp))]
        payload = encode_params(full)
        return f"{payload}&signature={sign(self._secret, payload)}"

    # --- one request ---------------------------------------------------------------

    async def _call(self, ep: Endpoint, params: Params, what: str) -> object:
        """Send, resend once after -1021, and return the body of an accepted answer.

        A failure of a signed request carries the timestamp and recvWindow actually sent
        (after a resync, the second send's), which bound when it could still land."""
        try:
            return await self._call_once(ep, params, what)
        except VenueError as err:
            if ep.security is Security.SIGNED and self.last_signed_ms is not None:
                err.sent_at_ms, err.recv_window_ms = self.last_signed_ms, self._recv_window_ms
            raise

    async def _call_once(self, ep: Endpoint, params: Params, what: str) -> object:
        response = await self._exchange(ep, params, what)
        outcome, code, msg, body = _read(response)
        if outcome is Outcome.CLOCK_SKEW and ep.security is Security.SIGNED:
            await self._resync(what)
            response = await self._exchange(ep, params, what)
            outcome, code, msg, body = _read(response)
        if outcome is Outcome.ACCEPTED:
            if body is _UNREADABLE:
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

    async def _exchange(self, ep: Endpoint, params: Params, what: str) -> httpx.Response:
        """One HTTP exchange, transport failures mapped; GETs get one more try."""
        self._refuse_if_banned(what)
        self._throttle(ep, what)
        failure: VenueError | None = None
        for _ in range(2 if ep.method == "GET" else 1):
            request = self._build(ep, params)  # a fresh timestamp per attempt
            self.calls += 1
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
                self._account(ep, response)
                return response
        assert failure is not None
        raise failure

    def _build(self, ep: Endpoint, params: Params) -> httpx.Request:
        signed = ep.security is Security.SIGNED
        query = self.signed_query(params) if signed else encode_params(params)
        url = f"{self._base_url}{ep.path}" + (f"?{query}" if query else "")
        headers = {} if ep.security is Security.NONE else {"X-MBX-APIKEY": self._key}
        return self._client.build_request(ep.method, url, headers=headers, timeout=self._timeout)

    def _account(self, ep: Endpoint, response: httpx.Response) -> None:
        self.weight_spent += ep.weight
        if self._minute() != self._weight_minute:
            self.used_weight, self._weight_minute = 0, self._minute()
        used = response.headers.get("X-MBX-USED-WEIGHT-1M", "")
        self.used_weight = int(used) if used.isdigit() else self.used_weight + ep.weight

    def _minute(self) -> int:
        """The current server minute: the window X-MBX-USED-WEIGHT-1M counts in."""
        return (self._clock_ms() + self.time_offset_ms) // 60_000

    def _throttle(self, ep: Endpoint, what: str) -> None:
        """Near the weight limit, refuse a read at once (never sleep: the caller may hold
        the engine lock a protective send waits on); orders and cancels always pass."""
        if not ep.throttled or self._minute() != self._weight_minute:
            return  # the minute that weight was counted in is over
        if self.used_weight + ep.weight <= WEIGHT_LIMIT * THROTTLE_SHARE:
            return
        now = self._clock_ms() + self.time_offset_ms
        left_s = (60_000 - now % 60_000) / 1000
        text = f"{what}: not sent, {self.used_weight} of {WEIGHT_LIMIT} weight used this minute"
        raise RateLimited(text, -1003, left_s)

    def _refuse_if_banned(self, what: str) -> None:
        left_ms = self._banned_until_ms - self._clock_ms()
        if left_ms > 0:
            text = f"{what}: not sent, IP banned for {left_ms / 1000:.0f} s more"
            raise RateLimited(text, -1003, left_ms / 1000)

    def _error(
        self, outcome: Outcome, code: int | None, msg: str, response: httpx.Response, what: str
    ) -> VenueError:
        status = response.status_code
        coded = f" code {code}" if code is not None else ""
        # Redact before cutting: a cut through a secret would hide it from the redaction.
        text = self._redact(f"{what}: HTTP {status}{coded}: {msg}")[:_MAX_MESSAGE]
        if outcome not in RETRY_AFTER_S:
            return to_venue_error(outcome, code, text)
        retry_after = self._retry_after(response, msg, RETRY_AFTER_S[outcome])
        if status == HTTPStatus.IM_A_TEAPOT:  # an IP ban
            self._banned_until_ms = self._clock_ms() + int(retry_after * 1000)
        return to_venue_error(outcome, code, text, retry_after=retry_after)

    def _retry_after(self, response: httpx.Response, msg: str, default: float) -> float:
        """Retry-After if sent (undocumented for fapi), else "banned until <ms>", else default."""
        try:
            seconds = float(response.headers.get("Retry-After", ""))
            if seconds > 0:
                return seconds
        except ValueError:
            pass
        banned = _BANNED_UNTIL.search(msg)
        if banned is not None:
            left_ms = int(banned.group(1)) - (self._clock_ms() + self.time_offset_ms)
            return max(left_ms / 1000, 1.0)
        return default

    def _redact(self, text: str) -> str:
        for secret in (self._key, self._secret):
            if secret:
                text = text.replace(secret, "<redacted>")
        return _HEX64.sub("<redacted>", text)

    def _side(self, side: PositionSide, what: str) -> list[tuple[str, str]]:
        """positionSide: mandatory LONG/SHORT in hedge mode, omitted (BOTH) in one-way mode."""
        if self.hedge_mode:
            if side is PositionSide.BOTH:
                raise Rejected(f"{what}: hedge mode needs positionSide LONG or SHORT")
            return [("positionSide", side.value)]
        if side is not PositionSide.BOTH:
            raise Rejected(f"{what}: one-way mode has no {side.value} position side")
        return []

    def _reduce_only(self) -> list[tuple[str, str]]:
        """reduceOnly=true in one-way mode; hedge mode forbids it (positionSide does the job)."""
        return [] if self.hedge_mode else [("reduceOnly", "true")]


_UNREADABLE = object()


def _read(response: httpx.Response) -> tuple[Outcome, int | None, str, object]:
    """Classify an answer: (outcome, Binance code, message, parsed body or _UNREADABLE)."""
    try:
        body: object = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        body = _UNREADABLE
    code, msg = None, ""
    if isinstance(body, dict):
        raw_code, raw_msg = body.get("code"), body.get("msg")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        msg = raw_msg if isinstance(raw_msg, str) else ""
    elif body is _UNREADABLE:
        msg = response.text.strip()  # truncated only after redaction (see _error)
    return classify(response.status_code, code, msg), code, msg, body


def _parse(parse: Callable[[Any], _T], body: object, what: str) -> _T:
    """Translate an accepted body; one we cannot read leaves the outcome unknown."""
    try:
        return parse(body)
    except wire.WireError as exc:
        raise OutcomeUnknown(f"{what}: unreadable answer: {exc}") from None
