"""Typed values of the domain. Frozen, slotted, Decimal for money and quantities."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NewType


PendingId = NewType("PendingId", str)
ClientId = NewType("ClientId", str)
Millis = int  # epoch milliseconds, always passed in


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.Enum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    # No entry order: the entry protects a part of a position no entry held (`bot adopt`).
    ADOPTED = "ADOPTED"


class PositionSide(enum.Enum):
    BOTH = "BOTH"  # one-way mode
    LONG = "LONG"  # hedge mode
    SHORT = "SHORT"


class Leg(enum.Enum):
    ENTRY = "e"
    SL = "sl"
    TP = "tp"
    TRAIL = "tr"  # a trailing stop beside the stop-loss (TRAILING_STOP_MARKET)
    CLOSE = "x"


#: The protective legs: the algo orders that close an entry's share.
PROTECTIVE = frozenset({Leg.SL, Leg.TP, Leg.TRAIL})


class Status(enum.Enum):
    """An entry's lifecycle; the transitions live in core.engine.TRANSITIONS."""

    REQUESTED = "REQUESTED"  # written by a short CLI; the running daemon sends it
    SUBMITTING = "SUBMITTING"  # persisted, the send may be in flight
    OPEN = "OPEN"  # acknowledged, nothing filled
    PARTIALLY_FILLED = "PARTIALLY_FILLED"  # entry still working, filled part protected
    PROTECTING = "PROTECTING"  # entry done with a fill, protection being placed
    PROTECTED = "PROTECTED"  # resting: its share is covered by live legs until it is flat
    EXITING = "EXITING"  # a leg fired, the share is flat, or the trigger was crossed: winding down
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # kept and shown until an operator acts
    CANCELED = "CANCELED"
    NOT_PLACED = "NOT_PLACED"
    CLOSED = "CLOSED"
    DROPPED = "DROPPED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({Status.CANCELED, Status.NOT_PLACED, Status.CLOSED, Status.DROPPED})
#: The entry order was sent and nothing says it will fill no more.
ENTRY_WORKING = frozenset({Status.SUBMITTING, Status.OPEN, Status.PARTIALLY_FILLED})
#: The entry holds (or may hold) a share that its legs protect.
HOLDING = frozenset({Status.PARTIALLY_FILLED, Status.PROTECTING, Status.PROTECTED})


class OrderStatus(enum.Enum):
    """A matching-engine order's status, as Binance names it."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


class AlgoStatus(enum.Enum):
    """An algo (conditional) order's status, as Binance names it."""

    NEW = "NEW"
    CANCELED = "CANCELED"
    TRIGGERING = "TRIGGERING"
    TRIGGERED = "TRIGGERED"
    FINISHED = "FINISHED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def fired(self) -> bool:
        return self in (AlgoStatus.TRIGGERING, AlgoStatus.TRIGGERED, AlgoStatus.FINISHED)


#: An order status after which the order executes no more.
ORDER_FINAL = frozenset({
    OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED,
    OrderStatus.EXPIRED_IN_MATCH,
})


class TriggerPolicy(enum.Enum):
    """What to do when a protective trigger is already crossed (-2021 / -4142)."""

    CLOSE = "close"
    ALERT = "alert"


class LegState(enum.Enum):
    SENDING = "SENDING"  # persisted; the send may be in flight
    UNKNOWN = "UNKNOWN"  # the send's outcome is unknown; resolved by query
    LIVE = "LIVE"  # acknowledged by the exchange
    CANCELING = "CANCELING"  # superseded; cancel sent or due
    FIRED = "FIRED"  # triggered; what its child order executed is not final yet


#: A leg whose send has no answer yet.
IN_FLIGHT = frozenset({LegState.SENDING, LegState.UNKNOWN})
#: A leg that may still execute, or change the position, by an amount not known yet.
UNSETTLED = frozenset({LegState.SENDING, LegState.UNKNOWN, LegState.CANCELING, LegState.FIRED})


@dataclass(frozen=True, slots=True)
class TpLevel:
    """One take-profit level: its trigger and the quantity of the entry it takes (step-rounded;
    the last level takes the rest of the entry)."""

    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Trail:
    """A trailing stop (Binance TRAILING_STOP_MARKET): it follows the best price since it was
    activated by ``callback_pct`` percent; ``activate`` None = from the moment it is placed."""

    callback_pct: Decimal
    activate: Decimal | None = None


Slot = tuple[Leg, int]  # a kind of leg and its take-profit level (0: not a level)


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """What the operator asked for; prices already on the symbol's tick.

    ``tp_levels`` (two or more) take profit in steps: ``take_profit`` is then the first level's
    price. ``trail`` adds a trailing stop beside the stop-loss, which stays as the floor (a
    trailing stop activated later protects nothing until then)."""

    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    price: Decimal | None
    stop_loss: Decimal
    take_profit: Decimal | None
    position_side: PositionSide = PositionSide.BOTH
    tp_levels: tuple[TpLevel, ...] = ()
    trail: Trail | None = None

    @property
    def legs(self) -> tuple[Leg, ...]:
        """The kinds of protective leg the entry asks for."""
        kinds = [Leg.SL]
        if self.take_profit is not None:
            kinds.append(Leg.TP)
        if self.trail is not None:
            kinds.append(Leg.TRAIL)
        return tuple(kinds)

    @property
    def slots(self) -> tuple[Slot, ...]:
        """Every leg the entry keeps live while it holds a share: each take-profit level its own."""
        tps: list[Slot] = [(Leg.TP, n) for n in range(1, len(self.tp_levels) + 1)] if self.tp_levels else []
        if not tps and self.take_profit is not None:
            tps = [(Leg.TP, 0)]
        return ((Leg.SL, 0), *tps, *([(Leg.TRAIL, 0)] if self.trail is not None else []))

    def trigger(self, leg: Leg, level: int = 0) -> Decimal:
        """Where the leg triggers; a trailing stop's is its activation price (0: at once)."""
        if leg is Leg.TP and level and level <= len(self.tp_levels):
            return self.tp_levels[level - 1].price
        if leg is Leg.TP and self.take_profit is not None:
            return self.take_profit
        if leg is Leg.TRAIL and self.trail is not None:
            return self.trail.activate or Decimal(0)
        return self.stop_loss

    def level_quantities(self, filled: Decimal) -> tuple[Decimal, ...]:
        """What each take-profit level takes of ``filled``: the levels in order, each up to its
        own quantity (a partial fill is the first levels'; the quantities are on the step)."""
        out, left = [], filled
        for n, level in enumerate(self.tp_levels, 1):
            take = left if n == len(self.tp_levels) else min(level.quantity, left)
            out.append(max(take, Decimal(0)))
            left -= take
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ProtectionOrder:
    """One protective algo order of one generation (a resize starts a new generation)."""

    leg: Leg
    gen: int
    client_id: ClientId
    quantity: Decimal
    trigger_price: Decimal
    state: LegState
    sent_at: Millis
    level: int = 0  # the take-profit level it is (0: not a level)
    callback_pct: Decimal | None = None  # a trailing stop's callback rate

    @property
    def slot(self) -> Slot:
        return self.leg, self.level

    @property
    def label(self) -> str:
        """Its name as its client id ends: ``sl2``, ``tp3-2`` (level 2), ``tr1``."""
        return f"{self.leg.value}{self.gen}" + (f"-{self.level}" if self.level else "")

    @property
    def kind(self) -> str:
        names = {Leg.SL: "stop-loss", Leg.TP: "take-profit", Leg.TRAIL: "trailing stop"}
        return names.get(self.leg, self.leg.name.lower()) + (f" level {self.level}" if self.level else "")


@dataclass(frozen=True, slots=True)
class CloseOrder:
    """One reduce-only market order closing what is left of the entry's own share."""

    client_id: ClientId
    quantity: Decimal
    state: LegState
    sent_at: Millis


#: The key prefix of an Exit a position read booked: a loss none of the entry's orders explains.
UNEXPLAINED = "external:"


@dataclass(frozen=True, slots=True)
class Exit:
    """What took part of the entry's share away: one of its legs or closes (by client id),
    or, keyed ``external``, a reduction of the position the bot did not make."""

    key: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Note:
    at: Millis
    text: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A pending entry: everything needed to protect it after any crash."""

    pending_id: PendingId
    spec: EntrySpec
    status: Status
    created_at: Millis
    sent_at: Millis  # when the entry send was decided; bounds when it can still land
    recv_window_ms: int
    order_id: int | None = None
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    gen: int = 0  # last protection generation used; ids are never reused
    protections: tuple[ProtectionOrder, ...] = ()
    close: CloseOrder | None = None
    attempts: int = 0  # consecutive definite protection rejections
    retry_at: Millis = 0  # no new protection (or close) before this time
    reason: str = ""  # why it is terminal or needs attention
    history: tuple[Note, ...] = field(default=())
    entry_done: bool = False  # the entry order will fill no more (filled, canceled, expired)
    exits: tuple[Exit, ...] = ()  # what its own legs and closes executed, and outside reductions
    flatten: bool = False  # close what is left at market (a trigger was already crossed)
    verify_share: bool = False  # a leg vanished without a known execution: read the position first
    transient: int = 0  # consecutive transient failures (backoff; never a refusal)
    exposed_since: Millis = 0  # filled and not covered since; 0 when covered or nothing to cover
    alerted: bool = False  # the long-exposure alert was raised for this exposure
    # An SL was refused for the account's conditional-order limit: the SL goes first, and the
    # TP waits until the SL is live (its own slot may be the room the SL needs).
    sl_first: bool = False

    @property
    def exited(self) -> Decimal:
        return sum((x.quantity for x in self.exits), Decimal(0))

    @property
    def unexplained(self) -> Decimal:
        """What position reads took from its share that none of its orders explains."""
        return sum((x.quantity for x in self.exits if x.key.startswith(UNEXPLAINED)), Decimal(0))

    @property
    def share(self) -> Decimal:
        """What the entry itself still holds of the position: its fills minus its exits."""
        return max(self.filled_qty - self.exited, Decimal(0))

    @property
    def key(self) -> PositionKey:
        """The position its share is part of."""
        return self.spec.symbol, self.spec.position_side

    def legs_of(self, gen: int) -> tuple[ProtectionOrder, ...]:
        return tuple(p for p in self.protections if p.gen == gen)

    def find_leg(self, client_id: ClientId) -> ProtectionOrder | None:
        return next((p for p in self.protections if p.client_id == client_id), None)

    def current(self, leg: Leg, level: int = 0) -> ProtectionOrder | None:
        """The newest leg of this kind (and level) not being cancelled: the one meant to protect."""
        kept = [x for x in self.protections if x.slot == (leg, level) and x.state is not LegState.CANCELING]
        return max(kept, key=lambda x: x.gen, default=None)

    @property
    def settled(self) -> bool:
        """Nothing of it can change the position by an amount the bot does not know yet:
        no leg in flight, fired, or being cancelled, and no market close unanswered."""
        return self.close is None and not any(x.state in UNSETTLED for x in self.protections)


PositionKey = tuple[str, PositionSide]  # a symbol, and its position side (BOTH in one-way mode)


@dataclass(frozen=True, slots=True)
class OrderReport:
    """A matching-engine order as the exchange reports it (REST or stream)."""

    symbol: str
    client_id: ClientId
    order_id: int
    status: OrderStatus
    filled_qty: Decimal
    avg_price: Decimal | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class AlgoReport:
    """An algo (conditional) order as the exchange reports it."""

    symbol: str
    client_id: ClientId
    algo_id: int
    status: AlgoStatus
    trigger_price: Decimal
    quantity: Decimal
    actual_order_id: int | None = None
    executed_qty: Decimal | None = None  # what its child order filled (actualQty / aq), once fired
    avg_price: Decimal | None = None  # what its child order filled at (actualPrice / ap), once fired


@dataclass(frozen=True, slots=True)
class Policy:
    """Engine policy, from the config; passed into every decision."""

    on_immediate_trigger: TriggerPolicy = TriggerPolicy.CLOSE
    not_found_margin_ms: int = 5_000  # beyond timestamp + recvWindow, -2013 means "never landed"
    recheck_ms: int = 2_000
    max_protection_attempts: int = 5
    request_ttl_ms: int = 30_000  # a REQUESTED entry no daemon took by then is not sent
    # Binance drops a canceled/expired order with no fill from queries 3 days after creation;
    # before that, an acknowledged order that a query cannot see is only not visible yet.
    archived_after_ms: int = 3 * 24 * 3600 * 1000
    not_visible_recheck_ms: int = 10_000
    # A leg we saw acknowledged may be missing from reads for a while (read lag): ask again
    # until this long after its send before cancelling it by id and placing it anew.
    read_lag_ms: int = 30_000
    # The longest wait between tries after transient trouble (jittered), unless the exchange
    # says when to come back: protection is retried within seconds, never once a minute.
    retry_max_ms: int = 5_000
    unprotected_alert_ms: int = 60_000  # filled and not covered this long: alert, keep trying
    # A position read short of the entries' shares is believed only once the orders on that
    # position have settled and a read this much later still says so.
    position_confirm_ms: int = 1_000
    # A send that waited longer than this behind other work is stamped anew (and persisted)
    # before it goes, so "never landed" is always measured from near the real send.
    send_delay_ms: int = 1_000
    # Entries may share a position knowingly ([protection] stacking): each leg then covers
    # exactly its own entry's share, never more, not even while it is resized (core.protect).
    stacking: bool = False
