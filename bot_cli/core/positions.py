"""A position read, judged against the entries' shares (pure): a share moves only on proof.

Binance nets every entry on a symbol (and position side) into one position, and cannot say whose
share a reduction took. An entry's share is its fills minus what its own legs and closes
executed, as the exchange reported them; a position read never moves it on its own. A read
short of the shares is believed only when

1. the orders on that position have settled: no leg in flight, fired or being cancelled, no
   market close unanswered (any of them may be the reduction, by an amount not reported yet);
2. and a fresh read, ``position_confirm_ms`` later, still shows the same amount (a read that
   lags a fill shows less than is there).

Then the shortfall is charged (``PositionReport``): first to entries whose leg vanished unseen
(``verify_share``: it most likely fired), then to the newest; an entry never gives more than its
own share. Until then nothing is charged, nothing cancelled for it. A position larger than the
entries explain is not theirs to charge: it is unclaimed (core.shares.unclaimed).

``judge`` is the one place this is decided, for the daemon's live reads and for reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot_cli.core import events as ev
from bot_cli.core.model import UNSETTLED, Millis, Pending, PendingId, PositionKey
from bot_cli.core.shares import allocate


__all__ = ["Verdict", "judge", "judge_all", "on_key", "settled"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a read of one position means for the entries on it.

    ``events``: per entry, what to tell it (a confirmed share, or "read again later").
    ``suspect``: the amount to confirm with the next read (None: nothing to confirm).
    ``shortfall``: how much of the shares the read lacks (0: it agrees)."""

    events: dict[PendingId, ev.Event] = field(default_factory=dict)
    suspect: Decimal | None = None
    shortfall: Decimal = Decimal(0)
    settled: bool = True

    @property
    def charged(self) -> bool:
        return any(isinstance(e, ev.PositionReport) for e in self.events.values())


def on_key(entries: Iterable[Pending], key: PositionKey) -> list[Pending]:
    """The live entries whose shares are part of this position."""
    return [p for p in entries if not p.status.terminal and p.key == key]


def settled(p: Pending, fresh_at: Millis | None = None) -> bool:
    """Nothing of ``p`` can change the position by an amount not known yet (Pending.settled);
    legs and closes stamped at ``fresh_at`` are decided but not sent yet, so they cannot."""
    if fresh_at is None:
        return p.settled
    close = p.close is None or p.close.sent_at >= fresh_at
    return close and not any(x.state in UNSETTLED and x.sent_at < fresh_at for x in p.protections)


def judge(
    entries: Iterable[Pending], key: PositionKey, amount: Decimal, suspect: Decimal | None,
    fresh_at: Millis | None = None,
) -> Verdict:
    """A read of ``amount`` on ``key``; ``suspect`` is the amount an earlier read, short of the
    shares, showed (None if none did). ``fresh_at``: see ``settled``."""
    mine = on_key(entries, key)
    given = allocate(mine, key[0], key[1], amount)
    short = sum((p.share - given[p.pending_id] for p in mine), Decimal(0))
    waiting = [p for p in mine if p.verify_share]
    if short <= 0:  # the shares are all there: those waiting on the read learn theirs
        return Verdict({p.pending_id: ev.PositionReport(p.pending_id, given[p.pending_id]) for p in waiting})
    if not all(settled(p, fresh_at) for p in mine):
        return Verdict(_again(waiting), None, short, settled=False)
    if suspect != amount:
        return Verdict(_again(waiting), amount, short)
    return Verdict({p.pending_id: ev.PositionReport(p.pending_id, given[p.pending_id]) for p in mine}, None, short)


def judge_all(
    entries: Iterable[Pending], positions: Mapping[PositionKey, Decimal], suspects: Mapping[PositionKey, Decimal],
    fresh_at: Millis | None = None,
) -> dict[PositionKey, Verdict]:
    """``judge`` for every position an entry holds a share of (a missing one reads flat)."""
    live = list(entries)
    keys = {p.key for p in live if not p.status.terminal}
    return {
        k: judge(live, k, positions.get(k, Decimal(0)), suspects.get(k), fresh_at) for k in sorted(keys, key=_order)
    }


def _again(waiting: list[Pending]) -> dict[PendingId, ev.Event]:
    return {p.pending_id: ev.PositionUnconfirmed(p.pending_id) for p in waiting}


def _order(key: PositionKey) -> tuple[str, str]:
    return key[0], key[1].value
