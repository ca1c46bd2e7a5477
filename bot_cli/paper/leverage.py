"""Leverage, margin type and initial margin of the paper account (pure).

Each symbol has Binance-like notional brackets: the higher the leverage, the smaller the
position it may carry. Leverage (1 up to the first bracket's) and margin type (cross or
isolated) are per-symbol settings of the account, persisted with the book. An order must fit
the wallet: the initial margin of what it may open, plus that of the positions and resting
orders, stays within the margin balance (-2019); and its side's notional within the bracket
of the leverage (-2027).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


DEFAULT_LEVERAGE = 20  # Binance's default for a symbol never configured


@dataclass(frozen=True, slots=True)
class Bracket:
    number: int
    leverage: int
    floor: int
    cap: int
    maint_ratio: Decimal
    cum: Decimal  # maintenance amount, so margin = notional * ratio - cum is continuous


@dataclass(frozen=True, slots=True)
class Setting:
    """One symbol's account settings."""

    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = False

    @property
    def margin_type(self) -> str:
        return "isolated" if self.isolated else "cross"


def _brackets(rows: tuple[tuple[int, int, str], ...]) -> tuple[Bracket, ...]:
    """(leverage, cap, maint ratio) rows -> brackets with floors and Binance's cum amounts."""
    out: list[Bracket] = []
    floor, cum, ratio = 0, Decimal(0), Decimal(0)
    for n, (lev, cap, mmr) in enumerate(rows, start=1):
        cum += floor * (Decimal(mmr) - ratio)
        ratio = Decimal(mmr)
        out.append(Bracket(n, lev, floor, cap, ratio, cum))
        floor = cap
    return tuple(out)


MAJOR = _brackets((
    (125, 50_000, "0.004"), (100, 600_000, "0.005"), (75, 3_000_000, "0.0065"),
    (50, 12_000_000, "0.01"), (25, 70_000_000, "0.02"), (20, 100_000_000, "0.025"),
    (10, 230_000_000, "0.05"), (5, 480_000_000, "0.1"), (4, 600_000_000, "0.125"),
    (3, 800_000_000, "0.15"), (2, 1_200_000_000, "0.25"), (1, 1_800_000_000, "0.5"),
))  # fmt: skip
ALT = _brackets((
    (75, 10_000, "0.0065"), (50, 50_000, "0.01"), (25, 250_000, "0.02"),
    (20, 1_000_000, "0.025"), (10, 5_000_000, "0.05"), (5, 10_000_000, "0.1"),
    (4, 12_500_000, "0.125"), (2, 25_000_000, "0.25"), (1, 50_000_000, "0.5"),
))  # fmt: skip


def brackets(symbol: str) -> tuple[Bracket, ...]:
    return MAJOR if symbol in ("BTCUSDT", "ETHUSDT") else ALT


def max_leverage(symbol: str) -> int:
    return brackets(symbol)[0].leverage


def max_notional(symbol: str, leverage: int) -> int:
    """The largest position notional allowed at ``leverage``: the cap of the last bracket that
    still allows it."""
    return max(b.cap for b in brackets(symbol) if b.leverage >= leverage)


def maint_margin(symbol: str, notional: Decimal) -> Decimal:
    """Maintenance margin of a position of ``notional`` (absolute) in its bracket."""
    for b in brackets(symbol):
        if notional <= b.cap:
            return max(Decimal(0), notional * b.maint_ratio - b.cum)
    last = brackets(symbol)[-1]
    return notional * last.maint_ratio - last.cum


def bracket_shape(symbol: str) -> dict[str, Any]:
    """GET /fapi/v1/leverageBracket for one symbol; Binance sends these as JSON numbers."""
    return {
        "symbol": symbol,
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": b.number,
                "initialLeverage": b.leverage,
                "notionalCap": b.cap,
                "notionalFloor": b.floor,
                "maintMarginRatio": float(b.maint_ratio),
                "cum": float(b.cum),
            }
            for b in brackets(symbol)
        ],
    }
