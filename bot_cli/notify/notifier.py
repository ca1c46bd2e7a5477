"""The notifier: alerts leave the daemon without the daemon ever waiting on the network.

``notify()`` only stamps the message and puts it on each sink's bounded queue; when a
queue is full the message is dropped for that sink and one line says which. A background
task (``run()``, or ``start()``/``stop()``) delivers: one lane per sink, so a dead webhook
never delays Telegram; each try bounded by ``timeout_s``; retried with backoff while
another try may succeed; a message finally given up is logged, once per sink.

No ``httpx.Client``: its INFO log line carries the request URL, and Telegram's URL holds the
token. Requests go straight to a transport (a connection pool), which logs no URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot_cli.config import NotifyConfig
from bot_cli.notify.formats import Message, Notice, redact, short
from bot_cli.notify.sinks import DeliveryError, Sink, judge, sinks_from_config


log = logging.getLogger("bot_cli.notify")
TRIES = 4


def backoff(initial: float = 1.0, factor: float = 2.0, max_delay: float = 30.0) -> Iterator[float]:
    """Delays between tries of one message: 1, 2, 4 ... s, capped."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * factor, max_delay)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who raised the message: several bots may post to one channel."""

    host: str
    pid: int

    @classmethod
    def here(cls) -> Origin:
        return cls(socket.gethostname(), os.getpid())


@dataclass(frozen=True, slots=True)
class Delivery:
    """One sink's answer to one try: what `bot notify test` prints."""

    where: str
    ok: bool
    detail: str


async def send_once(
    transport: httpx.AsyncBaseTransport, sink: Sink, msg: Message, timeout_s: float
) -> str:
    """One try: 'HTTP 200', or a DeliveryError whose text holds no secret."""
    request = sink.request(msg)
    request.extensions["timeout"] = httpx.Timeout(timeout_s).as_dict()
    try:
        async with asyncio.timeout(timeout_s):  # httpx bounds each read; this bounds the whole try
            response = await transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise DeliveryError(f"no answer within {timeout_s:g} s", retry=True) from None
    except httpx.TransportError as err:
        text = redact(f"cannot reach it: {type(err).__name__} {err}".strip(), sink.secrets)
        raise DeliveryError(text, retry=True) from None
    return judge(sink, response)


async def deliver_once(
    sinks: Sequence[Sink],
    msg: Message,
    timeout_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Delivery]:
    """One try per sink, all at once, no retry: the answer of `bot notify test`."""
    pool = transport or httpx.AsyncHTTPTransport()
    try:
        return list(await asyncio.gather(*(_try(pool, s, msg, timeout_s) for s in sinks)))
    finally:
        if transport is None:
            await pool.aclose()


async def _try(
    transport: httpx.AsyncBaseTransport, sink: Sink, msg: Message, timeout_s: float
) -> Delivery:
    try:
        return Delivery(sink.where, True, await send_once(transport, sink, msg, timeout_s))
    except DeliveryError as err:
        return Delivery(sink.where, False, str(err))


class Notifier:
    """``notify(kind, text, **fields)`` from the daemon's loop; delivery in the background.

    Counts (``counts``): queued, delivered, failed (given up after tries), dropped (queue
    full or left at stop); one count per sink and message.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        queue_size: int = 100,
        timeout_s: float = 5.0,
        tries: int = TRIES,
        delays: Callable[[], Iterator[float]] = backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        origin: Origin | None = None,
    ) -> None:
        self.sinks = tuple(sinks)
        self.timeout_s, self.tries = timeout_s, max(tries, 1)
        self.delays, self.sleep = delays, sleep
        self.clock, self.origin = clock, origin or Origin.here()
        self.counts: Counter[str] = Counter()
        self._queues: list[asyncio.Queue[Message]] = [
            asyncio.Queue(max(queue_size, 1)) for _ in self.sinks
        ]
        self._transport = transport
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(
        cls,
        cfg: NotifyConfig,
        env: Mapping[str, str] | None = None,
        source: str = "config",
        **kwargs: Any,
    ) -> Notifier:
        """The sinks of [notify]; a wrong sink is a ConfigError now, not a silence later."""
        sinks = sinks_from_config(cfg, os.environ if env is None else env, source)
        return cls(sinks, queue_size=cfg.queue_size, timeout_s=cfg.timeout_s, **kwargs)

    @property
    def configured(self) -> bool:
        return bool(self.sinks)

    def notify(self, kind: str, text: str, /, **fields: Any) -> bool:
        """Queue for every sink; never blocks, never raises. True if any sink took it.

        Fields named like the envelope (kind, text, at, host, pid) are not sent.
        """
        return self._offer(kind, text, fields)

    def tell(self, notice: Notice) -> bool:
        """``notify`` for a notice built by ``bot_cli.notify.formats``."""
        return self._offer(notice.kind, notice.text, notice.fields)

    def stamp(self, kind: str, text: str, fields: Mapping[str, Any]) -> Message:
        """The message as sinks send it: when and where it was raised."""
        return Message(kind, text, dict(fields), self.clock(), self.origin.host, self.origin.pid)

    def _offer(self, kind: str, text: str, fields: Mapping[str, Any]) -> bool:
        taken = False
        try:  # the caller is the protection path: nothing may escape to it
            msg = self.stamp(kind, text, fields)
            for sink, queue in zip(self.sinks, self._queues, strict=True):
                try:
                    queue.put_nowait(msg)
                except asyncio.QueueFull:
                    self.counts["dropped"] += 1
                    log.warning(
                        "notify: %s queue full (%d waiting): dropped %s: %s",
                        sink.where,
                        queue.maxsize,
                        kind,
                        short(text),
                    )
                else:
                    self.counts["queued"] += 1
                    taken = True
        except Exception as err:  # noqa: BLE001 -- the protection path calls this: nothing may escape
            log.warning("notify: %s not queued: %s", kind, type(err).__name__)
        return taken

    # -- delivery ------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering in the running loop (nothing to do without sinks)."""
        if self._task is None and self.sinks:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="notify")

    async def stop(self, grace_s: float | None = None) -> None:
        """Give what is queued up to ``grace_s`` (default timeout_s) to go out, then stop.

        What is still queued then is dropped, in one line.
        """
        task, self._task = self._task, None
        if task is None:
            return
        joined = asyncio.gather(*(q.join() for q in self._queues))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(joined, self.timeout_s if grace_s is None else grace_s)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as err:  # noqa: BLE001 -- stopping must not fail the daemon's own stop
            log.warning("notify: delivery had stopped: %s", type(err).__name__)
        self._drop_left()

    async def __aenter__(self) -> Notifier:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Deliver until cancelled: one lane per sink."""
        transport = self._transport or httpx.AsyncHTTPTransport()
        try:
            await asyncio.gather(
                *(
                    self._lane(transport, s, q)
                    for s, q in zip(self.sinks, self._queues, strict=True)
                )
            )
        finally:
            if self._transport is None:
                await transport.aclose()

    async def _lane(
        self, transport: httpx.AsyncBaseTransport, sink: Sink, queue: asyncio.Queue[Message]
    ) -> None:
        while True:
            msg = await queue.get()
            try:
                await self._deliver(transport, sink, msg)
            except asyncio.CancelledError:
                self.counts["dropped"] += 1
                log.warning("notify: %s dropped %s: stopped while sending it", sink.where, msg.kind)
                raise
            finally:
                queue.task_done()

    async def _deliver(self, transport: httpx.AsyncBaseTransport, sink: Sink, msg: Message) -> None:
        delays = self.delays()
        for attempt in range(1, self.tries + 1):
            try:
                detail = await send_once(transport, sink, msg, self.timeout_s)
            except DeliveryError as err:
                if not err.retry or attempt == self.tries:
                    return self._failed(sink, msg, attempt, str(err))
                wait = max(next(delays), err.after_s)
                log.info(
                    "notify: %s try %d for %s failed (%s); again in %.1f s",
                    sink.where,
                    attempt,
                    msg.kind,
                    err,
                    wait,
                )
                await self.sleep(wait)
            except Exception as err:  # noqa: BLE001 -- a bug here must not end the lane
                return self._failed(
                    sink, msg, attempt, redact(f"{type(err).__name__}: {err}", sink.secrets)
                )
            else:
                self.counts["delivered"] += 1
                log.debug("notify: %s delivered %s (%s)", sink.where, msg.kind, detail)
                return None
        return None

    def _failed(self, sink: Sink, msg: Message, tries: int, why: str) -> None:
        self.counts["failed"] += 1
        log.warning(
            "notify: %s dropped %s after %d %s: %s",
            sink.where,
            msg.kind,
            tries,
            "try" if tries == 1 else "tries",
            why,
        )

    def _drop_left(self) -> None:
        left = [
            (sink, q.get_nowait())
            for sink, q in zip(self.sinks, self._queues, strict=True)
            for _ in range(q.qsize())
        ]
        if left:
            self.counts["dropped"] += len(left)
            kinds = ", ".join(sorted({m.kind for _, m in left}))
            log.warning("notify: stopped with %d message(s) undelivered (%s)", len(left), kinds)
