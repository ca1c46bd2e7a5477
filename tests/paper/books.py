"""Helpers of the book tests: requests from wire parameters at explicit instants (no clock)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot_cli.core.model import PositionSide
from bot_cli.paper.book import Book
from bot_cli.paper.matching import advance
from bot_cli.paper.records import Algo, Order
from bot_cli.paper.rules import parse_new_algo, parse_new_order
from tests.paper import T0, new_book


BTC = "BTCUSDT"


def at(book: Book, t: int) -> int:
    """Bring the book to ``t`` (as the venue does before each request); returns ``t``."""
    advance(book, t)
    return t


def order(book: Book, now: int = T0, /, **params: str) -> tuple[Order, Order]:
    """Place a regular order from wire parameters at ``now``; returns (accepted, final)."""
    base = {"symbol": BTC, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010"}
    base.update(params)
    if base["type"] == "MARKET":
        base.pop("timeInForce")
    return book.new_order(parse_new_order(base), at(book, now))


def algo(book: Book, now: int = T0, /, **params: str) -> Algo:
    """Place a conditional (algo) order from wire parameters at ``now``."""
    base = {"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL", "type": "STOP_MARKET"}
    base.update(params)
    return book.new_algo(parse_new_algo(base), at(book, now))


def move(book: Book, price: Decimal, t: int) -> None:
    """Re-anchor BTCUSDT at ``price`` at ``t`` (the admin call POST /paper/price)."""
    book.set_price(BTC, price, at(book, t))


def updates(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["e"] == kind]


def flat_book() -> Book:
    """Volatility 0: the price stays where set_price puts it, so crossings are exact."""
    return new_book(volatility=0.0)


def position(book: Book, ps: PositionSide = PositionSide.BOTH) -> Decimal:
    return book.position(BTC, ps).amount
