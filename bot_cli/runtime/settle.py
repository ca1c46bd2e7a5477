"""Let an engine's scheduled checks run to the end, for one-shot commands."""

from __future__ import annotations

import asyncio
import time

from bot_cli.runtime.engine import ExecutionEngine


async def settle(engine: ExecutionEngine, limit_s: float, tick_s: float = 0.2) -> int:
    """Run due checks until none is left or limit_s passed; returns how many are left."""
    end = time.monotonic() + limit_s
    while engine.timers and time.monotonic() < end:
        await engine.run_due_checks()
        await asyncio.sleep(tick_s)
    return len(engine.timers)
