"""One position per symbol and side: an entry must not net against another entry's share.

Binance keeps one position per symbol (one-way mode) or per symbol and position side (hedge
mode). A SELL entry while a BUY entry holds a share of the same position does not open a
second position: it reduces the first, behind its stop-loss and take-profit, and neither
entry's share means anything any more. So an entry in the other direction on the same
position is refused while an entry there still holds a share or may still fill.

Binance has no one-cancels-other either: the bot cancels an entry's other leg once one fires,
and until that cancel lands both may execute. Alone on its position that is harmless (a
reduce-only leg never executes more than the position); with another entry on the same
position the second leg closes that entry's share at a price nobody chose. So by default
(``stacking`` off) an entry in the same direction is refused too while another entry is live
on that position: it holds a share, may still fill, or has legs still to cancel. With
``stacking`` on, entries share a position knowingly and their legs are exact (core.protect).

Of two requests not sent yet, the earlier one wins (by creation time, then id): the later
one is refused when it is claimed, the earlier one goes ahead.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot_cli.core.model import EntrySpec, Pending, PositionSide, Status


__all__ = ["netted_by", "netting_refusal"]


def netted_by(
    spec: EntrySpec, entries: Iterable[Pending], me: Pending | None = None, *, stacking: bool = False
) -> Pending | None:
    """The first live entry in the way of ``spec``, or None: one it would net against, or
    (``stacking`` off) any live entry on the same position.

    ``me`` is the entry being claimed for ``spec`` (skipped, and so are requests after it).
    An earlier request counts only if it would go ahead itself: requests are decided in order."""
    on_it = sorted((p for p in entries if _same_position(spec, p.spec)), key=_order)
    return _first_in_way(spec, on_it, me, stacking)


def _first_in_way(spec: EntrySpec, on_it: list[Pending], me: Pending | None, stacking: bool) -> Pending | None:
    for other in on_it:
        if me is not None and (other.pending_id == me.pending_id or _later_request(other, me)):
            continue
        if not _in_way(spec, other, stacking):
            continue
        if other.status is Status.REQUESTED and _first_in_way(other.spec, on_it, other, stacking) is not None:
            continue  # refused itself when its turn comes
        return other
    return None


def _in_way(spec: EntrySpec, other: Pending, stacking: bool) -> bool:
    if other.spec.side is not spec.side:
        return _may_hold(other)
    return not stacking and not other.status.terminal


def netting_refusal(
    spec: EntrySpec, entries: Iterable[Pending], me: Pending | None = None, *, stacking: bool = False
) -> str | None:
    """Why ``spec`` is refused, in one line naming the entry in the way and what to do; or None."""
    other = netted_by(spec, entries, me, stacking=stacking)
    if other is None:
        return None
    o = other.spec
    where = "in one-way mode" if o.position_side is PositionSide.BOTH else f"on position side {o.position_side.value}"
    head = f"{o.symbol} already has a {o.side.value} entry {other.pending_id} ({other.status.value}) {where}"
    if o.side is spec.side:
        return (f"{head}: a second entry on one position could have its share closed by the other's leg"
                f" (Binance has no OCO); wait until it is flat, close it (`bot close {other.pending_id}`),"
                f" or set [protection] stacking = true to stack entries knowingly")
    return (f"{head}: a {spec.side.value} entry would net against its share; close it first"
            f" (`bot close {other.pending_id}`) or wait until it is flat")


def _order(p: Pending) -> tuple[int, str]:
    return p.created_at, p.pending_id


def _later_request(other: Pending, me: Pending) -> bool:
    return other.status is Status.REQUESTED and _order(other) > _order(me)


def _same_position(a: EntrySpec, b: EntrySpec) -> bool:
    return a.symbol == b.symbol and a.position_side is b.position_side


def _may_hold(p: Pending) -> bool:
    """It holds a share, or its entry order may still fill (or might have: it needs a person)."""
    if p.status.terminal:
        return False
    return p.share > 0 or not p.entry_done or p.status is Status.NEEDS_ATTENTION
