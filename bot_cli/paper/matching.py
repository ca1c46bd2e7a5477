"""Time passing on the paper account: limit fills, algo triggers, funding and countdowns.

``advance`` walks the price path in 100 ms steps. Within one whole second the path is monotone
(see ``market``), so a second in which no resting order's price or trigger lies inside the
price range of that second is skipped without stepping: hours of downtime with a few resting
orders catch up in well under a second, and a symbol with nothing resting is not looked at.
A trailing stop is stepped through a second only if it could activate or fire in it (its
pull-back measured from the highest extreme the second could make); a second in which it only
makes a new extreme is skipped too, the extreme set to the second's high (low), which is what
stepping would have left. So an open trailing stop costs what a resting limit does.
At every funding time passed, the account as of that moment pays or receives its funding; at
every countdownCancelAll deadline passed, the symbol's open orders are cancelled then (after
the step at that instant, before any later one), so an order past its deadline never fills.
A countdown is a stop of the walk, not a reason to step: it costs nothing between deadlines.

Fills are deterministic: a crossed LIMIT fills at its own price, at most 40% of its original
quantity per step (so one crossing gives 2-3 fills on consecutive steps); a triggered algo
order fills completely at the step's price. What a fill does to the account is the ledger's
(``Ledger.fill``); this module only decides when and how much. It drives the ledger; nothing
it drives calls back into it.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, Decimal

from bot_cli.core.model import AlgoStatus, Side
from bot_cli.paper import account, funding, shapes
from bot_cli.paper.ledger import Ledger
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import Algo, Order


STEP_MS = 100
CHUNK = Decimal("0.4")  # largest share of an order's original quantity filled in one step


def advance(book: Ledger, to_ms: int) -> None:
    """Bring the account to ``to_ms``: fill limits, trigger algo orders, settle funding at every
    funding time passed (the account as of that moment pays it), and end every countdown whose
    deadline is passed, at its deadline."""
    while (at := _next_stop(book)) <= to_ms:
        pay = at == funding.next_time(book.last_ms)
        _walk(book, at)
        if pay:
            funding.settle(book, at)
        for symbol in sorted(s for s, deadline in book.countdowns.items() if deadline <= at):
            book.countdown_ends(symbol, at)
    _walk(book, to_ms)


def _next_stop(book: Ledger) -> int:
    """The next funding time or countdown deadline after ``last_ms`` (one already passed: now)."""
    deadline = min(book.countdowns.values(), default=None)
    pay_at = funding.next_time(book.last_ms)
    return pay_at if deadline is None else min(pay_at, max(deadline, book.last_ms))


def _walk(book: Ledger, to_ms: int) -> None:
    """Process every step in (book.last_ms, to_ms]; quiet seconds are skipped whole."""
    while book.last_ms < to_ms:
        hot = _hot_symbols(book)
        if not hot:
            book.last_ms = to_ms
            return
        seg_end = min(to_ms, (book.last_ms // 1000 + 1) * 1000)
        first = (book.last_ms // STEP_MS + 1) * STEP_MS  # the segment's first step, if any
        active = []
        for symbol in hot if first <= seg_end else []:
            span = _span(book, symbol, first, seg_end)
            if _may_act(book, symbol, span):
                active.append(symbol)
            else:
                _follow(book, symbol, span)
        t = first
        while active and t <= seg_end:
            for symbol in active:
                _step(book, symbol, t)
            t += STEP_MS
        book.last_ms = seg_end


def _hot_symbols(book: Ledger) -> list[str]:
    symbols = {o.symbol for o in book.open_orders() if o.type == "LIMIT"}
    symbols.update(a.symbol for a in book.open_algos())
    return sorted(symbols)


def _span(book: Ledger, symbol: str, first: int, end: int) -> tuple[Decimal, Decimal]:
    """(lowest, highest) price of ``symbol`` over the steps from ``first`` to ``end`` (within
    one second, where the path is monotone: the extremes are at the first and the last step)."""
    a, b = book.mark(symbol, first), book.mark(symbol, end // STEP_MS * STEP_MS)
    return min(a, b), max(a, b)


def _may_act(book: Ledger, symbol: str, span: tuple[Decimal, Decimal]) -> bool:
    """Could a resting order of ``symbol`` fill, trigger, or start or end trailing at a step of
    the span? (A trailing stop's extreme alone moving is no reason to step: see ``_follow``.)"""
    lo, hi = span
    for o in book.open_orders(symbol):
        if o.type == "LIMIT" and _crosses(o, lo if o.side is Side.BUY else hi):
            return True
    for al in book.open_algos(symbol):
        if al.is_trailing and _may_trail(al, lo, hi):
            return True
        if not al.is_trailing and (al.triggered_by(lo) or al.triggered_by(hi)):
            return True
    return False


def _may_trail(algo: Algo, lo: Decimal, hi: Decimal) -> bool:
    """Could the trailing stop activate or fire at a step whose prices lie in [lo, hi]? To fire
    at a step, the price must come back from the extreme as it is at that step, which is at most
    the extreme seen before the span or its far end: a check that never misses one."""
    near, far = (lo, hi) if algo.side is Side.SELL else (hi, lo)
    if not algo.activated:
        return algo.activates_at(far)
    return algo.fires_at(near, algo.followed(far))


def _follow(book: Ledger, symbol: str, span: tuple[Decimal, Decimal]) -> None:
    """A span in which nothing acts: each activated trailing stop's extreme takes the span's
    high (a SELL) or low (a BUY), exactly as stepping through it would have left it."""
    lo, hi = span
    for algo in book.open_algos(symbol):
        if algo.is_trailing and algo.activated:
            extreme = algo.followed(hi if algo.side is Side.SELL else lo)
            if extreme != algo.extreme:
                book.put_algo(replace(algo, extreme=extreme))


def _crosses(order: Order, price: Decimal) -> bool:
    return price <= order.price if order.side is Side.BUY else price >= order.price


def _step(book: Ledger, symbol: str, t: int) -> None:
    price = book.mark(symbol, t)
    for order in sorted(book.open_orders(symbol), key=lambda o: o.order_id):
        if order.type == "LIMIT" and _crosses(order, price):
            book.fill(order, _chunk(order), order.price, t, maker=True)
    for listed in sorted(book.open_algos(symbol), key=lambda a: a.algo_id):
        algo = book.algos[listed.algo_id]  # as it is now: one fired before may have ended it
        if not algo.is_open:
            continue
        if algo.is_trailing:
            _trail(book, algo, price, t)
        elif algo.triggered_by(price):
            trigger(book, algo, price, t)


def _trail(book: Ledger, algo: Algo, price: Decimal, t: int) -> None:
    """One step of a trailing stop: it activates (ALGO_UPDATE NEW, ``ia`` true), or follows a
    new extreme, or fires at a price ``callbackRate`` percent back from the extreme."""
    trailing = algo.activated  # one that activates at this step does not fire at it
    algo = book.trail(algo, price, t)
    if trailing and algo.fires_at(price):
        trigger(book, algo, price, t)


def _chunk(order: Order) -> Decimal:
    step = SYMBOLS[order.symbol].step_size
    chunk = (order.quantity * CHUNK / step).to_integral_value(rounding=ROUND_DOWN) * step
    return min(max(chunk, step), order.remaining)


def trigger(book: Ledger, algo: Algo, price: Decimal, t: int) -> None:
    """The algo order fires: TRIGGERED (``ai`` set), a MARKET child fills at once, FINISHED."""
    qty = _trigger_qty(book, algo)
    if qty <= 0:  # nothing to reduce: the service expires it rather than open a position
        _refuse(book, algo, t, "Reduce Only reject")
        return
    fired = replace(algo, status=AlgoStatus.TRIGGERED, trigger_time=t, update_time=t,
                    actual_order_id=book.new_order_id())  # fmt: skip
    book.emit(shapes.algo_event(book.put_algo(fired), t))
    child = book.fill(_child(book, fired, qty, t), qty, price, t, maker=False)
    done = replace(fired, status=AlgoStatus.FINISHED, update_time=t, actual_qty=child.executed,
                   actual_price=child.avg_price)  # fmt: skip
    book.emit(shapes.algo_event(book.put_algo(done), t))


def _trigger_qty(book: Ledger, algo: Algo) -> Decimal:
    """closePosition: the whole position side; reduce-only: clipped to it; else the quantity."""
    room = book.room(algo.symbol, algo.side, algo.position_side)
    if algo.close_position:
        return room
    if account.closes(algo.side, algo.position_side, algo.reduce_only):
        return min(algo.quantity, room)
    return algo.quantity


def _child(book: Ledger, algo: Algo, qty: Decimal, t: int) -> Order:
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


def _refuse(book: Ledger, algo: Algo, t: int, reason: str) -> None:
    """The service gives up on a fired algo order (EXPIRED, with ``rm``); no child order."""
    algo = replace(algo, status=AlgoStatus.EXPIRED, update_time=t, trigger_time=t, reason=reason)
    book.emit(shapes.algo_event(book.put_algo(algo), t))
