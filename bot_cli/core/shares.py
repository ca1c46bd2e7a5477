"""Which part of a symbol's net position is each entry's (pure).

Binance nets every entry on a symbol (and position side) into one position, so the
exchange cannot say whose share a reduction took. Each entry holds at most its own
share (fills minus what its own legs and closes executed). What the position lacks
is charged first to entries with a leg that vanished unseen (most likely it fired),
then to the newest entries: the oldest exposure is the last one assumed gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from bot_cli.core.model import Pending, PendingId, PositionSide, Side


def allocate(
    entries: Iterable[Pending], symbol: str, position_side: PositionSide, amount: Decimal
) -> dict[PendingId, Decimal]:
    """Each live entry on (symbol, position_side) -> the part of ``amount`` that is its."""
    holders = [
        p for p in entries
        if not p.status.terminal and p.spec.symbol == symbol and p.spec.position_side is position_side
    ]
    out: dict[PendingId, Decimal] = {}
    for side in Side:
        left = max(amount if side is Side.BUY else -amount, Decimal(0))
        group = sorted(
            (p for p in holders if p.spec.side is side),
            key=lambda p: (p.verify_share, p.created_at, p.pending_id),
        )
        for p in group:
            out[p.pending_id] = min(p.share, left)
            left -= out[p.pending_id]
    return out


def shortfall(entries: Iterable[Pending], symbol: str, position_side: PositionSide, amount: Decimal) -> Decimal:
    """How much of the entries' shares the position lacks (0 when every share is there)."""
    entries = list(entries)
    given = allocate(entries, symbol, position_side, amount)
    held = {p.pending_id: p.share for p in entries if p.pending_id in given}
    return sum((held[pid] - given[pid] for pid in given), Decimal(0))
