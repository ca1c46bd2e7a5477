"""The paper exchange's state machine (no I/O; time is always passed in).

It holds both books (matching-engine orders and Algo Service conditional orders), the positions
and the USDT wallet, and answers the requests of the REST API. Every change a client could see
appends Binance-shaped user-stream events to ``events`` and sets ``dirty``; the caller persists
the state and only then answers or pushes the events (``drain``).

Matching and triggering as time passes live in ``matching.advance``; ``Book.advance`` is its
entry point. Requests always ``advance`` to ``now`` first, so they see the state of that moment.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide, Side
from bot_cli.paper import account, shapes
from bot_cli.paper.leverage import Setting
from bot_cli.paper.market import SYMBOLS, PricePath
from bot_cli.paper.records import Algo, Funding, Order, Position, Trade
from bot_cli.paper.rules import BookError, NewAlgo, NewOrder, check_algo, check_order

START_BALANCE = Decimal(10000)
MAX_OPEN_ORDERS = 200  # per symbol (MAX_NUM_ORDERS)
MAX_OPEN_ALGOS = 200  # across symbols, since 2025-12-29
RETENTION_MS = 3 * 24 * 3600 * 1000  # terminal orders and trades are forgotten after this


class Book:
    """Orders, algo orders, positions and the wallet of the one paper account."""

    def __init__(self, path: PricePath, now_ms: int) -> None:
        self.path = path
        self.orders: dict[int, Order] = {}
        self.algos: dict[int, Algo] = {}
        self.positions: dict[tuple[str, PositionSide], Position] = {}
        self.trades: list[Trade] = []
        self.funding: list[Funding] = []  # FUNDING_FEE payments, for GET /fapi/v1/income
        self.settings: dict[str, Setting] = {}  # leverage and margin type, per symbol
        self.multi_assets = False
        self.balance = START_BALANCE
        self.dual = False
        self.last_ms = now_ms
        self.next_order_id = 1_000_001
        self.next_algo_id = 3_000_001
        self.next_trade_id = 500_001
        self.next_tran_id = 9_000_001
        self.events: list[dict[str, Any]] = []
        self.dirty = False
        self._open_orders: dict[int, Order] = {}  # indexes, so ticks never scan history
        self._open_algos: dict[int, Algo] = {}

    # --- time -------------------------------------------------------------------------------

    def advance(self, to_ms: int) -> None:
        """Process the price path up to ``to_ms``: fill limits, trigger algo orders, and settle
        funding at every funding time passed (the book as of that moment pays it)."""
        from bot_cli.paper import funding
        from bot_cli.paper.matching import advance

        for at in funding.times_between(self.last_ms, to_ms):
            advance(self, at)
            funding.settle(self, at)
        advance(self, to_ms)

    def mark(self, symbol: str, t_ms: int) -> Decimal:
        return self.path.price_at(symbol, t_ms)

    def set_price(self, symbol: str, price: Decimal, now: int) -> Decimal:
        if symbol not in SYMBOLS:
            raise BookError(-1121, "Invalid symbol.")
        if price <= 0:
            raise BookError(-4001, "Price less than 0.")
        self.advance(now)
        self.dirty = True
        return self.path.set_price(symbol, price, now)

    def drain(self) -> list[dict[str, Any]]:
        """Take the pending events and clear ``dirty`` (call after persisting)."""
        events, self.events = self.events, []
        self.dirty = False
        return events

    # --- regular orders ---------------------------------------------------------------------

    def new_order(self, req: NewOrder, now: int) -> tuple[Order, Order]:
        """Accept an order: (its state when accepted, its state after any immediate fill)."""
        self.advance(now)
        ps = self._position_side(req.position_side)
        mark = self.mark(req.symbol, now)
        check_order(req, mark)
        from bot_cli.paper import margin

        margin.check_order(self, req, ps, mark, now)
        cid = req.client_id or f"paper-{self.next_order_id}"
        if any(o.client_id == cid for o in self._open_orders.values()):
            raise BookError(-4116, "clientOrderId is duplicated.")
        if sum(o.symbol == req.symbol for o in self._open_orders.values()) >= MAX_OPEN_ORDERS:
            raise BookError(-2025, "Reach max open order limit.")
        closing = account.closes(req.side, ps, req.reduce_only)
        if req.type == "MARKET" and closing and self.room(req.symbol, req.side, ps) <= 0:
            raise BookError(-2022, "ReduceOnly Order is rejected.")
        order = Order(
            req.symbol, self.new_order_id(), cid, req.side, req.type, req.type, ps, req.quantity,
            now, now, price=req.price, reduce_only=req.reduce_only,
            time_in_force=req.time_in_force,
        )  # fmt: skip
        self.put_order(order)
        self.emit(shapes.order_event(order, x="NEW", t=now, notional=self.notional(order.symbol)))
        if req.type == "MARKET":
            from bot_cli.paper.matching import fill

            fill(self, order, order.quantity, mark, now, maker=False)
        return order, self.orders[order.order_id]

    def query_order(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        if order_id is None and client_id is None:
            raise BookError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            found = self.orders.get(order_id)
            if (
                found is None
                or found.symbol != symbol
                or (client_id and found.client_id != client_id)
            ):
                raise BookError(-2013, "Order does not exist.")
            return found
        matches = [
            o for o in self.orders.values() if o.symbol == symbol and o.client_id == client_id
        ]
        if not matches:
            raise BookError(-2013, "Order does not exist.")
        return max(matches, key=lambda o: (o.is_open, o.order_id))  # the open one, else the newest

    def cancel_order(
        self, symbol: str, order_id: int | None, client_id: str | None, now: int
    ) -> Order:
        self.advance(now)
        try:
            order = self.query_order(symbol, order_id, client_id)
        except BookError as err:
            if err.code == -2013:
                raise BookError(-2011, "Unknown order sent.") from None
            raise
        if not order.is_open:
            raise BookError(-2011, "Unknown order sent.")
        order = self.put_order(replace(order, status=OrderStatus.CANCELED, update_time=now))
        self.emit(shapes.order_event(order, x="CANCELED", t=now, notional=self.notional(symbol)))
        return order

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._open_orders.values() if symbol in (None, o.symbol)]

    # --- algo orders ------------------------------------------------------------------------

    def new_algo(self, req: NewAlgo, now: int) -> Algo:
        self.advance(now)
        ps = self._position_side(req.position_side)
        check_algo(req)
        if (
            req.close_position
            and ps is not PositionSide.BOTH
            and not account.closes(req.side, ps, False)
        ):
            raise BookError(
                -1128,
                "Combination of optional parameters invalid: "
                f"closePosition with {req.side.value}/{ps.value}.",
            )
        cid = req.client_id or f"paperalgo-{self.next_algo_id}"
        if any(a.client_id == cid for a in self._open_algos.values()):
            raise BookError(-4116, "clientOrderId is duplicated.")
        if len(self._open_algos) >= MAX_OPEN_ALGOS:
            raise BookError(-4045, "Reach max stop order limit.")
        algo = Algo(
            0, cid, req.symbol, req.side, ps, req.type, req.quantity, req.trigger_price, now, now,
            close_position=req.close_position, reduce_only=req.reduce_only,
            working_type=req.working_type, price_protect=req.price_protect,
            time_in_force=req.time_in_force,
        )  # fmt: skip
        if algo.triggered_by(self.mark(req.symbol, now)):
            raise BookError(-2021, "Order would immediately trigger.")
        algo = self.put_algo(replace(algo, algo_id=self.new_algo_id()))
        self.emit(shapes.algo_event(algo, now))
        return algo

    def query_algo(self, algo_id: int | None, client_id: str | None) -> Algo:
        if algo_id is None and client_id is None:
            raise BookError(
                -1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!"
            )
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
        self.advance(now)
        try:
            algo = self.query_algo(algo_id, client_id)
        except BookError as err:
            if err.code == -2013:
                raise BookError(-2011, "Unknown order sent.") from None
            raise
        if not algo.is_open:
            raise BookError(-2011, "Unknown order sent.")
        algo = self.put_algo(replace(algo, status=AlgoStatus.CANCELED, update_time=now))
        self.emit(shapes.algo_event(algo, now))
        return algo

    def open_algos(self, symbol: str | None = None) -> list[Algo]:
        return [a for a in self._open_algos.values() if symbol in (None, a.symbol)]

    # --- account ----------------------------------------------------------------------------

    def set_dual(self, dual: bool, now: int) -> None:
        self.advance(now)
        if dual == self.dual:
            raise BookError(-4059, "No need to change position side.")
        if self._open_orders or self._open_algos:
            raise BookError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(p.amount for p in self.positions.values()):
            raise BookError(-4068, "Position side cannot be changed if there exists position.")
        self.dual = dual
        self.dirty = True

    def setting(self, symbol: str) -> Setting:
        return self.settings.get(symbol) or Setting()

    def position(self, symbol: str, ps: PositionSide) -> Position:
        return self.positions.get((symbol, ps)) or Position(symbol, ps)

    def position_sides(self) -> tuple[PositionSide, ...]:
        return (PositionSide.LONG, PositionSide.SHORT) if self.dual else (PositionSide.BOTH,)

    def room(self, symbol: str, side: Side, ps: PositionSide) -> Decimal:
        return account.room(self.positions.get((symbol, ps)), side)

    def notional(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Open (bid, ask) notional of the symbol's resting orders, for the b/a event fields."""
        resting = self.open_orders(symbol)
        bid = sum((o.price * o.remaining for o in resting if o.side is Side.BUY), Decimal(0))
        ask = sum((o.price * o.remaining for o in resting if o.side is Side.SELL), Decimal(0))
        return bid, ask

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

    # --- bookkeeping ------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.dirty = True

    def put_order(self, order: Order) -> Order:
        self.orders[order.order_id] = order
        if order.is_open:
            self._open_orders[order.order_id] = order
        else:
            self._open_orders.pop(order.order_id, None)
        self.dirty = True
        return order

    def put_algo(self, algo: Algo) -> Algo:
        self.algos[algo.algo_id] = algo
        if algo.is_open:
            self._open_algos[algo.algo_id] = algo
        else:
            self._open_algos.pop(algo.algo_id, None)
        self.dirty = True
        return algo

    def new_order_id(self) -> int:
        self.next_order_id += 1
        return self.next_order_id - 1

    def new_algo_id(self) -> int:
        self.next_algo_id += 1
        return self.next_algo_id - 1

    def new_tran_id(self) -> int:
        self.next_tran_id += 1
        return self.next_tran_id - 1

    def new_trade_id(self) -> int:
        self.next_trade_id += 1
        return self.next_trade_id - 1

    def _position_side(self, sent: PositionSide | None) -> PositionSide:
        """The order's position side, or -4061 when it does not fit the account's mode."""
        ps = sent or PositionSide.BOTH
        if (ps is PositionSide.BOTH) == self.dual:
            raise BookError(-4061, "Order's position side does not match user's setting.")
        return ps
