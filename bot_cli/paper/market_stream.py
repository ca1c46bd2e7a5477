"""Market WebSocket streams: ``/market/...`` and ``/public/...`` (``/ws/<name>`` raw,
``/stream?streams=a/b`` combined, or ``/ws`` then SUBSCRIBE), and the un-routed ``/ws`` and
``/stream`` forms Binance still accepts.

Binance's rules, kept here: a stream is delivered only on its route (``/public``: book streams;
``/market``: the others; un-routed: ``/public`` data only); elsewhere it is accepted and
silently never delivered (the venue logs why, Binance does not). A path segment that names no
stream connects with nothing subscribed (ccxt opens ``/market/ws/<n>``). Requests follow
Binance's live-subscription API and its error answers; a connection carries at most 1024
streams and may send at most 10 messages a second (beyond that it is closed).

The request ids: the docs say an unsigned integer, the official SDK sends UUID strings and
works against Binance; we accept both (and null), as the Alpha docs describe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from bot_cli.paper.market_feed import Feed, Stream, parse


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange

log = logging.getLogger("bot_cli.paper")
MAX_STREAMS = 1024
MAX_MESSAGES_PER_S = 10
PUSH_EVERY_S = 0.1
MAX_ID_CHARS = 36  # a string request id: a UUID, as the official SDK sends
_SET_PARAMS = 2  # SET_PROPERTY ["combined", true|false]
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


class Refused(Exception):
    """A request Binance answers with an error: its code and message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class Connection:
    """One market socket: its route, framing and subscriptions (in subscription order)."""

    route: str  # market | public | unrouted
    combined: bool
    streams: dict[str, Stream] = field(default_factory=dict)
    arrivals: deque[float] = field(default_factory=deque)

    def deliverable(self) -> list[Stream]:
        served = "public" if self.route == "unrouted" else self.route
        return [s for s in self.streams.values() if s.category == served]

    def too_fast(self, at: float) -> bool:
        """Count one incoming message; True past 10 within a second."""
        self.arrivals.append(at)
        while self.arrivals and at - self.arrivals[0] >= 1.0:
            self.arrivals.popleft()
        return len(self.arrivals) > MAX_MESSAGES_PER_S

    def frame(self, name: str, event: Any) -> str:
        payload = {"stream": name, "data": event} if self.combined else event
        return json.dumps(payload, separators=(",", ":"))


def answer(conn: Connection, text: str) -> dict[str, Any]:
    """The reply to one client message (Binance's live-subscription API)."""
    try:
        request = json.loads(text)
    except ValueError:
        return {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
    if not isinstance(request, dict):
        return {"error": {"code": 2, "msg": "Invalid request: expected an object"}}
    ident = request.get("id")
    try:
        _check_id(ident)
        return {"result": _run(conn, request), "id": ident}
    except Refused as err:
        reply: dict[str, Any] = {"error": {"code": err.code, "msg": err.msg}}
        return reply | {"id": ident} if "id" in request else reply


def _check_id(ident: Any) -> None:
    ok = ident is None or (isinstance(ident, str) and 0 < len(ident) <= MAX_ID_CHARS) or (
        isinstance(ident, int) and not isinstance(ident, bool) and 0 <= ident < 2**64
    )  # fmt: skip
    if not ok:
        raise Refused(2, "Invalid request: request ID must be an unsigned integer")


def _run(conn: Connection, request: dict[str, Any]) -> Any:
    method, params = request.get("method"), request.get("params", [])
    if method is None:
        raise Refused(2, "Invalid request: missing field `method` at line 1 column 1")
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        raise Refused(2, f"Invalid request: unknown variant `{method}`, expected one of {expected}")
    if not isinstance(params, list):
        raise Refused(2, "Invalid request: params must be an array")
    if method == "LIST_SUBSCRIPTIONS":
        return list(conn.streams)
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        return _property(conn, method, params)
    streams = _streams(params)
    if method == "UNSUBSCRIBE":
        for s in streams:
            conn.streams.pop(s.name, None)
        return None
    fresh = [s for s in streams if s.name not in conn.streams]
    if len(conn.streams) + len(fresh) > MAX_STREAMS:
        raise Refused(2, f"Invalid request: a connection carries at most {MAX_STREAMS} streams")
    for s in fresh:
        conn.streams[s.name] = s
        _warn_if_off_route(conn, s)
    return None


def _streams(params: list[Any]) -> list[Stream]:
    out = []
    for name in params:
        stream = parse(name) if isinstance(name, str) else None
        if stream is None:
            raise Refused(2, "Invalid request: invalid stream")
        out.append(stream)
    return out


def _property(conn: Connection, method: str, params: list[Any]) -> Any:
    if not params or params[0] != "combined":
        raise Refused(0, "Unknown property")
    if method == "GET_PROPERTY":
        return conn.combined
    if len(params) != _SET_PARAMS or not isinstance(params[1], bool):
        raise Refused(1, "Invalid value type: expected Boolean")
    conn.combined = params[1]
    return None


def _warn_if_off_route(conn: Connection, s: Stream) -> None:
    served = "public" if conn.route == "unrouted" else conn.route
    if s.category != served:
        log.warning(
            "paper market stream: %s is served on /%s; like Binance, this %s connection "
            "accepts it and delivers nothing", s.name, s.category, conn.route,
        )  # fmt: skip


def _connection(ws: WebSocket) -> Connection:
    path = ws.url.path.rstrip("/")
    route = next((r for r in ("market", "public") if path.startswith(f"/{r}/")), "unrouted")
    conn = Connection(route, combined=path.endswith("/stream"))
    names = ws.query_params.get("streams", "").split("/") if conn.combined else []
    if "name" in ws.path_params:
        names = [ws.path_params["name"]]
    for name in filter(None, names):
        stream = parse(name)
        if stream is not None:  # a name that is no stream connects with nothing subscribed
            conn.streams[stream.name] = stream
    return conn


async def market_stream(ws: WebSocket) -> None:
    """Serve one market socket until the client leaves, breaks the rate limit, or we stop."""
    ex: PaperExchange = ws.app.state.exchange
    conn = _connection(ws)
    if len(conn.streams) > MAX_STREAMS:
        await ws.close(code=1008)  # handshake refused
        return
    await ws.accept()
    log.info("paper market stream connected on %s: %s", ws.url.path, ", ".join(conn.streams))
    for s in conn.streams.values():
        _warn_if_off_route(conn, s)
    lock = asyncio.Lock()
    reader = asyncio.create_task(_read(ws, conn, lock))
    try:
        await _push(ws, ex, conn, lock, reader)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read(ws: WebSocket, conn: Connection, lock: asyncio.Lock) -> None:
    """Answer requests until the client leaves (or sends too fast: then close)."""
    with contextlib.suppress(Exception):  # any receive failure means the client is gone
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if conn.too_fast(time.monotonic()):
                await ws.close(code=1008)
                return
            reply = answer(conn, message.get("text") or "")
            async with lock:
                await ws.send_text(json.dumps(reply, separators=(",", ":")))


async def _push(
    ws: WebSocket,
    ex: PaperExchange,
    conn: Connection,
    lock: asyncio.Lock,
    reader: asyncio.Task[None],
) -> None:
    feed = Feed()
    while not reader.done():
        for name, event in feed.due(ex, conn.deliverable(), ex.now()):
            async with lock:
                try:
                    await ws.send_text(conn.frame(name, event))
                except Exception:  # noqa: BLE001 - a send to a gone client ends this socket
                    return
        await asyncio.sleep(PUSH_EVERY_S)
