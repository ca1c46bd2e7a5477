"""Funding of the paper account: every 8 hours (00:00, 08:00, 16:00 UTC) each open position
pays or receives ``position notional at the mark x funding rate``.

The rate is Binance's usual fixed 0.01 % per period (the mark is also the index, so there is no
premium to move it): longs pay, shorts receive. A payment moves the wallet, is kept for
GET /fapi/v1/income, and is pushed as an ACCOUNT_UPDATE with reason FUNDING_FEE.
"""

from __future__ import annotations

from decimal import Decimal

from bot_cli.paper import shapes_account
from bot_cli.paper.ledger import Ledger
from bot_cli.paper.records import Funding, Position


PERIOD_MS = 8 * 3600 * 1000
RATE = Decimal("0.0001")
_EIGHT = Decimal("0.00000001")


def next_time(now: int) -> int:
    """The first funding time after ``now``."""
    return (now // PERIOD_MS + 1) * PERIOD_MS


def fee(pos: Position, mark: Decimal) -> Decimal:
    """What the position receives (negative: pays) at one funding time."""
    return (-pos.amount * mark * RATE).quantize(_EIGHT)


def settle(book: Ledger, at: int) -> None:
    """Pay the funding of every open position at ``at``; one ACCOUNT_UPDATE per position."""
    for pos in sorted(
        (p for p in book.positions.values() if p.amount),
        key=lambda p: (p.symbol, p.position_side.value),
    ):
        mark = book.mark(pos.symbol, at)
        amount = fee(pos, mark)
        if not amount:
            continue
        book.balance += amount
        book.funding.append(Funding(book.new_tran_id(), pos.symbol, amount, at))
        isolated = book.setting(pos.symbol).isolated
        # Binance lists the position only for an isolated one (its wallet moved)
        rows = [(pos, mark, book.setting(pos.symbol))] if isolated else []
        book.emit(shapes_account.account_event(book.balance, amount, rows, at, reason="FUNDING_FEE"))
