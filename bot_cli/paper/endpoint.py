"""What every /fapi handler module shares: the route record and the parameter helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot_cli.paper.auth import OrderCost
from bot_cli.paper.rules import Params, integer, symbol_spec


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange

Handler = Callable[["PaperExchange", Params, int], Any]
SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    security: str  # NONE | USER_STREAM (key only) | SIGNED
    weight: Callable[[Params], int]
    handler: Handler
    order_cost: OrderCost | None = None  # what it counts toward the ORDERS limits, if anything


def w(n: int) -> Callable[[Params], int]:
    return lambda _p: n


def w_symbol(all_symbols: int) -> Callable[[Params], int]:
    """Weight 1 with a symbol, more without ("careful when accessing this with no symbol")."""
    return lambda p: 1 if p.get("symbol") else all_symbols


def opt_symbol(p: Params) -> str | None:
    return symbol_spec(p).symbol if p.get("symbol") else None


def limit(p: Params, default: int = 500, most: int = 1000) -> int:
    return max(1, min(integer(p, "limit", default) or default, most))


def one_or_all(only: str | None, rows: list[Any]) -> Any:
    """Binance's habit: one object when a symbol was sent, else the list."""
    return rows[0] if only else rows
