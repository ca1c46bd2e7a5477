"""The dead-man switch's shell: reads, sends and remembers what core.deadman decides.

Every TICK_S it looks at the journal in memory; a symbol whose entry order starts working is
armed within a tick, renewals go out every quarter of the countdown, and a symbol with no
working entry is turned off. Before a symbol is armed or renewed, its regular open orders are
read (weight 1) so orders that are not the bot's are seen. The symbols armed are written to
``deadman.json`` in the state dir: a daemon started after a crash turns off what the last one
armed and no longer needs. A failed call is tried again at the next tick (or after the
exchange's Retry-After); three renewals can fail before a countdown runs out.

A stop, clean or not, leaves the countdowns running: the resting entries nobody watches are
cancelled unless a daemon is back within the countdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot_cli.core import deadman as dm
from bot_cli.core.admission import foreign
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.store.atomic import replace_durable
from bot_cli.venue import Countdown, Unavailable, VenueError


log = logging.getLogger("bot_cli.deadman")
NAME = "deadman.json"
TICK_S = 0.25
FAILED_AGAIN_MS = 1_000


class DeadmanSwitch:
    def __init__(self, engine: ExecutionEngine, switch: dm.Switch) -> None:
        self.engine, self.switch = engine, switch
        self.armed: dict[str, int] = {}  # symbol -> when its countdown was last set (ms)
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, str] = {}  # symbol -> the last failure, until a call succeeds
        self._foreign: dict[str, int] = {}
        self._not_before: dict[str, int] = {}  # symbol -> no call before this (after a failure)
        self.path = Path(engine.store.path) / NAME
        self.armed = dict.fromkeys(_load(self.path), 0)  # a past run's: renewed or turned off now

    @property
    def venue(self) -> Countdown | None:
        venue = self.engine.venue
        return venue if isinstance(venue, Countdown) else None

    async def run(self) -> None:
        if self.venue is None:
            return
        if not self.switch.allowed and self.switch.countdown_ms > 0:
            log.warning("dead-man switch: %s", self.switch.why_not, extra={"event": "deadman_off"})
        while True:
            await self.step()
            await asyncio.sleep(TICK_S)

    async def step(self) -> None:
        """One look: read where needed, decide, send."""
        now = self.engine.clock.now_ms()
        wanted = dm.working_symbols(self.engine.state.values())
        for symbol in sorted(wanted):
            if dm.due(symbol, self.armed, now, self.switch) and self._may_call(symbol, now):
                await self._read_foreign(symbol)
        plan = dm.plan(wanted, self._foreign, self.armed, now, self.switch)
        self._say_skipped(plan.skipped)
        before = set(self.armed)
        sends = [(s, self.switch.countdown_ms) for s in plan.arm] + [(s, 0) for s in plan.disarm]
        for symbol, countdown_ms in sends:
            if self._may_call(symbol, now):
                await self._set(symbol, countdown_ms)
        if set(self.armed) != before:
            self._save()

    def _may_call(self, symbol: str, now: int) -> bool:
        """Not before the Retry-After (or the second) a failed call of this symbol asked for."""
        return now >= self._not_before.get(symbol, 0)

    async def _read_foreign(self, symbol: str) -> None:
        if self.switch.include_foreign or not self.switch.allowed or self.switch.countdown_ms <= 0:
            return  # nothing to decide on it
        try:
            orders = await self.engine.venue.open_orders(symbol)
        except VenueError as err:
            self._failed(symbol, f"reading its open orders: {err}", err)
            return
        self._foreign[symbol] = foreign(orders, set(self.engine.state))

    async def _set(self, symbol: str, countdown_ms: int) -> None:
        venue = self.venue
        assert venue is not None
        try:
            await venue.countdown_cancel_all(symbol, countdown_ms)
        except VenueError as err:
            self._failed(symbol, f"{'renewing' if countdown_ms else 'turning off'} its countdown: {err}", err)
            return
        self.errors.pop(symbol, None)
        if countdown_ms:
            if symbol not in self.armed or not self.armed[symbol]:
                log.info("dead-man switch armed on %s: resting entries are cancelled %gs after the last renewal",
                         symbol, countdown_ms / 1000, extra={"symbol": symbol, "event": "deadman_armed"})
            self.armed[symbol] = self.engine.clock.now_ms()
        else:
            log.info("dead-man switch off on %s: no entry order rests there", symbol,
                     extra={"symbol": symbol, "event": "deadman_disarmed"})
            self.armed.pop(symbol, None)

    def _failed(self, symbol: str, what: str, err: VenueError) -> None:
        wait_ms = max(FAILED_AGAIN_MS, int(err.retry_after * 1000) if isinstance(err, Unavailable) else 0)
        self._not_before[symbol] = self.engine.clock.now_ms() + wait_ms
        if self.errors.get(symbol) != what:
            log.warning("dead-man switch on %s: %s; trying again in %.0fs", symbol, what, wait_ms / 1000,
                        extra={"symbol": symbol, "event": "deadman_failed"})
        self.errors[symbol] = what

    def _say_skipped(self, skipped: Mapping[str, str]) -> None:
        """Log a symbol's reason when it is new (the switch's own "off" is said once at start)."""
        for symbol, why in skipped.items():
            if self.skipped.get(symbol) != why and self.switch.allowed and self.switch.countdown_ms > 0:
                log.warning("dead-man switch not armed on %s: %s", symbol, why,
                            extra={"symbol": symbol, "event": "deadman_skipped"})
        self.skipped = dict(skipped)

    def _save(self) -> None:
        try:
            replace_durable(self.path, json.dumps({"armed": sorted(self.armed)}).encode())
        except OSError as err:  # the next start may leave a countdown running: harmless, said
            log.warning("dead-man switch: %s not written: %s", self.path, err)

    def describe(self) -> dict[str, Any]:
        """For the heartbeat (`bot status`, the live view, the metrics)."""
        return {
            "countdown_s": self.switch.countdown_ms / 1000, "allowed": self.switch.allowed,
            "why_not": self.switch.why_not, "basis": self.switch.basis, "armed": dict(sorted(self.armed.items())),
            "skipped": dict(sorted(self.skipped.items())), "errors": dict(sorted(self.errors.items())),
        }


def _load(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        log.warning("dead-man switch: %s unreadable (%s): countdowns a past run armed are left to run out", path, err)
        return []
    armed = data.get("armed") if isinstance(data, dict) else None
    return [s for s in armed if isinstance(s, str)] if isinstance(armed, list) else []
