"""The paper account's margin: settings changes and the checks an order must pass.

Cross and isolated positions draw on the one USDT wallet alike (the venue does not liquidate);
the margin type changes what the position shapes report and is refused while the symbol has a
position or open orders, as on Binance.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core.model import PositionSide, Side
from bot_cli.paper import account, leverage, shapes_account
from bot_cli.paper.ledger import Ledger
from bot_cli.paper.leverage import Setting
from bot_cli.paper.records import Order, Position
from bot_cli.paper.rules import BookError, NewOrder


def set_leverage(book: Ledger, symbol: str, value: int, now: int) -> Setting:
    """POST /fapi/v1/leverage: 1 up to the symbol's first bracket; the position must still fit."""
    book.check_now(now)
    if not 1 <= value <= leverage.max_leverage(symbol):
        raise BookError(-4028, f"Leverage {value} is not valid")
    held = sum((abs(p.amount) for p in _positions(book, symbol)), Decimal(0))
    if held * book.mark(symbol, now) > leverage.max_notional(symbol, value):
        raise BookError(-2027, "Exceeded the maximum allowable position at current leverage.")
    setting = replace(book.setting(symbol), leverage=value)
    book.settings[symbol] = setting
    book.emit(shapes_account.config_event(symbol, value, now))
    return setting


def set_margin_type(book: Ledger, symbol: str, isolated: bool, now: int) -> None:
    """POST /fapi/v1/marginType: refused when unchanged, or with open orders or a position."""
    book.check_now(now)
    setting = book.setting(symbol)
    if setting.isolated == isolated:
        raise BookError(-4046, "No need to change margin type.")
    if book.open_orders(symbol) or book.open_algos(symbol):
        raise BookError(-4047, "Margin type cannot be changed if there exists open orders.")
    if any(p.amount for p in _positions(book, symbol)):
        raise BookError(-4048, "Margin type cannot be changed if there exists position.")
    book.settings[symbol] = replace(setting, isolated=isolated)
    book.dirty = True


def position_margin(book: Ledger, now: int) -> Decimal:
    """Initial margin of every open position at its symbol's leverage."""
    return sum(
        (
            abs(p.amount) * book.mark(p.symbol, now) / book.setting(p.symbol).leverage
            for p in book.positions.values()
            if p.amount
        ),
        Decimal(0),
    )


def maint_total(book: Ledger, now: int) -> Decimal:
    """Maintenance margin of every open position, in its bracket."""
    return sum(
        (
            leverage.maint_margin(p.symbol, abs(p.amount) * book.mark(p.symbol, now))
            for p in book.positions.values()
            if p.amount
        ),
        Decimal(0),
    )


def order_margin(book: Ledger) -> Decimal:
    """Initial margin held by resting orders that may open a position."""
    return sum((_order_im(book, o) for o in book.open_orders()), Decimal(0))


def available(book: Ledger, now: int) -> Decimal:
    """Margin balance less the initial margin of positions and resting orders."""
    upnl = sum(
        (shapes_account.unrealized(p, book.mark(p.symbol, now)) for p in book.positions.values()),
        Decimal(0),
    )
    return book.balance + upnl - position_margin(book, now) - order_margin(book)


def check_order(book: Ledger, req: NewOrder, ps: PositionSide, mark: Decimal, now: int) -> None:
    """-2027 when the side's notional would pass the bracket, -2019 when margin is short."""
    opening = _opening_qty(book, req, ps)
    if opening <= 0:
        return
    price = req.price if req.type == "LIMIT" else mark
    lev = book.setting(req.symbol).leverage
    resting = sum(
        (o.remaining for o in book.open_orders(req.symbol) if o.side is req.side), Decimal(0)
    )
    side_qty = opening + resting + _held_on(book, req.symbol, req.side, ps)
    if side_qty * price > leverage.max_notional(req.symbol, lev):
        raise BookError(-2027, "Exceeded the maximum allowable position at current leverage.")
    if opening * price / lev > available(book, now):
        raise BookError(-2019, "Margin is insufficient.")


def _opening_qty(book: Ledger, req: NewOrder, ps: PositionSide) -> Decimal:
    """How much of the order may open or grow a position (a closing part needs no margin)."""
    if account.closes(req.side, ps, req.reduce_only):
        return Decimal(0)
    if ps is not PositionSide.BOTH:
        return req.quantity
    return max(Decimal(0), req.quantity - book.room(req.symbol, req.side, ps))


def _order_im(book: Ledger, o: Order) -> Decimal:
    if o.type != "LIMIT" or account.closes(o.side, o.position_side, o.reduce_only):
        return Decimal(0)
    opening = o.remaining
    if o.position_side is PositionSide.BOTH:
        opening = max(Decimal(0), opening - book.room(o.symbol, o.side, o.position_side))
    return opening * o.price / book.setting(o.symbol).leverage


def _held_on(book: Ledger, symbol: str, side: Side, ps: PositionSide) -> Decimal:
    """The position quantity an order on ``side`` would add to (same direction only)."""
    amount = book.position(symbol, ps).amount
    return max(Decimal(0), amount if side is Side.BUY else -amount)


def _positions(book: Ledger, symbol: str) -> list[Position]:
    return [p for p in book.positions.values() if p.symbol == symbol]
