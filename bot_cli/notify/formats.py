"""What a notification says: the kinds the daemon sends, their texts, each sink's body.

Pure: no I/O, no clock. A ``Notice`` is what the caller means; a ``Message`` is a notice
stamped with when and where it was raised, which is what the sinks send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


KINDS = (
    "needs_attention",
    "closed_at_market",
    "unprotected",
    "position_unclaimed",
    "stream_down",
    "stream_up",
    "stream_deaf",
    "stream_hearing",
    "limit_reached",
    "share_lost",
    "over_execution",
    "daemon_started",
    "daemon_stopped",
    "test",
)
RESERVED = ("kind", "text", "at", "host", "pid")  # webhook keys a field may not replace
TELEGRAM_MAX = 4096  # sendMessage refuses longer texts


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    kind: str
    text: str
    fields: Mapping[str, Any]
    at: float  # epoch seconds
    host: str
    pid: int


def needs_attention(pending_id: str, reason: str) -> Notice:
    return Notice(
        "needs_attention",
        f"entry {pending_id} needs attention: {reason}",
        {"entry": pending_id, "reason": reason},
    )


def closed_at_market(pending_id: str, symbol: str, quantity: Decimal | str) -> Notice:
    return Notice(
        "closed_at_market",
        f"entry {pending_id}: reduce-only market close of {quantity} {symbol} sent",
        {"entry": pending_id, "symbol": symbol, "quantity": str(quantity)},
    )


def unprotected(pending_id: str, seconds: int, symbol: str, quantity: Decimal | str) -> Notice:
    return Notice(
        "unprotected",
        f"entry {pending_id}: {quantity} {symbol} without a full stop for {seconds} s; "
        "still trying",
        {"entry": pending_id, "seconds": seconds, "symbol": symbol, "quantity": str(quantity)},
    )


def position_unclaimed(symbol: str, position_side: str, side: str, quantity: Decimal | str) -> Notice:
    return Notice(
        "position_unclaimed",
        f"{symbol} {position_side}: {side} {quantity} of the position is held by no entry;"
        " nothing of the bot protects it",
        {"symbol": symbol, "position_side": position_side, "side": side, "quantity": str(quantity)},
    )


def stream_down(since_ms: int, now_ms: int) -> Notice:
    secs = (now_ms - since_ms) // 1000
    return Notice(
        "stream_down",
        f"user data stream down since {iso(since_ms / 1000)} ({secs} s): fills are not seen live",
        {"since": iso(since_ms / 1000), "seconds": secs},
    )


def stream_up(since_ms: int, now_ms: int) -> Notice:
    secs = (now_ms - since_ms) // 1000
    return Notice(
        "stream_up",
        f"user data stream back after {secs} s down; reconciling",
        {"since": iso(since_ms / 1000), "seconds": secs},
    )


def stream_deaf(since_ms: int) -> Notice:
    return Notice(
        "stream_deaf",
        f"user data stream deaf since {iso(since_ms / 1000)}: connected, but no event for the bot's own"
        " orders; reconciling by REST every few seconds until it speaks (check venue.ws_url)",
        {"since": iso(since_ms / 1000)},
    )


def stream_hearing(since_ms: int, now_ms: int) -> Notice:
    secs = (now_ms - since_ms) // 1000
    return Notice("stream_hearing", f"user data stream speaks again after {secs} s deaf",
                  {"since": iso(since_ms / 1000), "seconds": secs})


def limit_reached(pending_id: str, text: str) -> Notice:
    """A leg refused for the account's limit of open conditional orders; the bot keeps trying."""
    return Notice("limit_reached", f"entry {pending_id}: {text}", {"entry": pending_id})


def share_lost(pending_id: str, text: str) -> Notice:
    """A reduction of the position, proven and charged to an entry it was not the bot's doing."""
    return Notice("share_lost", f"entry {pending_id}: {text}", {"entry": pending_id})


def over_execution(pending_id: str, text: str) -> Notice:
    """Another entry's legs executed more than it filled (no OCO on Binance): this entry's share
    paid for it; the text names the other entry, the quantity and the price."""
    return Notice("over_execution", f"entry {pending_id}: {text}", {"entry": pending_id})


def daemon_started(venue: str) -> Notice:
    return Notice("daemon_started", f"bot run started on {venue}", {"venue": venue})


def daemon_stopped(venue: str, why: str = "stopped") -> Notice:
    return Notice("daemon_stopped", f"bot run on {venue}: {why}", {"venue": venue, "why": why})


def probe() -> Notice:
    """The message of `bot notify test`."""
    return Notice("test", "test notification from `bot notify test`")


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def webhook_payload(msg: Message) -> dict[str, Any]:
    """{kind, text, <fields>, at, host, pid}; values JSON-safe (decimals as strings)."""
    extra = {k: _jsonable(v) for k, v in msg.fields.items() if k not in RESERVED}
    return {
        "kind": msg.kind,
        "text": msg.text,
        **extra,
        "at": iso(msg.at),
        "host": msg.host,
        "pid": msg.pid,
    }


def telegram_text(msg: Message) -> str:
    return f"[{msg.host}] {msg.text}"[:TELEGRAM_MAX]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Decimal, enums, ids: their text, never a float
