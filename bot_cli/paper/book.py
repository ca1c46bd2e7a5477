"""The paper exchange's requests, at one instant (no I/O, no clock; time is always passed in).

``Book`` is the ``Ledger`` plus what a request does to it: accept or refuse a new order or algo
order (with Binance's codes), look one up, cancel one, arm a symbol's countdownCancelAll,
change the position mode or a price, and forget old records. A MARKET order fills at once, at
the price of that instant.

The book never moves time itself: ``matching.advance`` brings it to ``now`` (filling resting
orders and triggering algo orders on the way), and a request must be made at that instant or
later, never ahead of it (``RuntimeError``: a caller's bug, not a client's). The venue advances
before every request, so a request sees the state of its moment.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from bot_cli.core.model import AlgoStatus, PositionSide
from bot_cli.paper import account, margin, shapes
from bot_cli.paper.ledger import START_BALANCE, Ledger
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import TRAILING, Algo, Order
from bot_cli.paper.rules import BookError, NewAlgo, NewOrder, check_algo, check_order, illegal_integer


__all__ = ["MAX_OPEN_ALGOS", "MAX_OPEN_ORDERS", "RETENTION_MS", "START_BALANCE", "Book"]

MAX_OPEN_ORDERS = 200  # per symbol (MAX_NUM_ORDERS)
MAX_OPEN_ALGOS = 200  # across symbols, since 2025-12-29
RETENTION_MS = 3 * 24 * 3600 * 1000  # terminal orders and trades are forgotten after this
NO_SUCH_ORDER = -2013  # "Order does not exist." (a query's answer)


class Book(Ledger):
    """The one paper account, answering requests at the instant it has been brought to."""

    def set_price(self, symbol: str, price: Decimal, now: int) -> Decimal:
        """Re-anchor ``symbol``'s price path at ``price`` (rounded to the tick) from ``now``; its
        trailing stops see that price at once (``Ledger.trail``)."""
        if symbol not in SYMBOLS:
            raise BookError(-1121, "Invalid symbol.")
        if price <= 0:
            raise BookError(-4001, "Price less than 0.")
        self.check_now(now)
        self.dirty = True
        price = self.path.set_price(symbol, price, now)
        # a price set is a price the market had: trailing stops see it even when it is set again
        # before the next step (they fire at a step, as every trigger does)
        for algo in sorted(self.open_algos(symbol), key=lambda a: a.algo_id):
            if algo.is_trailing:
                self.trail(algo, price, now)
        return price

    # --- regular orders ---------------------------------------------------------------------

    def new_order(self, req: NewOrder, now: int) -> tuple[Order, Order]:
        """Accept an order: (its state when accepted, its state after any immediate fill)."""
        self.check_now(now)
        ps = self._position_side(req.position_side)
        mark = self.mark(req.symbol, now)
        cid = req.client_id or f"paper-{self.next_order_id}"
        self._check_new_order(req, cid, ps, mark, now)
        order = Order(
            req.symbol, self.new_order_id(), cid, req.side, req.type, req.type, ps, req.quantity, now, now,
            price=req.price, reduce_only=req.reduce_only, time_in_force=req.time_in_force,
        )  # fmt: skip
        self.put_order(order)
        self.emit(shapes.order_event(order, x="NEW", t=now, notional=self.notional(order.symbol)))
        if req.type == "MARKET":
            self.fill(order, order.quantity, mark, now, maker=False)
        return order, self.orders[order.order_id]

    def _check_new_order(self, req: NewOrder, cid: str, ps: PositionSide, mark: Decimal, now: int) -> None:
        """The filters, the margin, a unique client id, the open-order limit, reduce-only room."""
        check_order(req, mark)
        margin.check_order(self, req, ps, mark, now)
        if any(o.client_id == cid for o in self._open_orders.values()):
            raise BookError(-4116, "clientOrderId is duplicated.")
        if sum(o.symbol == req.symbol for o in self._open_orders.values()) >= MAX_OPEN_ORDERS:
            raise BookError(-2025, "Reach max open order limit.")
        closing = account.closes(req.side, ps, req.reduce_only)
        if req.type == "MARKET" and closing and self.room(req.symbol, req.side, ps) <= 0:
            raise BookError(-2022, "ReduceOnly Order is rejected.")

    def query_order(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        """By order id (checked against the client id if both are sent), else by client id."""
        if order_id is None and client_id is None:
            raise BookError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id is not None:
            found = self.orders.get(order_id)
            if found is None or found.symbol != symbol or (client_id and found.client_id != client_id):
                raise BookError(-2013, "Order does not exist.")
            return found
        matches = [o for o in self.orders.values() if o.symbol == symbol and o.client_id == client_id]
        if not matches:
            raise BookError(-2013, "Order does not exist.")
        return max(matches, key=lambda o: (o.is_open, o.order_id))  # the open one, else the newest

    def cancel_order(self, symbol: str, order_id: int | None, client_id: str | None, now: int) -> Order:
        self.check_now(now)
        try:
            order = self.query_order(symbol, order_id, client_id)
        except BookError as err:
            raise _unknown_order(err) from None
        if not order.is_open:
            raise BookError(-2011, "Unknown order sent.")
        return self.cancel(order, now)

    def set_countdown(self, symbol: str, countdown_ms: int, now: int) -> None:
        """countdownCancelAll: the symbol's countdown now ends at ``now + countdown_ms`` (the
        one before is replaced); 0 turns it off. ``matching`` cancels when it ends."""
        if symbol not in SYMBOLS:
            raise BookError(-1121, "Invalid symbol.")
        if countdown_ms < 0:
            raise illegal_integer("countdownTime")
        self.check_now(now)
        if countdown_ms:
            self.countdowns[symbol] = now + countdown_ms
        else:
            self.countdowns.pop(symbol, None)
        self.dirty = True

    # --- algo orders ------------------------------------------------------------------------

    def new_algo(self, req: NewAlgo, now: int) -> Algo:
        """Accept a conditional order into the Algo Service (it rests until its trigger)."""
        self.check_now(now)
        ps = self._position_side(req.position_side)
        cid = req.client_id or f"paperalgo-{self.next_algo_id}"
        mark = self.mark(req.symbol, now)
        self._check_new_algo(req, cid, ps, mark)
        algo = Algo(
            0, cid, req.symbol, req.side, ps, req.type, req.quantity, req.trigger_price, now, now,
            close_position=req.close_position, reduce_only=req.reduce_only, working_type=req.working_type,
            price_protect=req.price_protect, time_in_force=req.time_in_force,
            activate_price=_activate_price(req, mark), callback_rate=req.callback_rate,
        )  # fmt: skip
        if self._would_trigger(algo, req, mark):
            raise BookError(-2021, "Order would immediately trigger.")
        algo = self.put_algo(replace(algo, algo_id=self.new_algo_id()))
        self.emit(shapes.algo_event(algo, now))
        if algo.is_trailing and req.activate_price is None:  # trails from the price at placement
            algo = self.put_algo(replace(algo, activated=True, extreme=mark))
            self.emit(shapes.algo_event(algo, now))
        return algo

    @staticmethod
    def _would_trigger(algo: Algo, req: NewAlgo, mark: Decimal) -> bool:
        """A stop already crossed; a trailing SELL whose activatePrice is not above the price
        (a BUY's not below): Binance answers -2021 for both (reference §4.2)."""
        if not algo.is_trailing:
            return algo.triggered_by(mark)
        return req.activate_price is not None and algo.activates_at(mark)

    def _check_new_algo(self, req: NewAlgo, cid: str, ps: PositionSide, mark: Decimal) -> None:
        """The filters, closePosition on the closing side, a unique client id, the algo limit."""
        check_algo(req, mark)
        if req.close_position and ps is not PositionSide.BOTH and not account.closes(req.side, ps, False):
            raise BookError(
                -1128, f"Combination of optional parameters invalid: closePosition with {req.side.value}/{ps.value}."
            )
        if any(a.client_id == cid for a in self._open_algos.values()):
            raise BookError(-4116, "clientOrderId is duplicated.")
        if len(self._open_algos) >= MAX_OPEN_ALGOS:
            raise BookError(-4045, "Reach max stop order limit.")

    def query_algo(self, algo_id: int | None, client_id: str | None) -> Algo:
        """By algo id (checked against the client algo id if both are sent), else by client id."""
        if algo_id is None and client_id is None:
            raise BookError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        if algo_id is not None:
            found = self.algos.get(algo_id)
            if found is None or (client_id and found.client_id != client_id):
                raise BookError(-2013, "Order does not exist.")
            return found
        matches = [a for a in self.algos.values() if a.client_id == client_id]
        if not matches:
            raise BookError(-2013, "Order does not exist.")
        return max(matches, key=lambda a: (a.is_open, a.algo_id))

    def cancel_algo(self, algo_id: int | None, client_id: str | None, now: int) -> Algo:
        self.check_now(now)
        try:
            algo = self.query_algo(algo_id, client_id)
        except BookError as err:
            raise _unknown_order(err) from None
        if not algo.is_open:
            raise BookError(-2011, "Unknown order sent.")
        return self.end_algo(algo, AlgoStatus.CANCELED, now)

    # --- account ----------------------------------------------------------------------------

    def set_dual(self, dual: bool, now: int) -> None:
        """Switch hedge mode (dualSidePosition) on or off: only with no open order or position."""
        self.check_now(now)
        if dual == self.dual:
            raise BookError(-4059, "No need to change position side.")
        if self._open_orders or self._open_algos:
            raise BookError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(p.amount for p in self.positions.values()):
            raise BookError(-4068, "Position side cannot be changed if there exists position.")
        self.dual = dual
        self.dirty = True

    def prune(self, now: int) -> None:
        """Forget terminal orders, algo orders and trades older than RETENTION_MS.

        Binance archives unfilled cancelled/expired orders after 3 days (-2013 afterwards) and
        everything after 90; the paper venue forgets every terminal record after 3 days, so its
        state file (rewritten on every change) stays small on a venue running for weeks.
        """
        cutoff = now - RETENTION_MS
        old = [i for i, o in self.orders.items() if not o.is_open and o.update_time < cutoff]
        old_algos = [i for i, a in self.algos.items() if not a.is_open and a.update_time < cutoff]
        kept = [t for t in self.trades if t.time >= cutoff]
        kept_funding = [f for f in self.funding if f.time >= cutoff]
        if old or old_algos or len(kept) != len(self.trades) or kept_funding != self.funding:
            self.funding = kept_funding
            for order_id in old:
                del self.orders[order_id]
            for algo_id in old_algos:
                del self.algos[algo_id]
            self.trades = kept
            self.dirty = True

    def _position_side(self, sent: PositionSide | None) -> PositionSide:
        """The order's position side, or -4061 when it does not fit the account's mode."""
        ps = sent or PositionSide.BOTH
        if (ps is PositionSide.BOTH) == self.dual:
            raise BookError(-4061, "Order's position side does not match user's setting.")
        return ps


def _activate_price(req: NewAlgo, mark: Decimal) -> Decimal:
    """A trailing stop's activatePrice: the one sent, else the price at placement (Binance:
    "default as the latest price"); 0 for the other types."""
    if req.type != TRAILING:
        return Decimal(0)
    return mark if req.activate_price is None else req.activate_price


def _unknown_order(err: BookError) -> BookError:
    """A cancel of an order the book does not know answers -2011, not the query's -2013."""
    return BookError(-2011, "Unknown order sent.") if err.code == NO_SUCH_ORDER else err
