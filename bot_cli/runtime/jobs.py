"""The engine's commands between decision and answer (no I/O, no decisions).

Records wait here for the next flush; the sends behind them wait for it too. Each order has at
most one job out (one outstanding question per order), the others for it queued behind in
order; the count of an entry's jobs not answered yet says whether it is quiet, and whoever
waits for that is woken when an answer comes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection

from bot_cli.core import commands as cm
from bot_cli.core.model import Millis, PendingId
from bot_cli.runtime.dispatch import Job


Write = cm.PersistPending | cm.ArchivePending


class Jobs:
    def __init__(self) -> None:
        self.writes: list[Write] = []  # records to make durable at the next flush
        self.ready: list[Job] = []  # commands waiting for that flush
        self._orders: dict[str, deque[Job]] = {}  # per order: the job out now, then those behind it
        self._busy: dict[PendingId, int] = {}  # jobs of an entry not answered yet
        self._express: set[str] = set()  # sends stamped anew: their order budget is granted
        self._waiters: list[asyncio.Future[None]] = []
        self._seq = 0

    def job(self, cmd: cm.Send | cm.Query, stamp: Millis) -> Job:
        """A new job for ``cmd``, stamped when the core decided it; it waits for the flush."""
        self._seq += 1
        job = Job(cmd, stamp, self._seq)
        job.express = job.key in self._express
        self._express.discard(job.key)
        self.ready.append(job)
        self._busy[job.pending_id] = self._busy.get(job.pending_id, 0) + 1
        return job

    def grant(self, key: str) -> None:
        """The next send of this order goes out without waiting for the budget again."""
        self._express.add(key)

    def take(self) -> tuple[list[Write], list[Job]]:
        writes, jobs, self.writes, self.ready = self.writes, self.ready, [], []
        return writes, jobs

    def start(self, job: Job) -> bool:
        """True if it may go out now; else it waits behind the job of its order that is out."""
        behind = self._orders.get(job.key)
        if behind is not None:
            behind.append(job)
            return False
        self._orders[job.key] = deque()
        return True

    def finished(self, job: Job, dropped: Collection[PendingId]) -> Job | None:
        """An answered job: the next job of its order to send, if any (a dropped entry's never)."""
        self.unbusy(job)
        behind = self._orders.get(job.key)
        while behind:
            nxt = behind.popleft()
            if nxt.pending_id not in dropped:
                return nxt
            self.unbusy(nxt)
        self._orders.pop(job.key, None)
        return None

    def unbusy(self, job: Job) -> None:
        left = self._busy.get(job.pending_id, 0) - 1
        if left > 0:
            self._busy[job.pending_id] = left
        else:
            self._busy.pop(job.pending_id, None)

    def busy(self, pid: PendingId) -> bool:
        return bool(self._busy.get(pid))

    @property
    def entries_busy(self) -> set[PendingId]:
        return set(self._busy)

    @property
    def idle(self) -> bool:
        return not self._busy and not self.writes

    async def until(self, done: Callable[[], bool], flush: Callable[[], None]) -> None:
        """Wait for ``done``, flushing first and after every wake-up."""
        flush()
        while not done():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
            flush()

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def clear(self) -> None:
        """Nothing queued goes out any more (the process is as good as dead)."""
        self.writes.clear()
        self.ready.clear()
        self.wake()
