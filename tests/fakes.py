"""In-memory test doubles: an exchange with Binance's order semantics, and a clock."""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from bot_cli.core.commands import ClosePosition, PlaceEntry, PlaceProtection
from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    Leg,
    OrderReport,
    OrderStatus,
    PositionSide,
    Side,
    Trail,
)
from bot_cli.venue import (
    Duplicate,
    NotFound,
    OutcomeUnknown,
    Positions,
    RateLimited,
    Rejected,
    Unavailable,
    WouldTrigger,
)


class FakeClock:
    def __init__(self, start_ms: int = 1_760_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@dataclass
class FakeAlgo:
    report: AlgoReport
    side: Side
    trail: Trail | None = None  # a trailing stop: it follows ``best`` once activated
    best: Decimal | None = None  # the best price since activation (None: not activated yet)

    def trails_off(self, price: Decimal) -> bool:
        """A trailing stop at ``price``: activate, follow, or fire (True) on the pull-back."""
        assert self.trail is not None
        sell = self.side is Side.SELL
        activate = self.report.trigger_price
        if self.best is None:
            if activate and (price < activate if sell else price > activate):
                return False
            self.best = price
            return False
        self.best = max(self.best, price) if sell else min(self.best, price)
        back = self.trail.callback_pct / 100
        return price <= self.best * (1 - back) if sell else price >= self.best * (1 + back)


_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class FakeExchange:
    """Binance semantics in memory: two books, positions, ids unique among open orders.

    Faults are queued per method: "lost" executes then loses the response (outcome
    unknown), "timeout" loses the request, "would_trigger" answers -2021, "unavailable"
    (503 Service Unavailable) and "429" (rate limited) refuse it as transient, an int
    rejects with that code; a close may also be "expired" (nothing executed) or "partial"
    (half of it executed, the rest expired). ``lag_ms`` (algo orders) and ``order_lag_ms``
    (orders) hide new orders from every read (listings and queries) for that long after
    creation, as a lagging read replica does; ``position_lag_ms`` makes position reads show
    the position as it was that long ago.
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.lag_ms = 0  # algo orders
        self.order_lag_ms = 0  # matching-engine orders
        self.created: dict[ClientId, int] = {}
        # what each leg's child order and each close filled
        self.executed: defaultdict[ClientId, Decimal] = defaultdict(Decimal)
        self.price: dict[str, Decimal] = defaultdict(lambda: Decimal(100))
        self.orders: dict[ClientId, OrderReport] = {}
        self.sides: dict[ClientId, Side] = {}
        self.algos: dict[ClientId, FakeAlgo] = {}
        self.position: dict[tuple[str, PositionSide], Decimal] = defaultdict(Decimal)
        self.position_lag_ms = 0
        self.finish_after_ms = 3_000  # a triggered leg reports FINISHED this long after it triggered
        self._triggered_at: dict[ClientId, int] = {}
        self._moves: list[tuple[int, tuple[str, PositionSide], Decimal]] = []  # when, which, by how much
        self.entries_placed: Counter[ClientId] = Counter()
        self.faults: dict[str, deque[str | int]] = defaultdict(deque)
        self.calls: Counter[str] = Counter()
        self.book_reads: list[tuple[str, str | None]] = []  # (method, symbol or None for all)
        self._ids = 1000

    def fault(self, method: str, *kinds: str | int) -> None:
        self.faults[method].extend(kinds)

    def _fault(self, method: str) -> str | int | None:
        self.calls[method] += 1
        queue = self.faults.get(method)
        kind = queue.popleft() if queue else None
        if kind == "timeout":
            raise OutcomeUnknown("read timeout")
        if kind == "would_trigger":
            raise WouldTrigger("Order would immediately trigger.", -2021)
        if kind == "unavailable":
            raise Unavailable("Service Unavailable.", 0, 0.5)
        if kind == "429":
            raise RateLimited("Too many requests.", -1003, 2.0)
        if kind == "unreachable":
            raise Unavailable("exchange unreachable (ConnectError)", 0, 1.0)
        if isinstance(kind, int):
            raise Rejected("rejected", kind)
        return kind

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- the Venue protocol -----------------------------------------------------------

    async def place_entry(self, cmd: PlaceEntry) -> OrderReport:
        kind = self._fault("place_entry")
        old = self.orders.get(cmd.client_id)
        if old is not None and old.status in _OPEN:
            raise Duplicate("clientOrderId is duplicated", -4116)
        report = OrderReport(
            cmd.symbol, cmd.client_id, self._next_id(), OrderStatus.NEW, Decimal(0), None, cmd.quantity
        )
        self.orders[cmd.client_id] = report
        self.sides[cmd.client_id] = cmd.side
        self.entries_placed[cmd.client_id] += 1
        self.created[cmd.client_id] = self._now()
        if kind == "lost":
            raise OutcomeUnknown("response lost")
        return report

    async def place_protection(self, cmd: PlaceProtection) -> AlgoReport:
        kind = self._fault("place_protection")
        old = self.algos.get(cmd.client_id)
        if old is not None and old.report.status is AlgoStatus.NEW:
            raise Duplicate("clientAlgoId is duplicated", -4116)
        report = AlgoReport(cmd.symbol, cmd.client_id, self._next_id(), AlgoStatus.NEW, cmd.trigger_price, cmd.quantity)
        algo = self.algos[cmd.client_id] = FakeAlgo(report, cmd.side, cmd.trail)
        if cmd.trail is not None:
            algo.trails_off(self.price[cmd.symbol])  # activated at once when it has no activation price
        self.created[cmd.client_id] = self._now()
        if kind == "lost":
            raise OutcomeUnknown("response lost")
        return report

    async def close_position(self, cmd: ClosePosition) -> OrderReport:
        kind = self._fault("close_position")
        key = (cmd.symbol, cmd.position_side)
        held = abs(self.position[key])
        qty = min(cmd.quantity, held)  # reduce-only never flips the position
        qty = {"expired": Decimal(0), "partial": qty / 2}.get(str(kind), qty)
        sign = 1 if cmd.side is Side.BUY else -1
        self._move(key, sign * qty)
        self.executed[cmd.client_id] += qty
        status = OrderStatus.EXPIRED if kind in ("expired", "partial") else OrderStatus.FILLED
        report = OrderReport(cmd.symbol, cmd.client_id, self._next_id(), status, qty, None, cmd.quantity)
        self.orders[cmd.client_id] = report
        if kind == "lost":
            raise OutcomeUnknown("response lost")
        return report

    async def cancel_protection(self, client_id: ClientId) -> None:
        kind = self._fault("cancel_protection")
        algo = self.algos.get(client_id)
        if algo is None or algo.report.status is not AlgoStatus.NEW:
            raise NotFound("Unknown order sent.", -2011)
        algo.report = replace(algo.report, status=AlgoStatus.CANCELED)
        if kind == "lost":
            raise OutcomeUnknown("response lost")

    async def query_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        self._fault("query_order")
        if client_id not in self.orders or not self._visible(client_id, self.order_lag_ms):
            raise NotFound("Order does not exist.", -2013)
        return self.orders[client_id]

    async def cancel_order(self, symbol: str, client_id: ClientId) -> OrderReport:
        self._fault("cancel_order")
        o = self.orders.get(client_id)
        if o is None or o.status not in _OPEN:
            raise NotFound("Unknown order sent.", -2011)
        return self.cancel(client_id)

    async def query_algo(self, client_id: ClientId) -> AlgoReport:
        self._fault("query_algo")
        if client_id not in self.algos or not self._visible(client_id, self.lag_ms):
            raise NotFound("Order does not exist.", -2013)
        triggered = self._triggered_at.get(client_id)
        if triggered is not None and self._now() >= triggered + self.finish_after_ms:
            self.finish(client_id)
        return self.algos[client_id].report

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self._fault("open_orders")
        self.book_reads.append(("open_orders", symbol))
        return [
            o for o in self.orders.values()
            if o.status in _OPEN and self._visible(o.client_id, self.order_lag_ms) and symbol in (None, o.symbol)
        ]

    async def open_algo_orders(self, symbol: str | None = None) -> list[AlgoReport]:
        self._fault("open_algo_orders")
        self.book_reads.append(("open_algo_orders", symbol))
        live = [a.report for cid, a in self.algos.items() if self._visible(cid, self.lag_ms)]
        return [r for r in live if r.status is AlgoStatus.NEW and symbol in (None, r.symbol)]

    async def positions(self) -> Positions:
        self._fault("positions")
        if not self.position_lag_ms:
            return {k: v for k, v in self.position.items() if v != 0}
        seen: defaultdict[tuple[str, PositionSide], Decimal] = defaultdict(Decimal)
        for at, key, delta in self._moves:
            if at <= self._now() - self.position_lag_ms:
                seen[key] += delta
        return {k: v for k, v in seen.items() if v != 0}

    def _move(self, key: tuple[str, PositionSide], delta: Decimal) -> None:
        self.position[key] += delta
        self._moves.append((self._now(), key, delta))

    async def mark_price(self, symbol: str) -> Decimal:
        self._fault("mark_price")
        return self.price[symbol]

    def _now(self) -> int:
        return self.clock.now_ms() if self.clock is not None else 0

    def _visible(self, client_id: ClientId, lag_ms: int) -> bool:
        return self._now() >= self.created.get(client_id, 0) + lag_ms

    # -- the market ------------------------------------------------------------------

    def fill(self, client_id: ClientId, cumulative: Decimal, price: Decimal = Decimal(100)) -> OrderReport:
        """The entry fills up to a cumulative quantity; the position follows."""
        o = self.orders[client_id]
        delta = cumulative - o.filled_qty
        status = OrderStatus.FILLED if cumulative >= o.quantity else OrderStatus.PARTIALLY_FILLED
        self.orders[client_id] = replace(o, status=status, filled_qty=cumulative, avg_price=price)
        sign = 1 if self.sides[client_id] is Side.BUY else -1
        self._move((o.symbol, PositionSide.BOTH), sign * delta)
        return self.orders[client_id]

    def cancel(self, client_id: ClientId) -> OrderReport:
        o = self.orders[client_id]
        self.orders[client_id] = replace(o, status=OrderStatus.CANCELED)
        return self.orders[client_id]

    def move(self, symbol: str, price: Decimal) -> list[AlgoReport]:
        """The mark price moves; every algo order it crosses fires and its child order fills
        what the position still holds (reduce-only), in the order they were placed."""
        self.price[symbol] = price
        fired = []
        for cid, algo in list(self.algos.items()):
            r = algo.report
            if r.symbol != symbol or r.status is not AlgoStatus.NEW:
                continue
            hit = algo.trails_off(price) if algo.trail is not None else _crossed(cid, algo.side, r.trigger_price, price)
            if hit:
                fired.append(self.fire(cid))
        return fired

    def fire(self, client_id: ClientId) -> AlgoReport:
        self.trigger(client_id)
        return self.finish(client_id)

    def trigger(self, client_id: ClientId) -> AlgoReport:
        """The leg triggers and its child order executes; the algo order still says TRIGGERED
        (what it executed is reported once it is FINISHED)."""
        algo = self.algos[client_id]
        r = algo.report
        key = (r.symbol, PositionSide.BOTH)
        held = self.position[key] if algo.side is Side.SELL else -self.position[key]
        qty = max(min(r.quantity, held), Decimal(0))
        self._move(key, -qty if algo.side is Side.SELL else qty)
        self.executed[client_id] += qty
        algo.report = replace(r, status=AlgoStatus.TRIGGERED, actual_order_id=self._next_id())
        self._triggered_at[client_id] = self._now()
        return algo.report

    def finish(self, client_id: ClientId) -> AlgoReport:
        algo = self.algos[client_id]
        algo.report = replace(algo.report, status=AlgoStatus.FINISHED, executed_qty=self.executed[client_id])
        return algo.report

    def expire(self, client_id: ClientId) -> AlgoReport:
        """The exchange cancels a protective order on its own (EXPIRED)."""
        algo = self.algos[client_id]
        algo.report = replace(algo.report, status=AlgoStatus.EXPIRED)
        return algo.report

    def reduce(self, symbol: str, qty: Decimal) -> None:
        """Someone closes part of the position by hand (not one of the bot's orders)."""
        key = (symbol, PositionSide.BOTH)
        step = min(qty, abs(self.position[key]))
        self._move(key, -step if self.position[key] > 0 else step)

    def live_protections(self, pending_id: str, leg: Leg) -> list[AlgoReport]:
        out = []
        for cid, algo in self.algos.items():
            parsed = parse_client_id(cid)
            ours = parsed is not None and parsed.pending_id == pending_id and parsed.leg is leg
            if ours and algo.report.status is AlgoStatus.NEW:
                out.append(algo.report)
        return out


def _crossed(client_id: ClientId, side: Side, trigger: Decimal, price: Decimal) -> bool:
    """STOP_MARKET SELL fires at or below its trigger, TAKE_PROFIT_MARKET SELL at or above."""
    parsed = parse_client_id(client_id)
    stop = parsed is not None and parsed.leg is Leg.SL
    below = (side is Side.SELL) == stop
    return price <= trigger if below else price >= trigger


class QuietView:
    """A daemon view that shows nothing (runtime.driver.View)."""

    def recovered(self, *_: Any) -> None: ...
    def message(self, *_: Any) -> None: ...
    def note(self, *_: Any, **__: Any) -> None: ...

