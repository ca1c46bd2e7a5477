"""The user data stream: listenKey lifecycle, websockets reconnect loop, gaps as events.

Rules (reference §5, §8.6): connect on the ``/private`` route; keep the key alive
every 30 minutes; recreate it on -1125 or ``listenKeyExpired``; reconnect with
backoff; reconnect before the 24 h cut; never DELETE the key (another process on the
account may share it). There is no replay, so every (re)connect is a gap that the
owner answers with a REST reconcile — after the socket is open, so nothing falls
between the snapshot and the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot_cli.exchange.wire import ListenKeyExpired, StreamMessage, WireError, parse_stream_message
from bot_cli.venue import NotFound, VenueError


log = logging.getLogger("bot_cli.stream")
KEEPALIVE_S = 30 * 60
MAX_CONNECTION_S = 23 * 3600  # Binance cuts at 24 h; leave on our own terms first


class ListenKeys(Protocol):
    async def new_listen_key(self) -> str: ...

    async def keepalive_listen_key(self) -> None: ...


def backoff(
    initial: float = 0.5, factor: float = 1.618, max_delay: float = 30.0, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Reconnect delays: a random first one (no thundering herd), then growing to a cap."""
    yield initial * rand()
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, max_delay)


class _Reconnect(Exception):
    """Leave the current connection and make a new one (key expired, age limit)."""


class UserStream:
    def __init__(
        self,
        keys: ListenKeys,
        ws_base: str,
        *,
        on_message: Callable[[StreamMessage], Awaitable[None]],
        on_gap: Callable[[str], Awaitable[None]],
        keepalive_s: float = KEEPALIVE_S,
        max_connection_s: float = MAX_CONNECTION_S,
        delays: Callable[[], Iterator[float]] = backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.keys, self.ws_base = keys, ws_base.rstrip("/")
        self.on_message, self.on_gap = on_message, on_gap
        self.keepalive_s, self.max_connection_s = keepalive_s, max_connection_s
        self.delays, self.sleep = delays, sleep
        self.connects = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Forever: connect, report the gap, pump messages; on any failure back off and retry."""
        delays = self.delays()
        while True:
            try:
                await self._session()
                delays = self.delays()  # a clean rotation is not a failure
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, VenueError, TimeoutError) as err:
                self.connected.clear()
                wait = next(delays)
                log.warning("user stream lost (%s); reconnecting in %.1fs", type(err).__name__, wait,
                            extra={"event": "stream_lost"})
                await self.sleep(wait)

    async def _session(self) -> None:
        key = await self.keys.new_listen_key()
        async with websockets.connect(f"{self.ws_base}/ws/{key}", open_timeout=10, max_size=2**22) as ws:
            self.connects += 1
            self.connected.set()
            keepalive = asyncio.create_task(self._keepalive(ws))
            try:
                await self.on_gap("connected" if self.connects == 1 else "reconnected")
                await asyncio.wait_for(self._pump(ws), timeout=self.max_connection_s)
            except (_Reconnect, TimeoutError):
                log.info("user stream: rotating the connection", extra={"event": "stream_rotate"})
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
                self.connected.clear()

    async def _pump(self, ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            try:
                message = parse_stream_message(raw)
            except WireError as err:
                log.error(
                    "unreadable stream message skipped (%s); reconciling", err, extra={"event": "stream_unreadable"}
                )
                await self.on_gap("unreadable message")
                continue
            if isinstance(message, ListenKeyExpired):
                raise _Reconnect
            await self.on_message(message)
        raise ConnectionError("the exchange closed the user stream")

    async def _keepalive(self, ws: websockets.ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self.keys.keepalive_listen_key()
            except NotFound:  # -1125: the key is gone; a new connection gets a new key
                log.warning(
                    "listenKey no longer exists; reconnecting with a new one", extra={"event": "listen_key_expired"}
                )
                await ws.close()
                return
            except VenueError as err:
                log.warning("listenKey keep-alive failed (%s); will retry", err,
                            extra={"event": "listen_key_keepalive_failed"})
