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

from bot_cli.core.model import Pending, PendingId, PositionKey, PositionSide, Side, Status


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
            key=_share_order,
        )
        for p in group:
            out[p.pending_id] = min(p.share, left)
            left -= out[p.pending_id]
    return out


def charge(
    entries: Iterable[Pending], key: PositionKey, side: Side, quantity: Decimal, *, taker: PendingId
) -> dict[PendingId, Decimal]:
    """Whose share ``quantity`` closed by ``taker``'s orders beyond its own fills took, by the
    share rule (``allocate``'s order, from its end: an entry whose leg vanished unseen, then the
    newest); an entry never gives more than its share plus what a position read already took
    from it unexplained (that loss may be this one, seen first). What no entry had is left out."""
    group = sorted(
        (p for p in entries
         if not p.status.terminal and p.key == key and p.spec.side is side and p.pending_id != taker
         and _room(p) > 0),
        key=_share_order, reverse=True,
    )  # fmt: skip
    out: dict[PendingId, Decimal] = {}
    left = quantity
    for p in group:
        if left <= 0:
            break
        out[p.pending_id] = min(_room(p), left)
        left -= out[p.pending_id]
    return out


def _share_order(p: Pending) -> tuple[bool, int, str]:
    """The share rule's order: shares are given first to entries nothing is in doubt about,
    oldest first; what is lacking is charged from the end."""
    return p.verify_share, p.created_at, p.pending_id


def _room(p: Pending) -> Decimal:
    return p.share + p.unexplained


def shortfall(entries: Iterable[Pending], symbol: str, position_side: PositionSide, amount: Decimal) -> Decimal:
    """How much of the entries' shares the position lacks (0 when every share is there)."""
    entries = list(entries)
    given = allocate(entries, symbol, position_side, amount)
    held = {p.pending_id: p.share for p in entries if p.pending_id in given}
    return sum((held[pid] - given[pid] for pid in given), Decimal(0))


def unclaimed(
    entries: Iterable[Pending], symbol: str, position_side: PositionSide, amount: Decimal
) -> tuple[Side, Decimal] | None:
    """The part of a position no entry holds or may still fill into, and its direction.

    A position larger than the entries explain is not the bot's (a trade by hand, or an entry
    that filled unseen): nothing protects it. An entry order still working (or in doubt) may
    have filled into the position before its report arrives, so its unfilled rest counts as
    explained; an entry not sent yet (REQUESTED) explains nothing."""
    if amount == 0:
        return None
    side = Side.BUY if amount > 0 else Side.SELL
    mine = [
        p for p in entries
        if not p.status.terminal and p.spec.symbol == symbol and p.spec.position_side is position_side
        and p.spec.side is side and p.status is not Status.REQUESTED
    ]  # fmt: skip
    held = sum((p.share for p in mine), Decimal(0))
    may = sum((p.spec.quantity - p.filled_qty for p in mine if not p.entry_done), Decimal(0))
    excess = abs(amount) - held - may
    return (side, excess) if excess > 0 else None
