"""A dispatcher the test drives: concurrent sends go out, and their answers come back, in the
order the test chooses (runtime.dispatch.Dispatcher).

A submitted job waits in ``queued`` until the test sends it (the exchange acts then); its
answer waits in ``answered`` until the test delivers it to the engine. Whatever is still in
``answered`` when the process "dies" is a request that landed and whose answer was lost.
"""

from __future__ import annotations

import random

from bot_cli.runtime.dispatch import Job
from bot_cli.runtime.engine import ExecutionEngine


class Scheduler:
    def __init__(self) -> None:
        self.queued: list[Job] = []
        self.answered: list[Job] = []
        self.engine: ExecutionEngine | None = None
        self.sent: list[str] = []  # what went out, in order (type and client id)

    def submit(self, job: Job) -> None:
        self.queued.append(job)

    @property
    def idle(self) -> bool:
        return not self.queued and not self.answered

    async def send(self, i: int) -> None:
        """The i-th queued job goes out now; its answer waits."""
        assert self.engine is not None
        job = self.queued.pop(i)
        await self.engine.send(job)
        self.sent.append(f"{type(job.cmd).__name__} {job.key}")
        self.answered.append(job)

    def answer(self, i: int) -> None:
        """The i-th answer reaches the engine now."""
        assert self.engine is not None
        self.engine.complete(self.answered.pop(i))
        self.engine.flush()

    async def step(self, rng: random.Random) -> bool:
        """One random move: a send or an answer. False when nothing is in flight."""
        if self.idle:
            return False
        if self.queued and (not self.answered or rng.random() < 0.5):
            await self.send(rng.randrange(len(self.queued)))
        else:
            self.answer(rng.randrange(len(self.answered)))
        return True

    async def drain(self, rng: random.Random, bound: int = 500) -> None:
        for _ in range(bound):
            if not await self.step(rng):
                return
        raise AssertionError(f"jobs never drained: {[j.key for j in self.queued + self.answered]}")
