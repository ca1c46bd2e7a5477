"""Time passing in the paper book: limit fills, algo triggers, position and wallet updates.

``advance`` walks the price path in 100 ms steps. Within one whole second the path is monotone
(see ``market``), so a second in which no resting order's price or trigger lies inside the
price range of that second is skipped without stepping: hours of downtime with a few resting
orders catch up in well under a second, and a symbol with nothing resting is not looked at.

Fills are deterministic: a crossed LIMIT fills at its own price, at most 40% of its original
quantity per step (so one crossing gives 2-3 fills on consecutive steps); a MARKET order or a
triggered algo order fills completely at the step's price. An order that may only reduce a
position (reduceOnly, closePosition, or the closing side in hedge mode) is clipped to the
position and expired when nothing is left to reduce: it never increases or flips a position.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, Decimal

from bot_cli.core.model import AlgoStatus, OrderStatus, Side
from bot_cli.paper import account, shapes
from bot_cli.paper.book import Book
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import Algo, Order, Trade

STEP_MS = 100
CHUNK = Decimal("0.4")  # largest share of an order's original quantity filled in one step


def advance(book: Book, to_ms: int) -> None:
    """Process every step in (book.last_ms, to_ms]; quiet seconds are skipped whole."""
    while book.last_ms < to_ms:
        hot = _hot_symbols(book)
        if not hot:
            book.last_ms = to_ms
            return
        seg_end = min(to_ms, (book.last_ms // 1000 + 1) * 1000)
        active = [s for s in hot if _may_act(book, s, book.last_ms, seg_end)]
        t = (book.last_ms // STEP_MS + 1) * STEP_MS
        while active and t <= seg_end:
            for symbol in active:
                _step(book, symbol, t)
            t += STEP_MS
        book.last_ms = seg_end


def _hot_symbols(book: Book) -> list[str]:
    symbols = {o.symbol for o in book.open_orders() if o.type == "LIMIT"}
    symbols.update(a.symbol for a in book.open_algos())
    return sorted(symbols)


def _may_act(book: Book, symbol: str, start: int, end: int) -> bool:
    """Could a resting order of ``symbol`` fill or trigger in (start, end] (within one second)?"""
    a, b = book.mark(symbol, start), book.mark(symbol, end)
    lo, hi = min(a, b), max(a, b)
    for o in book.open_orders(symbol):
        if o.type == "LIMIT" and _crosses(o, lo if o.side is Side.BUY else hi):
            return True
    return any(al.triggered_by(lo) or al.triggered_by(hi) for al in book.open_algos(symbol))


def _crosses(order: Order, price: Decimal) -> bool:
    return price <= order.price if order.side is Side.BUY else price >= order.price


def _step(book: Book, symbol: str, t: int) -> None:
    price = book.mark(symbol, t)
    for order in sorted(book.open_orders(symbol), key=lambda o: o.order_id):
        if order.type == "LIMIT" and _crosses(order, price):
            fill(book, order, _chunk(order), order.price, t, maker=True)
    for algo in sorted(book.open_algos(symbol), key=lambda a: a.algo_id):
        if algo.triggered_by(price):
            trigger(book, algo, price, t)


def _chunk(order: Order) -> Decimal:
    step = SYMBOLS[order.symbol].step_size
    chunk = (order.quantity * CHUNK / step).to_integral_value(rounding=ROUND_DOWN) * step
    return min(max(chunk, step), order.remaining)


def fill(book: Book, order: Order, qty: Decimal, price: Decimal, t: int, *, maker: bool) -> Order:
    """Fill ``qty`` of ``order`` at ``price`` (clipped if it may only reduce); emit the events."""
    clipped = qty
    if account.closes(order.side, order.position_side, order.reduce_only):
        clipped = min(qty, book.room(order.symbol, order.side, order.position_side))
        if clipped <= 0:
            return _expire(book, order, t)
    trade = _trade(book, order, clipped, price, t, maker)
    executed = order.executed + clipped
    status = OrderStatus.FILLED if executed >= order.quantity else OrderStatus.PARTIALLY_FILLED
    order = book.put_order(replace(order, executed=executed, status=status, update_time=t,
                                   cum_quote=order.cum_quote + clipped * price))  # fmt: skip
    book.emit(shapes.order_event(order, x="TRADE", t=t, last_qty=clipped, last_price=price,
                                 trade=trade, notional=book.notional(order.symbol)))  # fmt: skip
    pos = book.position(order.symbol, order.position_side)
    change = trade.realized_pnl - trade.commission
    book.emit(
        shapes.account_event(book.balance, change, [(pos, price, book.setting(pos.symbol))], t)
    )
    if clipped < qty:
        return _expire(book, order, t)  # nothing left to reduce: the rest would increase or flip
    return order


def _trade(book: Book, order: Order, qty: Decimal, price: Decimal, t: int, maker: bool) -> Trade:
    pos, realized = account.apply_fill(
        book.position(order.symbol, order.position_side), order.side, qty, price, t
    )
    book.positions[(pos.symbol, pos.position_side)] = pos
    fee = account.commission(qty, price, maker)
    book.balance += realized - fee
    trade = Trade(
        book.new_trade_id(), order.symbol, order.order_id, order.side, order.position_side,
        price, qty, fee, realized, maker, t,
    )  # fmt: skip
    book.trades.append(trade)
    return trade


def _expire(book: Book, order: Order, t: int) -> Order:
    order = book.put_order(replace(order, status=OrderStatus.EXPIRED, update_time=t))
    book.emit(
        shapes.order_event(
            order, x="EXPIRED", t=t, notional=book.notional(order.symbol), expiry_reason="4"
        )
    )
    return order


def trigger(book: Book, algo: Algo, price: Decimal, t: int) -> None:
    """The algo order fires: TRIGGERED (``ai`` set), a MARKET child fills at once, FINISHED."""
    qty = _trigger_qty(book, algo)
    if qty <= 0:  # nothing to reduce: the service expires it rather than open a position
        _refuse(book, algo, t, "Reduce Only reject")
        return
    fired = replace(algo, status=AlgoStatus.TRIGGERED, trigger_time=t, update_time=t,
                    actual_order_id=book.new_order_id())  # fmt: skip
    book.emit(shapes.algo_event(book.put_algo(fired), t))
    child = fill(book, _child(book, fired, qty, t), qty, price, t, maker=False)
    done = replace(fired, status=AlgoStatus.FINISHED, update_time=t, actual_qty=child.executed,
                   actual_price=child.avg_price)  # fmt: skip
    book.emit(shapes.algo_event(book.put_algo(done), t))


def _trigger_qty(book: Book, algo: Algo) -> Decimal:
    """closePosition: the whole position side; reduce-only: clipped to it; else the quantity."""
    room = book.room(algo.symbol, algo.side, algo.position_side)
    if algo.close_position:
        return room
    if account.closes(algo.side, algo.position_side, algo.reduce_only):
        return min(algo.quantity, room)
    return algo.quantity


def _child(book: Book, algo: Algo, qty: Decimal, t: int) -> Order:
    """The matching-engine order of a fired algo order, accepted (NEW) at ``t``."""
    # It carries the algo's client id (what nautilus and banbot expect); link by ai first.
    child = Order(
        algo.symbol, algo.actual_order_id, algo.client_id, algo.side, "MARKET", algo.order_type,
        algo.position_side, qty, t, t, reduce_only=algo.reduce_only or algo.close_position,
        close_position=algo.close_position, stop_price=algo.trigger_price, algo_id=algo.algo_id,
    )  # fmt: skip
    book.put_order(child)
    book.emit(shapes.order_event(child, x="NEW", t=t, notional=book.notional(algo.symbol)))
    return child


def _refuse(book: Book, algo: Algo, t: int, reason: str) -> None:
    """The service gives up on a fired algo order (EXPIRED, with ``rm``); no child order."""
    algo = replace(algo, status=AlgoStatus.EXPIRED, update_time=t, trigger_time=t, reason=reason)
    book.emit(shapes.algo_event(book.put_algo(algo), t))
