"""Position arithmetic of the paper account (pure): fills move positions and realize PnL."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core.model import PositionSide, Side
from bot_cli.paper.records import Position


MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")
_EIGHT = Decimal("0.00000001")


def apply_fill(
    pos: Position, side: Side, qty: Decimal, price: Decimal, t: int
) -> tuple[Position, Decimal]:
    """The position after a fill, and the PnL it realized (closing part only)."""
    signed = qty if side is Side.BUY else -qty
    amount = pos.amount
    if amount == 0 or (amount > 0) == (signed > 0):
        new_amount = amount + signed
        entry = (abs(amount) * pos.entry_price + qty * price) / abs(new_amount)
        return replace(
            pos, amount=new_amount, entry_price=entry.quantize(_EIGHT), update_time=t
        ), Decimal(0)
    closing = min(abs(amount), qty)
    realized = (closing * (price - pos.entry_price) * (1 if amount > 0 else -1)).quantize(_EIGHT)
    new_amount = amount + signed
    if new_amount == 0:
        entry = Decimal(0)
    elif (new_amount > 0) == (amount > 0):
        entry = pos.entry_price  # reduced, not flipped: the rest keeps its entry
    else:
        entry = price  # flipped: the new side opened at this fill
    moved = replace(
        pos, amount=new_amount, entry_price=entry, realized=pos.realized + realized, update_time=t
    )
    return moved, realized


def closes(side: Side, position_side: PositionSide, reduce_only: bool) -> bool:
    """Does this order only ever reduce a position (and so must be clipped to it)?"""
    if position_side is PositionSide.LONG:
        return side is Side.SELL
    if position_side is PositionSide.SHORT:
        return side is Side.BUY
    return reduce_only


def room(pos: Position | None, side: Side) -> Decimal:
    """How much a closing order on ``side`` may fill without increasing or flipping ``pos``."""
    amount = pos.amount if pos else Decimal(0)
    return max(Decimal(0), amount if side is Side.SELL else -amount)


def commission(qty: Decimal, price: Decimal, maker: bool) -> Decimal:
    return (qty * price * (MAKER_FEE if maker else TAKER_FEE)).quantize(_EIGHT)
