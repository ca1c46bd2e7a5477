"""The user data stream: ``/private/ws/{listenKey}``, ``/private/ws?listenKey=``, and
``/private/stream?listenKey=`` (or a ``SUBSCRIBE`` to the key), which wraps each event as
``{"stream": <listenKey>, "data": <event>}``. An optional ``events=A/B`` query keeps only those
event types. Events are JSON text frames in Binance's shapes; the venue pushes them only after
persisting the state that produced them (``hub`` holds the sockets' queues).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from bot_cli.paper.hub import CLOSE, Subscriber
from bot_cli.redact import redact_keys


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange

log = logging.getLogger("bot_cli.paper")


async def user_stream(ws: WebSocket) -> None:
    """Serve one user-stream socket until the client leaves or the venue closes it."""
    exchange: PaperExchange = ws.app.state.exchange
    key = ws.path_params.get("listen_key") or ws.query_params.get("listenKey", "")
    wrap = ws.url.path.rstrip("/").endswith("/stream")
    if key and not exchange.valid_listen_key(key):
        await ws.close(code=1008)  # handshake refused: the key does not exist (any more)
        return
    await ws.accept()
    if not key:
        key = await _subscribe(ws, exchange)
        if not key:
            return
    wanted = frozenset(e for e in ws.query_params.get("events", "").split("/") if e)
    sub = Subscriber(key, wrap, wanted)
    log.info("paper user stream connected on %s", redact_keys(ws.url.path))
    exchange.hub.subscribers.add(sub)
    reader = asyncio.create_task(_read_until_gone(ws, sub))
    try:
        await _write(ws, sub)
    finally:
        exchange.hub.subscribers.discard(sub)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _subscribe(ws: WebSocket, exchange: PaperExchange) -> str:
    """The official SDK style: ``{"method": "SUBSCRIBE", "params": [<listenKey>], "id": n}``."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return ""
        try:
            request = json.loads(message.get("text") or "{}")
            params = request.get("params") or []
        except (ValueError, AttributeError):
            continue
        if request.get("method") == "SUBSCRIBE" and params and exchange.valid_listen_key(params[0]):
            await ws.send_text(json.dumps({"result": None, "id": request.get("id")}))
            return str(params[0])
        await ws.send_text(
            json.dumps(
                {"error": {"code": -1125, "msg": "Invalid listenKey."}, "id": request.get("id")}
            )
        )


async def _read_until_gone(ws: WebSocket, sub: Subscriber) -> None:
    """Drain client frames (pings are handled below us); a disconnect stops the writer."""
    with contextlib.suppress(Exception):  # any receive failure means the client is gone
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass
    sub.queue.put_nowait(CLOSE)


async def _write(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        text = await sub.queue.get()
        if text is CLOSE:
            with contextlib.suppress(Exception):  # the client may already be gone
                await ws.close(code=1000)
            return
        try:
            await ws.send_text(text)
        except Exception:  # noqa: BLE001 - a send to a gone client ends this socket
            return
