"""The few record fields `bot pending list` shows, read without decoding the whole entry.

Listing 10,000 entries must stay well under a third of a second; building every
entry with its legs and notes would take half of that alone. codec.encode writes
these keys (a test holds the two together).
"""

from __future__ import annotations

from typing import Any


FIELDS = (
    "pending_id", "symbol", "side", "quantity", "filled_qty", "status", "stop_loss", "take_profit",
    "created_at", "reason",
)


class UnlistableRecord(ValueError):
    """A record without the fields a listing needs."""


def listing(record: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return tuple(record[k] for k in FIELDS)
    except KeyError as err:
        raise UnlistableRecord(f"record lacks field {err}") from None
