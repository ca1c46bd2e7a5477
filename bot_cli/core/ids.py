"""Deterministic client ids: the exchange-side name of every order we send.

A pending id is chosen before anything is sent; every order id derives from it, so
after a crash reconciliation finds "our" orders by id alone. Binance allows
``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``; we keep to ``[A-Za-z0-9-]`` so URL encoding is a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot_cli.core.model import ClientId, Leg, PendingId


PREFIX = "bc"
MAX_LEN = 36
BINANCE_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_PENDING = re.compile(r"^bc[0-9a-z]{6,20}$")
_CLIENT = re.compile(r"^(bc[0-9a-z]{6,20})-(e|sl|tp|tr|x)(\d*)(?:-(\d{1,2}))?$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class InvalidId(ValueError):
    """An id that is not one of ours or would not be valid on Binance."""


@dataclass(frozen=True, slots=True)
class ParsedId:
    pending_id: PendingId
    leg: Leg
    gen: int
    level: int = 0  # a take-profit level's number


def _base36(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, r = divmod(n, 36)
        digits.append(_ALPHABET[r])
    return "".join(reversed(digits))


def make_pending_id(now_ms: int, entropy: int) -> PendingId:
    """A sortable pending id from the creation time and caller-supplied entropy."""
    return PendingId(f"{PREFIX}{_base36(now_ms, 9)}{_base36(entropy, 5)}")


def is_pending_id(text: str) -> bool:
    return bool(_PENDING.fullmatch(text))


def client_id(pending_id: PendingId, leg: Leg, gen: int = 0, level: int = 0) -> ClientId:
    """The client id of one order: entry ``<pid>-e``, protection ``<pid>-sl3``/``-tp3``/``-tr3``,
    take-profit level 2 ``<pid>-tp3-2``, close ``-x1``."""
    if not is_pending_id(pending_id):
        raise InvalidId(f"{pending_id!r} is not a pending id")
    suffix = leg.value if leg is Leg.ENTRY else f"{leg.value}{gen}" + (f"-{level}" if level else "")
    cid = f"{pending_id}-{suffix}"
    if len(cid) > MAX_LEN or not BINANCE_ID.fullmatch(cid):
        raise InvalidId(f"client id {cid!r} would not be valid on Binance")
    return ClientId(cid)


def parse_client_id(cid: str) -> ParsedId | None:
    """The pending id, leg and generation behind one of our client ids; None if not ours."""
    m = _CLIENT.fullmatch(cid)
    if m is None:
        return None
    leg = next(leg for leg in Leg if leg.value == m.group(2))
    if (leg is Leg.ENTRY) != (m.group(3) == "") or (m.group(4) and leg is not Leg.TP):
        return None
    return ParsedId(PendingId(m.group(1)), leg, int(m.group(3) or 0), int(m.group(4) or 0))
