"""Positions in doubt: reads short of the entries' shares that nothing has proven yet.

core.positions.judge says what a read means; this keeps what a verdict leaves open between
reads: the amount a fresh read must confirm (``suspects``), and when each position must be read
again (``rechecks``): once its orders have settled, or ``position_confirm_ms`` after a first
read short of the shares. The engine reads a due, settled position through one of its entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from bot_cli.core.model import Millis, Pending, PendingId, Policy, PositionKey
from bot_cli.core.positions import Verdict, on_key
from bot_cli.core.reconcile import Plan, recheck_times


class Doubts:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.suspects: dict[PositionKey, Decimal] = {}  # position reads short of the shares, to confirm
        self.rechecks: dict[PositionKey, Millis] = {}  # positions to read again from then, once settled

    def note(self, key: PositionKey, verdict: Verdict, now: Millis) -> None:
        """What to remember of a verdict: the amount to confirm, and when to read again."""
        self.suspects.pop(key, None)
        self.rechecks.pop(key, None)
        if verdict.suspect is not None:
            self.suspects[key] = verdict.suspect
        self.rechecks.update(recheck_times({key: verdict}, now, self.policy))

    def planned(self, plan: Plan) -> None:
        """A reconcile that read the positions judged every one an entry holds: its word stands."""
        self.suspects, self.rechecks = dict(plan.suspects), dict(plan.rechecks)

    def next_at(self, entries: Iterable[Pending]) -> list[Millis]:
        live = list(entries)
        return [at for key, at in self.rechecks.items() if settled(live, key)]

    def due(self, entries: Iterable[Pending], now: Millis) -> list[tuple[PositionKey, PendingId]]:
        """The positions to read now, each with the entry whose read carries it (forgotten here)."""
        live, out = list(entries), []
        for key, at in list(self.rechecks.items()):
            holders = on_key(live, key)
            if not holders:
                del self.rechecks[key]
            elif at <= now and settled(holders, key):
                del self.rechecks[key]
                out.append((key, holders[0].pending_id))
        return out

    def describe(self) -> list[dict[str, str]]:
        """For the heartbeat: each position in doubt and what it waits for."""
        return [
            {"symbol": symbol, "position_side": side.value, "read": str(self.suspects.get((symbol, side), "")),
             "waiting_for": "a fresh read" if (symbol, side) in self.suspects else "its orders to settle"}
            for symbol, side in sorted(self.rechecks, key=lambda k: (k[0], k[1].value))
        ]


def settled(entries: Iterable[Pending], key: PositionKey) -> bool:
    return all(p.settled for p in on_key(entries, key))
