"""Fan-out of the account's user-stream events to the connected sockets (no web stack here).

The service publishes each committed batch of events to the sockets of the active listenKey;
``stream`` serves each socket from its ``Subscriber`` queue. A ``None`` in a queue closes the
socket.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


CLOSE = None  # queue sentinel: close the socket


@dataclass(eq=False)
class Subscriber:
    """One connected socket: its key, framing, event filter and outgoing queue."""

    key: str
    wrap: bool
    events: frozenset[str] = frozenset()
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    def offer(self, event: dict[str, Any]) -> None:
        """Queue one event, unless the socket filters it out (``listenKeyExpired`` always goes)."""
        kind = event.get("e")
        if self.events and kind not in self.events and kind != "listenKeyExpired":
            return
        payload = {"stream": self.key, "data": event} if self.wrap else event
        self.queue.put_nowait(json.dumps(payload, separators=(",", ":")))


class Hub:
    """Fan-out of account events to the sockets of the active listenKey."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()

    def count(self) -> int:
        return len(self.subscribers)

    def publish(self, key: str | None, events: list[dict[str, Any]]) -> None:
        for sub in list(self.subscribers):
            if sub.key == key:
                for event in events:
                    sub.offer(event)

    def expire(self, key: str, event: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if sub.key == key:
                sub.offer(event)
                sub.queue.put_nowait(CLOSE)

    def drop_all(self) -> None:
        for sub in list(self.subscribers):
            sub.queue.put_nowait(CLOSE)
