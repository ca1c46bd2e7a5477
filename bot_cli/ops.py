"""Operator operations as plain functions over explicit dependencies; they return results.

The CLI renders what these return; the daemon and tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot_cli.errors import UsageError
from bot_cli.state_store import PendingEntryStore


if TYPE_CHECKING:
    from bot_cli.core.model import EntrySpec, Pending, PendingId
from bot_cli.store.listing import UnlistableRecord, listing


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One line of `bot pending list`; values as the journal holds them (decimal strings)."""

    pending_id: str
    symbol: str
    side: str
    quantity: str
    filled: str
    status: str
    stop_loss: str
    take_profit: str | None
    created_at: int
    reason: str

    @property
    def entry_client_id(self) -> str:
        return f"{self.pending_id}-e"  # core.ids.client_id(pid, Leg.ENTRY)

    def age_s(self, now_ms: int) -> float:
        return max(0.0, (now_ms - self.created_at) / 1000)

    def as_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.pending_id, "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
            "filled_quantity": self.filled, "state": self.status, "entry_client_id": self.entry_client_id,
            "stop_loss": self.stop_loss, "take_profit": self.take_profit,
            "age_seconds": round(self.age_s(now_ms), 1), "reason": self.reason,
        }


def load_pending(store: PendingEntryStore) -> tuple[dict[PendingId, Pending], list[str]]:
    """Every decodable pending entry, and one warning per record that is not."""
    from bot_cli.core.model import PendingId
    from bot_cli.store.codec import CorruptRecord, decode

    entries: dict[PendingId, Pending] = {}
    problems = list(store.warnings)
    for key, record in store.load_all().items():
        try:
            entries[PendingId(key)] = decode(record)
        except CorruptRecord as err:
            problems.append(f"journal record {key} cannot be read ({err}); it is kept as is")
    return entries, problems


def list_pending(store: PendingEntryStore) -> tuple[list[PendingRow], list[str]]:
    """The journal's entries as display rows, oldest first, and a warning per unreadable record."""
    rows: list[PendingRow] = []
    problems = list(store.warnings)
    for key, record in store.load_all().items():
        try:
            rows.append(PendingRow(*listing(record)))
        except (UnlistableRecord, TypeError) as err:
            problems.append(f"journal record {key} cannot be read ({err}); it is kept as is")
    rows.sort(key=lambda r: r.pending_id)
    return rows, problems


def check_ids(store: PendingEntryStore, ids: list[str]) -> dict[PendingId, Pending]:
    """All the named entries, or a UsageError naming the unknown ones (nothing changed)."""
    from bot_cli.core.model import PendingId

    entries, _ = load_pending(store)
    unknown = [i for i in ids if i not in entries]
    if unknown:
        raise UsageError(
            f"no pending entry {', '.join(unknown)} in {store.path}: see `bot pending list` for the ids"
        )
    return {PendingId(i): entries[PendingId(i)] for i in ids}


def drop_pending(store: PendingEntryStore, ids: list[str], reason: str = "dropped") -> list[PendingId]:
    """Move the entries to the archive with the reason; all ids are checked before any moves."""
    found = check_ids(store, ids)
    for pid in found:
        store.remove(pid, reason)
    return list(found)


# -- bot enter -------------------------------------------------------------------------


def parse_decimal(name: str, text: str) -> Decimal:
    from decimal import InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"{name} {text!r} is not a number: give it as digits, e.g. 0.01") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{name} {text} must be a positive number")
    return value


def build_spec(
    filters: Any, symbol: str, side: str, quantity: Decimal, price: Decimal | None,
    stop_loss: Decimal, take_profit: Decimal | None, position_side: Any,
) -> EntrySpec:
    """A validated entry: every problem is a UsageError naming the value; nothing is sent."""
    from bot_cli.core.model import EntrySpec, OrderType, Side

    s = Side(side.upper())
    market = price is None
    for name, value in (("price", price), ("stop-loss", stop_loss), ("take-profit", take_profit)):
        if value is not None and (problem := filters.check_price(value)):
            raise UsageError(f"{name}: {problem}; use a multiple of {filters.tick_size}")
    reference = price if price is not None else stop_loss
    if problem := filters.check_quantity(quantity, market=market, price=reference if not market else None):
        raise UsageError(f"quantity: {problem}")
    _check_sides(s, price, stop_loss, take_profit)
    return EntrySpec(
        symbol, s, quantity, OrderType.MARKET if market else OrderType.LIMIT, price, stop_loss, take_profit,
        position_side,
    )


def _check_sides(side: Any, price: Decimal | None, sl: Decimal, tp: Decimal | None) -> None:
    buy = side.value == "BUY"
    word, sl_rel, tp_rel = ("buy", "below", "above") if buy else ("sell", "above", "below")
    if tp is not None and (sl >= tp if buy else sl <= tp):
        raise UsageError(f"for a {word} the stop-loss {sl} must be {sl_rel} the take-profit {tp}")
    if price is not None and (sl >= price if buy else sl <= price):
        raise UsageError(f"for a {word} the stop-loss {sl} must be {sl_rel} the entry price {price}")
    if price is not None and tp is not None and (tp <= price if buy else tp >= price):
        raise UsageError(f"for a {word} the take-profit {tp} must be {tp_rel} the entry price {price}")
