"""The few record fields `bot pending list` shows, read without decoding the whole entry.

Listing 10,000 entries must stay well under a third of a second; building every
entry with its legs and notes would take half of that alone. So `listing` only
checks, building no entry, that codec.decode would surely read the record, and then
returns the listed fields. When it is not sure it returns None and the caller
decodes in full: a good record may take the slow road (an old layout, a close, a
partial exit, anything unusual), a bad one never the fast one.
tests/store/test_listing.py holds the check to codec, field by field.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import product
from operator import itemgetter
from typing import Any, Final


# codec.RECORD_VERSION and the values of core.model's enums, written out: importing the
# model would cost `bot pending list` a tenth of its budget (a test holds them equal).
RECORD_VERSION: Final = 1
SIDES: Final = frozenset({"BUY", "SELL"})
ORDER_TYPES: Final = frozenset({"LIMIT", "MARKET", "ADOPTED"})
POSITION_SIDES: Final = frozenset({"BOTH", "LONG", "SHORT"})
STATUSES: Final = frozenset({
    "REQUESTED", "SUBMITTING", "OPEN", "PARTIALLY_FILLED", "PROTECTING", "PROTECTED", "EXITING",
    "NEEDS_ATTENTION", "CANCELED", "NOT_PLACED", "CLOSED", "DROPPED",
})
LEGS: Final = frozenset({"e", "sl", "tp", "tr", "x"})
LEG_STATES: Final = frozenset({"SENDING", "UNKNOWN", "LIVE", "CANCELING", "FIRED"})


FIELDS = (
    "pending_id", "symbol", "side", "quantity", "filled_qty", "status", "stop_loss", "take_profit",
    "created_at", "reason",
)
# Every key decode requires is fetched below (a missing one is a KeyError). Types are checked
# exactly where decode would fail on another (bool is not int here: stricter, never looser);
# enum values and decimal texts check their own type.
_TYPED_KEYS = (
    "pending_id", "symbol", "reason", "created_at", "sent_at", "recv_window_ms", "gen", "attempts",
    "retry_at", "protections", "history", "close", "quantity", "stop_loss", "filled_qty",
    "order_id", "price", "take_profit", "avg_price",
)
_NONE = type(None)
_TYPED: Final = frozenset(
    (str, str, str, int, int, int, int, int, int, list, list, _NONE, str, str, str, *optional)
    for optional in product((int, _NONE), (str, _NONE), (str, _NONE), (str, _NONE))
)  # a record with a close takes the slow road
_ENUM_KEYS = ("side", "order_type", "position_side", "status")
_ENUMS: Final = frozenset(product(SIDES, ORDER_TYPES, POSITION_SIDES, STATUSES))
_DECIMAL_KEYS = ("quantity", "stop_loss", "filled_qty", "price", "take_profit", "avg_price")
_LEG_KEYS = ("leg", "state", "gen", "sent_at", "client_id", "quantity", "trigger_price")
_LEG_ENUMS: Final = frozenset(product(LEGS, LEG_STATES))
# Fields added later: decode gives a record without them defaults, and reads any flag as bool(x).
_LATER_INTS = ("transient", "exposed_since")  # checked by name in _sure
FLAGS: Final = frozenset({"entry_done", "flatten", "verify_share", "alerted", "sl_first"})
# Every key the check reads; with FLAGS, what codec.encode writes (a test holds them equal).
KEYS: Final = frozenset(
    {"rv", "exits", *_TYPED_KEYS, *_ENUM_KEYS, *_LATER_INTS}
)
_get_fields, _get_typed, _get_enums = itemgetter(*FIELDS), itemgetter(*_TYPED_KEYS), itemgetter(*_ENUM_KEYS)
_get_decimals, _get_leg = itemgetter(*_DECIMAL_KEYS), itemgetter(*_LEG_KEYS)


def listing(record: dict[str, Any]) -> tuple[Any, ...] | None:
    """The FIELDS of a record codec.decode surely reads; None when not sure (decode it then)."""
    try:
        sure = _sure(record)
    except (KeyError, TypeError, ArithmeticError):  # missing, of the wrong shape, not a decimal
        return None
    return _get_fields(record) if sure else None


def _sure(r: dict[str, Any]) -> bool:
    if tuple(map(type, _get_typed(r))) not in _TYPED or r["rv"] != RECORD_VERSION:
        return False
    if _get_enums(r) not in _ENUMS or ("exits" in r and r["exits"] != []):  # exits: slow road
        return False
    if "tp_levels" in r or "trail" in r:  # take-profit levels, a trailing stop: the slow road
        return False
    if type(r.get("transient", 0)) is not int or type(r.get("exposed_since", 0)) is not int:
        return False
    texts = [*_get_decimals(r)]  # None only where the shape allows it
    for x in r["protections"]:
        leg, state, gen, sent_at, _, quantity, trigger = _get_leg(x)
        if (leg, state) not in _LEG_ENUMS or type(gen) is not int or type(sent_at) is not int:
            return False
        if quantity is None or trigger is None or "level" in x or "callback_pct" in x:
            return False
        texts += (quantity, trigger)
    notes = r["history"]  # of JSON values only a list has len 2 and an int at [0]
    if not (_PAIR.issuperset(map(len, notes)) and _INT.issuperset(map(type, map(_first, notes)))):
        return False
    return _READ.issuperset(texts) or _decimals_read(texts)


def _decimals_read(texts: list[Any]) -> bool:
    """Decimal() reads every text, as decode does; the few distinct texts are remembered."""
    for text in texts:
        if text not in _READ:
            if type(text) is not str:
                return False
            Decimal(text)  # raises InvalidOperation
            if len(_READ) < _READ_LIMIT:
                _READ.add(text)
    return True


_READ: set[str | None] = {None}  # texts Decimal() has read; None: the shape vouched for it
_READ_LIMIT: Final = 100_000  # distinct texts are few (prices, sizes); bounds a hostile journal
_PAIR, _INT = frozenset({2}), frozenset({int})
_first = itemgetter(0)
