"""The paper exchange's records: orders, algo orders, positions, trades (frozen values).

The book replaces a record with ``dataclasses.replace`` on every change, so a record handed out
(for a response or an event) never changes under its holder. ``to_json``/``from_json`` turn any
of them into JSON-able dicts and back (Decimal as strings, enums by value) for persistence.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, fields, is_dataclass
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide, Side


T = TypeVar("T")

TRAILING = "TRAILING_STOP_MARKET"
CONDITIONAL_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", TRAILING)
ALGO_ONLY_TYPES = (
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
OPEN_ORDER = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
# Binance expires a GTE_GTC conditional order when every position of its symbol is closed.
GTE_GTC = "GTE_GTC"
# The algo timeInForce values accepted: the SDK's enum, and the undocumented GTE_GTC.
ALGO_TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX", "GTD", "RPI", GTE_GTC)


@dataclass(frozen=True, slots=True)
class Order:
    """A matching-engine order (LIMIT or MARKET; a triggered algo order's child is a MARKET)."""

    symbol: str
    order_id: int
    client_id: str
    side: Side
    type: str  # LIMIT | MARKET
    orig_type: str  # the type asked for: LIMIT, MARKET, or STOP_MARKET/... for an algo child
    position_side: PositionSide
    quantity: Decimal
    time: int
    update_time: int
    price: Decimal = Decimal(0)  # 0 for MARKET
    reduce_only: bool = False
    close_position: bool = False
    time_in_force: str = "GTC"
    stop_price: Decimal = Decimal(0)  # the trigger price of the parent algo order, else 0
    status: OrderStatus = OrderStatus.NEW
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    algo_id: int = 0  # the parent algo order of a triggered child, else 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed if self.executed else Decimal(0)


@dataclass(frozen=True, slots=True)
class Algo:
    """A conditional order in the Algo Service, until and after it triggers.

    A trailing stop (TRAILING_STOP_MARKET) has no trigger price (0): it is ``activated`` once the
    price reaches ``activate_price`` (a SELL at or above it, a BUY at or below), from then on
    ``extreme`` is the highest price since activation (SELL; the lowest for a BUY), and it fires
    when the price has come back ``callback_rate`` percent from that extreme. Both are state:
    persisted, so a restarted venue trails on from where it was.
    """

    algo_id: int
    client_id: str
    symbol: str
    side: Side
    position_side: PositionSide
    order_type: str  # STOP_MARKET | TAKE_PROFIT_MARKET | TRAILING_STOP_MARKET
    quantity: Decimal  # 0 with closePosition
    trigger_price: Decimal  # 0 for a trailing stop
    create_time: int
    update_time: int
    close_position: bool = False
    reduce_only: bool = False
    working_type: str = "CONTRACT_PRICE"  # accepted and reported; triggers use the path price
    price_protect: bool = False
    time_in_force: str = "GTC"
    status: AlgoStatus = AlgoStatus.NEW
    trigger_time: int = 0
    actual_order_id: int = 0  # the child order once triggered
    actual_qty: Decimal = Decimal(0)
    actual_price: Decimal = Decimal(0)
    reason: str = ""  # rm: why the service refused or expired it
    # trailing stops only (0/False otherwise): the price path they follow
    activate_price: Decimal = Decimal(0)  # the one sent, or the price at placement
    callback_rate: Decimal = Decimal(0)  # percent: 1 = 1 %
    activated: bool = False  # ALGO_UPDATE ``ia``
    extreme: Decimal = Decimal(0)  # highest (SELL) / lowest (BUY) price since activation

    @property
    def is_open(self) -> bool:
        return self.status is AlgoStatus.NEW

    @property
    def is_trailing(self) -> bool:
        return self.order_type == TRAILING

    def triggered_by(self, price: Decimal) -> bool:
        """STOP: a BUY fires at price >= trigger, a SELL at <=; TAKE_PROFIT the reverse.
        A trailing stop's trigger moves with the price: see ``activates_at``/``fires_at``."""
        rising = (self.side is Side.BUY) == (self.order_type == "STOP_MARKET")
        return price >= self.trigger_price if rising else price <= self.trigger_price

    def activates_at(self, price: Decimal) -> bool:
        """A trailing SELL starts trailing at price >= activatePrice, a BUY at <=."""
        if self.side is Side.SELL:
            return price >= self.activate_price
        return price <= self.activate_price

    def followed(self, price: Decimal) -> Decimal:
        """The extreme once ``price`` is seen: a new high for a SELL, a new low for a BUY."""
        return max(self.extreme, price) if self.side is Side.SELL else min(self.extreme, price)

    def fires_at(self, price: Decimal, extreme: Decimal | None = None) -> bool:
        """An activated trailing SELL fires at price <= extreme x (1 - cb/100), a BUY at
        price >= extreme x (1 + cb/100); ``extreme`` defaults to the order's own."""
        ref = self.extreme if extreme is None else extreme
        if self.side is Side.SELL:
            return price <= ref * (1 - self.callback_rate / 100)
        return price >= ref * (1 + self.callback_rate / 100)


@dataclass(frozen=True, slots=True)
class Position:
    """One position side of a symbol: signed amount, average entry, accumulated realized PnL."""

    symbol: str
    position_side: PositionSide
    amount: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    update_time: int = 0


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill, as GET /fapi/v1/userTrades reports it."""

    trade_id: int
    symbol: str
    order_id: int
    side: Side
    position_side: PositionSide
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass(frozen=True, slots=True)
class Funding:
    """One funding payment of a position (negative: paid), as GET /fapi/v1/income reports it."""

    tran_id: int
    symbol: str
    amount: Decimal
    time: int


# --- JSON codec ------------------------------------------------------------------------------


def to_json(record: Any) -> dict[str, Any]:
    """A record as a JSON-able dict: Decimal -> str, enum -> value."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        out[f.name] = value
    return out


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of ``to_json``; unknown keys are an error (a corrupt or foreign file)."""
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    kwargs = {name: _decode(hints[name], value) for name, value in data.items()}
    return cls(**kwargs)


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    assert is_dataclass(cls)
    return typing.get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    if kind is Decimal:
        return Decimal(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    return value
