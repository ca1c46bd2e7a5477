"""Prove that the user data stream delivers: the "user stream" row of `bot config check --online`.

A listenKey and an open socket prove little: on a wrong route Binance accepts the connection
and stays silent (the paper venue imitates it), so `bot run` would say "stream connected"
while fills go unseen. The probe opens the stream as `bot run` does (``UserStream``:
``{ws_base}/ws/{listenKey}``, the same open timeout and frame limit), places one post-only
BUY far below the mark (LIMIT GTX; GTC only where the venue refuses GTX with -1115, as the
paper venue does), waits at most ``WAIT_S`` for that order's ORDER_TRADE_UPDATE, and cancels
it by its client id whatever happened: also after a refusal, an exception, or an answer that
was lost (then it cancels again once the order can no longer land: timestamp + recvWindow).

The test order's client id is ``cfgcheck-<random>``, never of the bot's pattern
(``bot_cli.core.ids``): a daemon following the same account ignores its events.
Nothing shown carries the listenKey, the API key or the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot_cli.config import Credentials
from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, OrderType, PendingId, PositionSide, Side
from bot_cli.exchange import requests as rq
from bot_cli.exchange.errors import Outcome, to_venue_error
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.replies import read, redact
from bot_cli.exchange.rest import BinanceRest
from bot_cli.exchange.wire import OrderUpdate, WireError, parse_stream_message
from bot_cli.venue import NotFound, OutcomeUnknown, Rejected, Unavailable, VenueError


__all__ = [
    "ID_PREFIX", "WAIT_S", "Market", "Proof", "StreamTarget", "TestOrder", "Verdict",
    "new_client_id", "plan_order", "prove_user_stream",
]  # fmt: skip

WAIT_S = 10.0  # for the test order's event, from its send
OPEN_TIMEOUT_S = 10  # as UserStream opens it
MAX_FRAME = 2**22  # as UserStream opens it
ID_PREFIX = "cfgcheck-"
SYMBOLS = ("BTCUSDT", "ETHUSDT")  # the first the venue lists; else its first symbol
INVALID_TIF = -1115  # the venue does not take GTX (the paper venue): GTC, as far from the market
LAND_MARGIN_MS = 1000  # past timestamp + recvWindow, a lost order can no longer land
CANCEL_TRIES = 3
_MAX_MESSAGE = 300


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # the stream carried the test order's event
    NOT_PROVEN = "not proven"  # no test order could be placed (or may not be): a warning
    FAILED = "failed"  # the stream is wrong: it stays silent, closes or cannot be opened


@dataclass(frozen=True, slots=True)
class Proof:
    verdict: Verdict
    detail: str  # one line, no secret, no listenKey


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where `bot run` would connect, and how it signs (``Connection.ws_url``, the config)."""

    ws_base: str
    rest_url: str
    timeout_s: float
    recv_window_ms: int

    @property
    def shown(self) -> str:
        """The stream's URL as shown: the listenKey is a credential for the account's events."""
        return f"{self.ws_base.rstrip('/')}/ws/<listenKey>"


@dataclass(frozen=True, slots=True)
class TestOrder:
    """The post-only BUY the probe places: far below the mark, inside every filter."""

    symbol: str
    client_id: ClientId
    quantity: Decimal
    price: Decimal

    @property
    def text(self) -> str:
        return f"{self.client_id}: BUY {self.quantity} {self.symbol} at {self.price}"


class Market(Protocol):
    """What the test order is priced from (BinanceRest has it)."""

    async def exchange_info(self) -> Mapping[str, SymbolFilters]: ...

    async def mark_price(self, symbol: str) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class _Cleanup:
    existed: bool  # the cancel (or a query) found the order on the venue
    problem: str  # "" when nothing is left behind; else what the operator must do


async def prove_user_stream(
    rest: BinanceRest, creds: Credentials, target: StreamTarget, *, may_order: bool, wait_s: float = WAIT_S
) -> Proof:
    """Open the stream as `bot run` would; with ``may_order``, prove it with a test order."""
    try:
        key = await rest.new_listen_key()  # the account's active key, kept alive; none is closed
    except VenueError as err:
        return Proof(Verdict.FAILED, f"no listenKey: {err}")
    try:
        ws = await websockets.connect(
            f"{target.ws_base.rstrip('/')}/ws/{key}", open_timeout=OPEN_TIMEOUT_S, max_size=MAX_FRAME
        )
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as err:
        why = f"cannot open the user stream at {target.shown} ({type(err).__name__})"
        return Proof(Verdict.FAILED, f"{why}: check venue.ws_url and the network")
    try:
        if not may_order:
            return Proof(Verdict.NOT_PROVEN, "not proven: placing a test order on a live account needs "
                         f"--allow-order (the stream at {target.shown} accepted the connection)")  # fmt: skip
        return await _prove(rest, _Desk(rest, creds, target), ws, target, wait_s)
    finally:
        await ws.close()


async def plan_order(rest: Market, client_id: ClientId) -> TestOrder:
    """A BUY halfway between the mark and the lowest price PERCENT_PRICE allows, of the
    smallest quantity LOT_SIZE and MIN_NOTIONAL allow. Raises ``Rejected`` if none fits."""
    filters = await rest.exchange_info()
    symbol = next((s for s in SYMBOLS if s in filters), min(filters, default=""))
    if not symbol:
        raise Rejected("the venue lists no symbol")
    f = filters[symbol]
    mark = await rest.mark_price(symbol)
    floor = max(mark * f.multiplier_down if f.multiplier_down > 0 else mark / 2, f.min_price)
    price = _ceil((mark + floor) / 2, f.tick_size)
    quantity = _ceil(max(f.min_qty, f.step_size, f.min_notional / price), f.step_size)
    problem = _misfit(f, mark, price, quantity)
    if problem:
        raise Rejected(f"no test order fits {symbol}'s filters ({problem})")
    return TestOrder(symbol, client_id, quantity, price)


def _misfit(f: SymbolFilters, mark: Decimal, price: Decimal, quantity: Decimal) -> str | None:
    if price >= mark:
        return f"the tick size {f.tick_size} leaves no price below the mark {mark}"
    return f.check_price(price) or f.check_quantity(quantity, market=False, price=price)


def _ceil(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded up to a multiple of ``step``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def new_client_id() -> ClientId:
    """``cfgcheck-<12 random base-36 chars>``: valid on Binance, never one of the bot's ids."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return ClientId(ID_PREFIX + "".join(secrets.choice(alphabet) for _ in range(12)))


# --- the test order ---------------------------------------------------------------------------


async def _prove(rest: BinanceRest, desk: _Desk, ws: websockets.ClientConnection,
                 target: StreamTarget, wait_s: float) -> Proof:  # fmt: skip
    """Plan, place, wait for the event, and always cancel; the verdict says what was seen."""
    try:
        order = await plan_order(rest, new_client_id())
    except VenueError as err:
        return Proof(Verdict.NOT_PROVEN, f"not proven: cannot plan the test order: {err}")
    events = asyncio.create_task(_arrival(ws, order.client_id))
    sent = time.monotonic()
    try:
        placed = await desk.place(order)
        not_placed = isinstance(placed, Rejected | Unavailable)  # definitely not executed: no event comes
        arrived, closed = (None, False) if not_placed else await _wait(events, sent + wait_s)
    finally:  # also on an error or Ctrl-C: nothing of the check stays on the book
        events.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events
        cleanup = await desk.cancel(order)
    if arrived is not None:
        took = f"in {(arrived - sent) * 1000:.0f} ms ({order.text}{'' if cleanup.problem else ', cancelled'})"
        return _with_cleanup(Proof(Verdict.DELIVERED, f"delivered the test order's event {took}"), cleanup)
    return _with_cleanup(_unseen(placed, closed, cleanup, target, wait_s), cleanup)


async def _arrival(ws: websockets.ClientConnection, client_id: ClientId) -> float | None:
    """When (monotonic) the first ORDER_TRADE_UPDATE of ``client_id`` came; None: the socket closed."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            try:
                message = parse_stream_message(raw)
            except WireError:
                continue  # `bot run` skips it too; it is not the test order's event
            if isinstance(message, OrderUpdate) and message.report.client_id == client_id:
                return time.monotonic()
    return None


async def _wait(events: asyncio.Task[float | None], deadline: float) -> tuple[float | None, bool]:
    """(when the event came or None, whether the socket closed first) by ``deadline``."""
    done, _ = await asyncio.wait({events}, timeout=max(deadline - time.monotonic(), 0))
    if not done:
        return None, False
    arrived = events.result()
    return arrived, arrived is None


def _unseen(placed: VenueError | None, closed: bool, cleanup: _Cleanup, target: StreamTarget,
            wait_s: float) -> Proof:  # fmt: skip
    """No event: a silent stream if the order was on the book, otherwise nothing proven."""
    if isinstance(placed, Rejected | Unavailable):  # definitely not executed
        return Proof(Verdict.NOT_PROVEN, f"not proven: the test order was not placed: {placed}")
    if placed is not None and not cleanup.existed:
        return Proof(Verdict.NOT_PROVEN, f"not proven: the answer to the test order was lost ({placed}) "
                     "and it never reached the book")  # fmt: skip
    what = ("closed the connection before the test order's event" if closed
            else f"delivered no event for the test order within {wait_s:g} s")
    return Proof(Verdict.FAILED, f"the stream at {target.shown} accepted the connection but {what}: "
                 "check venue.ws_url (user data needs the /private route)")  # fmt: skip


def _with_cleanup(proof: Proof, cleanup: _Cleanup) -> Proof:
    """A test order left on the book, or one that filled, is said, and is never an ok."""
    if not cleanup.problem:
        return proof
    verdict = Verdict.NOT_PROVEN if proof.verdict is Verdict.DELIVERED else proof.verdict
    return Proof(verdict, f"{proof.detail}; but {cleanup.problem}")


class _Desk:
    """The test order's two calls: a signed POST (BinanceRest has no post-only entry, so it is
    signed with ``BinanceRest.signed_query`` and read as BinanceRest reads), and the cancel."""

    def __init__(self, rest: BinanceRest, creds: Credentials, target: StreamTarget) -> None:
        self.rest, self.creds, self.target = rest, creds, target
        self.land_by_ms: int | None = None  # while an order's answer is not known: it may land until then

    async def place(self, order: TestOrder) -> VenueError | None:
        """None when the venue took it; else the error (``OutcomeUnknown``: it may be there)."""
        post_only = _params(order, self.rest.hedge_mode, "GTX")
        try:
            await self._post(post_only)
        except Rejected as err:
            if err.code != INVALID_TIF:
                return err
            return await self._post_caught(_params(order, self.rest.hedge_mode, "GTC"))
        except VenueError as err:
            return err
        return None

    async def _post_caught(self, params: tuple[tuple[str, str], ...]) -> VenueError | None:
        try:
            await self._post(params)
        except VenueError as err:
            return err
        return None

    async def _post(self, params: tuple[tuple[str, str], ...]) -> None:
        """POST /fapi/v1/order, signed; raises the VenueError BinanceRest would."""
        query = self.rest.signed_query(params)
        # Until a definite answer (also if this task is cancelled mid-send) the order may land.
        self.land_by_ms = (self.rest.last_signed_ms or 0) + self.target.recv_window_ms + LAND_MARGIN_MS
        headers = {"X-MBX-APIKEY": self.creds.api_key}
        try:
            async with httpx.AsyncClient(base_url=self.target.rest_url, timeout=self.target.timeout_s) as http:
                answer = await http.post(f"/fapi/v1/order?{query}", headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            self.land_by_ms = None
            raise Unavailable(f"test order: not sent ({type(err).__name__})", 0, 1.0) from None
        except httpx.HTTPError as err:
            raise OutcomeUnknown(f"test order: no answer ({type(err).__name__})") from None
        outcome, code, msg, _ = read(answer)
        if outcome is not Outcome.UNKNOWN:
            self.land_by_ms = None
        if outcome is Outcome.ACCEPTED:
            return
        text = f"HTTP {answer.status_code}" + (f" code {code}" if code is not None else "") + f": {msg}"
        raise to_venue_error(outcome, code, redact(text, (self.creds.api_key, self.creds.api_secret))[:_MAX_MESSAGE])

    async def cancel(self, order: TestOrder) -> _Cleanup:
        """Cancel by client id; after a lost answer, once more when it can no longer land."""
        cleanup = await self._cancel_once(order)
        if self.land_by_ms is not None and not cleanup.existed and not cleanup.problem:
            await asyncio.sleep(max(self.land_by_ms - time.time_ns() // 1_000_000, 0) / 1000)
            cleanup = await self._cancel_once(order)
        return cleanup

    async def _cancel_once(self, order: TestOrder) -> _Cleanup:
        last: VenueError | None = None
        for attempt in range(CANCEL_TRIES):
            try:
                report = await self.rest.cancel_order(order.symbol, order.client_id)
            except NotFound:
                return await self._gone(order)
            except VenueError as err:
                last = err
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            return _Cleanup(True, _filled(order, report.filled_qty))
        return _Cleanup(False, f"cancelling the test order failed ({last}): cancel {order.client_id} "
                        f"on {order.symbol} by hand")  # fmt: skip

    async def _gone(self, order: TestOrder) -> _Cleanup:
        """Not open: never placed, or already done (a fill, an expiry); a query says which."""
        try:
            report = await self.rest.query_order(order.symbol, order.client_id)
        except NotFound:
            return _Cleanup(False, "")
        except VenueError as err:
            return _Cleanup(False, f"the test order {order.client_id} could not be looked up ({err}): "
                            f"check {order.symbol} by hand")  # fmt: skip
        return _Cleanup(True, _filled(order, report.filled_qty))


def _filled(order: TestOrder, filled: Decimal) -> str:
    if filled <= 0:
        return ""
    return (f"the test order {order.client_id} filled {filled} {order.symbol} before its cancel: "
            "that position is not the bot's, close it by hand")  # fmt: skip


def _params(order: TestOrder, hedge_mode: bool, time_in_force: str) -> tuple[tuple[str, str], ...]:
    """The bot's own LIMIT entry request (positionSide per mode, ACK answer), timeInForce set."""
    side = PositionSide.LONG if hedge_mode else PositionSide.BOTH
    entry = cm.PlaceEntry(PendingId(""), order.client_id, order.symbol, Side.BUY, OrderType.LIMIT,
                          order.quantity, order.price, side)  # fmt: skip
    return tuple((k, time_in_force if k == "timeInForce" else v) for k, v in rq.new_entry(entry, hedge_mode).params)
