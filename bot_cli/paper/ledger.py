"""The paper account's records and the bookkeeping every change goes through (no I/O, no clock).

``Ledger`` holds both books (matching-engine orders and Algo Service conditional orders), the
positions, the trades, the funding payments, the settings and the USDT wallet, at one instant
(``last_ms``). Every change a client could see goes through ``put_order``/``put_algo``/``emit``:
the Binance-shaped user-stream events pile up in ``events`` and ``dirty`` is set; the caller
persists the state and only then answers or pushes the events (``drain``).

A fill is bookkeeping too (``fill``): it moves the order, the position and the wallet, records
the trade and emits ORDER_TRADE_UPDATE and ACCOUNT_UPDATE; a fill that leaves every position of
its symbol flat expires the symbol's open GTE_GTC algo orders. *When* something fills is decided
elsewhere: by ``book`` for a MARKET order (at once), by ``matching`` as time passes. The same
split holds for a countdownCancelAll that ends (``countdown_ends``): ``matching`` decides when.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide, Side
from bot_cli.paper import account, shapes, shapes_account
from bot_cli.paper.leverage import Setting
from bot_cli.paper.market import PricePath
from bot_cli.paper.records import GTE_GTC, Algo, Funding, Order, Position, Trade


START_BALANCE = Decimal(10000)


class Ledger:
    """Orders, algo orders, positions, trades and the wallet of the one paper account."""

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
        self.last_ms = now_ms  # the instant the records describe
        self.next_order_id = 1_000_001
        self.next_algo_id = 3_000_001
        self.next_trade_id = 500_001
        self.next_tran_id = 9_000_001
        # countdownCancelAll: symbol -> the instant its open regular orders are cancelled
        self.countdowns: dict[str, int] = {}
        # the fault switch of that name (the venue sets it from its faults before advancing)
        self.countdown_cancels_algo = False
        self.events: list[dict[str, Any]] = []
        self.dirty = False
        self._open_orders: dict[int, Order] = {}  # indexes, so ticks never scan history
        self._open_algos: dict[int, Algo] = {}

    def check_now(self, now: int) -> None:
        """Refuse to act ahead of the ledger's instant: what happened up to ``now`` is not applied."""
        if now > self.last_ms:
            raise RuntimeError(
                f"the paper book is at {self.last_ms} ms, a request came for {now}: "
                "bring it to now first (matching.advance)"
            )

    # --- reads ------------------------------------------------------------------------------

    def mark(self, symbol: str, t_ms: int) -> Decimal:
        return self.path.price_at(symbol, t_ms)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._open_orders.values() if symbol in (None, o.symbol)]

    def open_algos(self, symbol: str | None = None) -> list[Algo]:
        return [a for a in self._open_algos.values() if symbol in (None, a.symbol)]

    def setting(self, symbol: str) -> Setting:
        return self.settings.get(symbol) or Setting()

    def position(self, symbol: str, ps: PositionSide) -> Position:
        return self.positions.get((symbol, ps)) or Position(symbol, ps)

    def position_sides(self) -> tuple[PositionSide, ...]:
        return (PositionSide.LONG, PositionSide.SHORT) if self.dual else (PositionSide.BOTH,)

    def room(self, symbol: str, side: Side, ps: PositionSide) -> Decimal:
        return account.room(self.positions.get((symbol, ps)), side)

    def flat(self, symbol: str) -> bool:
        """No position on either side of ``symbol``."""
        return not any(p.amount for (s, _), p in self.positions.items() if s == symbol)

    def notional(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Open (bid, ask) notional of the symbol's resting orders, for the b/a event fields."""
        resting = self.open_orders(symbol)
        bid = sum((o.price * o.remaining for o in resting if o.side is Side.BUY), Decimal(0))
        ask = sum((o.price * o.remaining for o in resting if o.side is Side.SELL), Decimal(0))
        return bid, ask

    # --- bookkeeping ------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.dirty = True

    def drain(self) -> list[dict[str, Any]]:
        """Take the pending events and clear ``dirty`` (call after persisting)."""
        events, self.events = self.events, []
        self.dirty = False
        return events

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

    # --- fills ------------------------------------------------------------------------------

    def fill(self, order: Order, qty: Decimal, price: Decimal, t: int, *, maker: bool) -> Order:
        """Fill ``qty`` of ``order`` at ``price`` (clipped if it may only reduce); emit the events.

        An order that may only reduce a position (reduceOnly, closePosition, or the closing side
        in hedge mode) is clipped to the position and expired when nothing is left to reduce: it
        never increases or flips a position.
        """
        clipped = qty
        if account.closes(order.side, order.position_side, order.reduce_only):
            clipped = min(qty, self.room(order.symbol, order.side, order.position_side))
            if clipped <= 0:
                return self.expire(order, t)
        trade = self._trade(order, clipped, price, t, maker)
        executed = order.executed + clipped
        status = OrderStatus.FILLED if executed >= order.quantity else OrderStatus.PARTIALLY_FILLED
        order = self.put_order(replace(
            order, executed=executed, status=status, update_time=t, cum_quote=order.cum_quote + clipped * price
        ))  # fmt: skip
        self.emit(shapes.order_event(order, x="TRADE", t=t, last_qty=clipped, last_price=price, trade=trade,
                                     notional=self.notional(order.symbol)))  # fmt: skip
        pos = self.position(order.symbol, order.position_side)
        change = trade.realized_pnl - trade.commission
        self.emit(shapes_account.account_event(self.balance, change, [(pos, price, self.setting(pos.symbol))], t))
        if clipped < qty:
            order = self.expire(order, t)  # nothing left to reduce: the rest would increase or flip
        if self.flat(order.symbol):
            self._expire_gte(order.symbol, t)
        return order

    def expire(self, order: Order, t: int) -> Order:
        """The order ends EXPIRED (``er`` 4: a reduce-only order with nothing left to reduce)."""
        order = self.put_order(replace(order, status=OrderStatus.EXPIRED, update_time=t))
        notional = self.notional(order.symbol)
        self.emit(shapes.order_event(order, x="EXPIRED", t=t, notional=notional, expiry_reason="4"))
        return order

    def cancel(self, order: Order, t: int) -> Order:
        """The open order ends CANCELED (a client's cancel, or a countdown that ended)."""
        order = self.put_order(replace(order, status=OrderStatus.CANCELED, update_time=t))
        self.emit(shapes.order_event(order, x="CANCELED", t=t, notional=self.notional(order.symbol)))
        return order

    def end_algo(self, algo: Algo, status: AlgoStatus, t: int) -> Algo:
        """The open algo order ends untriggered (CANCELED or EXPIRED): one ALGO_UPDATE."""
        algo = self.put_algo(replace(algo, status=status, update_time=t))
        self.emit(shapes.algo_event(algo, t))
        return algo

    def trail(self, algo: Algo, price: Decimal, t: int) -> Algo:
        """An open trailing stop sees ``price`` at ``t``: it activates there (ALGO_UPDATE NEW,
        ``ia`` true), or takes it as a new extreme (no event), or stays as it is. Whether it
        fires is ``matching``'s to decide."""
        if not algo.activated:
            if not algo.activates_at(price):
                return algo
            algo = self.put_algo(replace(algo, activated=True, extreme=price, update_time=t))
            self.emit(shapes.algo_event(algo, t))
            return algo
        extreme = algo.followed(price)
        return algo if extreme == algo.extreme else self.put_algo(replace(algo, extreme=extreme))

    def countdown_ends(self, symbol: str, t: int) -> None:
        """The symbol's countdownCancelAll ends at ``t``: its open regular orders are cancelled,
        and its algo orders too while ``countdown_cancels_algo`` is on; the countdown is gone."""
        self.countdowns.pop(symbol, None)
        self.dirty = True
        for order in sorted(self.open_orders(symbol), key=lambda o: o.order_id):
            self.cancel(order, t)
        if self.countdown_cancels_algo:
            for algo in sorted(self.open_algos(symbol), key=lambda a: a.algo_id):
                self.end_algo(algo, AlgoStatus.CANCELED, t)

    def _expire_gte(self, symbol: str, t: int) -> None:
        """Every position of ``symbol`` is closed: its open GTE_GTC algo orders expire."""
        for algo in sorted(self.open_algos(symbol), key=lambda a: a.algo_id):
            if algo.time_in_force == GTE_GTC:
                self.end_algo(algo, AlgoStatus.EXPIRED, t)

    def _trade(self, order: Order, qty: Decimal, price: Decimal, t: int, maker: bool) -> Trade:
        pos, realized = account.apply_fill(self.position(order.symbol, order.position_side), order.side, qty, price, t)
        self.positions[(pos.symbol, pos.position_side)] = pos
        fee = account.commission(qty, price, maker)
        self.balance += realized - fee
        trade = Trade(
            self.new_trade_id(), order.symbol, order.order_id, order.side, order.position_side,
            price, qty, fee, realized, maker, t,
        )  # fmt: skip
        self.trades.append(trade)
        return trade
