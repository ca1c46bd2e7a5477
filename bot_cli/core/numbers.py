"""Quantities and prices as people type them (pure): plain ASCII decimals, nothing else.

``1e999`` would be a 1,000-digit quantity, fullwidth digits (U+FF11 and its kin) are digits to Python's
Decimal but not to a person reading a terminal, and ``-0`` is no quantity: each is refused in one
short line that shows at most the first characters of what was given.
"""

from __future__ import annotations

import re
from decimal import Decimal


__all__ = ["NotANumber", "positive", "shown"]

_PLAIN = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
MAX_SHOWN = 24
MAX_LENGTH = 32  # no quantity or price needs more characters than this


class NotANumber(ValueError):
    """The text is not a positive plain decimal; the message says so in one line."""


def shown(text: str) -> str:
    """``text`` as a message may quote it: cut after MAX_SHOWN characters."""
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}… ({len(text)} characters)"


def positive(name: str, text: str) -> Decimal:
    """``text`` (e.g. ``"0.010"``) as a Decimal above 0; NotANumber naming ``name`` otherwise."""
    t = text.strip()
    if t.startswith("-") and _PLAIN.fullmatch(t[1:]):
        raise NotANumber(f"{name} {shown(t)} must be a positive number")
    if not _PLAIN.fullmatch(t):
        raise NotANumber(f"{name} {shown(t)!r} is not a number: give it as ASCII digits, e.g. 0.01")
    if len(t) > MAX_LENGTH:
        raise NotANumber(f"{name} {shown(t)} is too long a number: at most {MAX_LENGTH} characters")
    value = Decimal(t)
    if value <= 0:
        raise NotANumber(f"{name} {shown(t)} must be a positive number")
    return value
