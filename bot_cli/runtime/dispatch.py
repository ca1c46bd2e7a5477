"""Who sends when: the engine's jobs (one command's network call each), run at once up to a
number in flight, stop-losses first when anything is short.

The engine hands a job over only once its entry's record is durable, and keeps each order's
jobs in order (one outstanding question per order); entries never wait on each other's
answers. The dispatcher decides when a handed-over job runs:

- at once while fewer than ``max_in_flight`` requests are out (hundreds of requests at once
  cost the HTTP client more than they gain: a burst goes out faster in a steady stream);
- new orders (entries, legs, closes) only while the order budget (the ORDERS rate limits,
  ``venue.OrderMetered``) has room, its last slots (``order_reserve``) kept for stop-losses and
  closes: a take-profit never takes the slot a stop-loss of a fill still to come needs;
- whatever waits goes in this order: cancels of a fired leg's siblings (until one is gone it
  may execute too: Binance has no OCO), sends that waited once and were stamped anew (they must
  go within ``send_delay_ms`` of their stamp), stop-losses, market closes, take-profits, other
  cancels, reads, new entries; each kind oldest first. Cancels take no order budget and are
  never held for it.

``TaskDispatcher`` runs each job as an asyncio task. Tests pass their own dispatcher to choose
the order in which concurrent sends go out and their answers come back.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot_cli.core import commands as cm
from bot_cli.core.model import Leg, Millis, PendingId
from bot_cli.venue import OrderMetered


log = logging.getLogger("bot_cli.dispatch")

Work = cm.Send | cm.Query
NEW_ORDERS = (cm.PlaceEntry, cm.PlaceProtection, cm.ClosePosition)
MAX_IN_FLIGHT = 24  # requests out at once
MIN_WAIT_S = 0.05  # an order window that says "now" is looked at again this soon
# The order in which waiting jobs go out (lower first); a send stamped anew goes before all.
_SIBLING, _RESTAMPED, _SL, _CLOSE, _TP, _CANCEL, _READ, _ENTRY = range(-2, 6)


@dataclass(eq=False, slots=True)
class Job:
    """One command on its way to the exchange. ``key`` is the order it is about."""

    cmd: Work
    queued_at: Millis
    seq: int
    express: bool = False  # its budget was granted already (a send stamped anew)
    events: list[Any] = field(default_factory=list)  # the outcome, once answered

    @property
    def pending_id(self) -> PendingId:
        return self.cmd.pending_id

    @property
    def key(self) -> str:
        return getattr(self.cmd, "client_id", None) or f"position:{self.cmd.pending_id}"

    @property
    def counted(self) -> bool:
        """A new order: it counts toward the account's order-rate limits."""
        return isinstance(self.cmd, NEW_ORDERS)

    @property
    def priority(self) -> int:
        c = self.cmd
        if isinstance(c, cm.CancelProtection) and c.urgent:
            return _SIBLING
        if self.express:  # it waited once already and was stamped anew: it must go now
            return _RESTAMPED
        if isinstance(c, cm.PlaceProtection):
            return _SL if c.leg is Leg.SL else _TP
        if isinstance(c, cm.ClosePosition):
            return _CLOSE
        if isinstance(c, cm.CancelProtection | cm.CancelEntry):
            return _CANCEL
        return _ENTRY if isinstance(c, cm.PlaceEntry) else _READ


class Dispatcher(Protocol):
    def submit(self, job: Job) -> None:
        """Run ``job`` now or later; its runner is told the outcome."""
        ...


Run = Callable[[Job], Awaitable[None]]


class TaskDispatcher:
    """Each job an asyncio task, at most ``max_in_flight`` at once; new orders within the budget."""

    def __init__(self, run: Run, budget: object = None, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._run = run
        self._budget = budget if isinstance(budget, OrderMetered) else None
        self._max = max_in_flight
        self._waiting: list[tuple[int, int, Job]] = []
        self._in_flight = 0
        self._starting = 0  # new orders handed to a task that has not sent yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, job: Job) -> None:
        """Queued; they start on the next turn of the loop, so what one flush hands over is
        taken in priority order, not in the order it was decided."""
        heapq.heappush(self._waiting, (job.priority, job.seq, job))
        if not self._soon:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _room(self) -> int | None:
        room = None if self._budget is None else self._budget.order_room()
        return None if room is None else room - self._starting

    def _pump(self) -> None:
        self._timer, self._soon = None, False
        room, held = self._room(), []
        reserve = 0 if self._budget is None else self._budget.order_reserve()
        # a sibling's cancel does not wait for room in flight either
        while self._waiting and (self._in_flight < self._max or self._waiting[0][0] == _SIBLING):
            item = heapq.heappop(self._waiting)
            job = item[2]
            needs_room = job.counted and not job.express
            # the last slots of a window are kept for stop-losses and closes: fills still to come
            floor = 0 if job.priority <= _CLOSE else reserve
            if needs_room and room is not None and room <= floor:
                held.append(item)  # the budget is short: it waits, reads and cancels may go
                continue
            if needs_room:
                self._starting += 1
                room = None if room is None else room - 1
            self._spawn(job)
        for item in held:
            heapq.heappush(self._waiting, item)
        if held and self._timer is None and self._budget is not None:
            wait = max(self._budget.order_wait_s(), MIN_WAIT_S)
            log.info("order budget short: %d new orders wait %.1fs, stop-losses first", len(held), wait,
                     extra={"event": "order_budget_short"})
            self._timer = asyncio.get_running_loop().call_later(wait, self._pump)

    def _spawn(self, job: Job) -> None:
        self._in_flight += 1
        task = asyncio.create_task(self._go(job), name=f"job {job.key}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._waiting:
            self._pump()

    async def _go(self, job: Job) -> None:
        if job.counted and not job.express:
            self._starting -= 1  # it counts itself in the budget as it sends, right now
        await self._run(job)

    def close(self) -> None:
        """Forget what waits (the daemon stops); running tasks are the engine's to await."""
        if self._timer is not None:
            self._timer.cancel()
        self._waiting.clear()
