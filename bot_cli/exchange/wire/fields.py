"""Field readers for Binance payloads (pure): each checks what it reads and names the field.

A missing required field, a wrong type or a bad number raises ``WireError`` naming the field,
never a default. Numbers arrive as strings and become ``Decimal``; ids and times are ints, except
where Binance sends them as strings (``E`` of ``listenKeyExpired``, ``ai``/``actualOrderId``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar


class WireError(ValueError):
    """A payload that does not have the shape Binance documents."""


_E = TypeVar("_E", bound=enum.Enum)
_INT = re.compile(r"-?[0-9]+")


def obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise WireError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise WireError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def field(m: Mapping[str, object], key: str, where: str) -> object:
    if key not in m:
        raise WireError(f"{where}: missing field {key!r}")
    return m[key]


def text(m: Mapping[str, object], key: str, where: str) -> str:
    value = field(m, key, where)
    if not isinstance(value, str):
        raise WireError(f"{where}: field {key!r} is not a string: {value!r}")
    return value


def integer(m: Mapping[str, object], key: str, where: str) -> int:
    """An int, or a string of digits (Binance sends some ids and times as strings)."""
    value = field(m, key, where)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise WireError(f"{where}: field {key!r} is not an integer: {value!r}")


def dec(m: Mapping[str, object], key: str, where: str) -> Decimal:
    value = field(m, key, where)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise WireError(f"{where}: field {key!r} is not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"{where}: field {key!r} is not a number: {value!r}") from None
    if not number.is_finite():
        raise WireError(f"{where}: field {key!r} is not a finite number: {value!r}")
    return number


def opt_id(m: Mapping[str, object], key: str, where: str) -> int | None:
    """An id that is absent, "" or "0" until it exists (``ai``, ``actualOrderId``)."""
    if key not in m or m[key] in ("", None):
        return None
    return integer(m, key, where) or None


def opt_dec(m: Mapping[str, object], key: str, where: str) -> Decimal | None:
    """A quantity that is absent or "" until it exists (``aq``, ``actualQty`` once fired)."""
    if key not in m or m[key] in ("", None):
        return None
    return dec(m, key, where)


def price_or_none(price: Decimal) -> Decimal | None:
    """Binance reports "0" as the average price of an order with no fill."""
    return price if price != 0 else None


def opt_price(m: Mapping[str, object], key: str, where: str) -> Decimal | None:
    """A fill price that is absent, "" or "0" until there is one (``ap``, ``actualPrice``)."""
    price = opt_dec(m, key, where)
    return None if price is None else price_or_none(price)


def member(cls: type[_E], m: Mapping[str, object], key: str, where: str) -> _E:
    value = text(m, key, where)
    try:
        return cls(value)
    except ValueError:
        raise WireError(f"{where}: field {key!r} has unknown value {value!r}") from None
