"""Explicit, versioned conversion between core values and journal records.

Decimals are written as strings (never floats); enums by value. A record that does
not decode is a CorruptRecord naming the field, never a silent default.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from bot_cli.core.model import (
    ClientId,
    CloseOrder,
    EntrySpec,
    Exit,
    Leg,
    LegState,
    Note,
    OrderType,
    Pending,
    PendingId,
    PositionSide,
    ProtectionOrder,
    Side,
    Status,
    TpLevel,
    Trail,
)


RECORD_VERSION = 1
T = TypeVar("T")


class CorruptRecord(ValueError):
    """A journal record that cannot be decoded."""


def _dec(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def encode(p: Pending) -> dict[str, Any]:
    s = p.spec
    return {
        "rv": RECORD_VERSION,
        "pending_id": p.pending_id,
        "symbol": s.symbol,
        "side": s.side.value,
        "quantity": str(s.quantity),
        "order_type": s.order_type.value,
        "price": _dec(s.price),
        "stop_loss": str(s.stop_loss),
        "take_profit": _dec(s.take_profit),
        "position_side": s.position_side.value,
        **({"tp_levels": [[str(x.price), str(x.quantity)] for x in s.tp_levels]} if s.tp_levels else {}),
        **({"trail": [str(s.trail.callback_pct), _dec(s.trail.activate)]} if s.trail is not None else {}),
        "status": p.status.value,
        "created_at": p.created_at,
        "sent_at": p.sent_at,
        "recv_window_ms": p.recv_window_ms,
        "order_id": p.order_id,
        "filled_qty": str(p.filled_qty),
        "avg_price": _dec(p.avg_price),
        "gen": p.gen,
        "protections": [_encode_leg(x) for x in p.protections],
        "close": None if p.close is None else _encode_close(p.close),
        "attempts": p.attempts,
        "retry_at": p.retry_at,
        "reason": p.reason,
        "history": [[n.at, n.text] for n in p.history],
        "entry_done": p.entry_done,
        "exits": [[x.key, str(x.quantity)] for x in p.exits],
        "flatten": p.flatten,
        "verify_share": p.verify_share,
        "transient": p.transient,
        "exposed_since": p.exposed_since,
        "alerted": p.alerted,
        "sl_first": p.sl_first,
    }


def _encode_leg(x: ProtectionOrder) -> dict[str, Any]:
    return {
        "leg": x.leg.value,
        "gen": x.gen,
        "client_id": x.client_id,
        "quantity": str(x.quantity),
        "trigger_price": str(x.trigger_price),
        "state": x.state.value,
        "sent_at": x.sent_at,
        **({"level": x.level} if x.level else {}),
        **({"callback_pct": str(x.callback_pct)} if x.callback_pct is not None else {}),
    }


def _encode_close(c: CloseOrder) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "quantity": str(c.quantity),
        "state": c.state.value,
        "sent_at": c.sent_at,
    }


def decode(d: dict[str, Any]) -> Pending:
    """Decode one record; raises CorruptRecord naming the bad field."""
    try:
        return _decode(d)
    except CorruptRecord:
        raise
    except KeyError as err:
        raise CorruptRecord(f"record lacks field {err}") from None
    except (ValueError, TypeError, InvalidOperation, ArithmeticError, AttributeError) as err:
        raise CorruptRecord(f"record has a bad value: {err}") from None  # e.g. Infinity as a time


def _num(d: dict[str, Any], key: str) -> Decimal:
    value = d[key]
    if not isinstance(value, str):
        raise CorruptRecord(f"field {key!r} must be a decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CorruptRecord(f"field {key!r} is not a decimal: {value!r}") from None


def _opt(d: dict[str, Any], key: str) -> Decimal | None:
    return None if d[key] is None else _num(d, key)


def _get(d: dict[str, Any], key: str, convert: Callable[[Any], T]) -> T:
    """d[key] through convert; a bad value is a CorruptRecord naming the field."""
    value = d[key]
    try:
        return convert(value)
    except (ValueError, TypeError, InvalidOperation) as err:
        raise CorruptRecord(f"field {key!r} has a bad value {value!r}: {err}") from None


def _decode_spec(d: dict[str, Any]) -> EntrySpec:
    return EntrySpec(
        symbol=str(d["symbol"]),
        side=_get(d, "side", Side),
        quantity=_num(d, "quantity"),
        order_type=_get(d, "order_type", OrderType),
        price=_opt(d, "price"),
        stop_loss=_num(d, "stop_loss"),
        take_profit=_opt(d, "take_profit"),
        position_side=_get(d, "position_side", PositionSide),
        tp_levels=_get({"l": d.get("tp_levels", [])}, "l", _levels),
        trail=None if d.get("trail") is None else _get(d, "trail", _trail),
    )


def _levels(value: Any) -> tuple[TpLevel, ...]:
    return tuple(TpLevel(Decimal(str(price)), Decimal(str(qty))) for price, qty in value)


def _trail(value: Any) -> Trail:
    callback, activate = value
    return Trail(Decimal(str(callback)), None if activate is None else Decimal(str(activate)))


def _decode(d: dict[str, Any]) -> Pending:
    if d.get("rv") != RECORD_VERSION:
        raise CorruptRecord(f"record version {d.get('rv')!r} is not {RECORD_VERSION}")
    close = d["close"]
    status = _get(d, "status", _status)
    return Pending(
        pending_id=PendingId(d["pending_id"]),
        spec=_decode_spec(d),
        status=status,
        created_at=_get(d, "created_at", int),
        sent_at=_get(d, "sent_at", int),
        recv_window_ms=_get(d, "recv_window_ms", int),
        order_id=None if d["order_id"] is None else _get(d, "order_id", int),
        filled_qty=_num(d, "filled_qty"),
        avg_price=_opt(d, "avg_price"),
        gen=_get(d, "gen", int),
        protections=_get(d, "protections", _legs),
        close=None if close is None else _decode_close(close),
        attempts=_get(d, "attempts", int),
        retry_at=_get(d, "retry_at", int),
        reason=str(d["reason"]),
        history=_get(d, "history", _history),
        # Fields added since the first records: an older record gets what its status implies.
        entry_done=bool(d.get("entry_done", status in _ENTRY_OVER)),
        exits=_get({"exits": d.get("exits", [])}, "exits", _exits),
        flatten=bool(d.get("flatten", status is Status.EXITING)),
        verify_share=bool(d.get("verify_share", False)),
        transient=_get({"t": d.get("transient", 0)}, "t", int),
        exposed_since=_get({"e": d.get("exposed_since", 0)}, "e", int),
        alerted=bool(d.get("alerted", False)),
        sl_first=bool(d.get("sl_first", False)),
    )


_ENTRY_OVER = (Status.PROTECTING, Status.PROTECTED, Status.EXITING)


def _status(value: Any) -> Status:
    return Status.EXITING if value == "CLOSING" else Status(value)  # CLOSING: its former name


def _decode_close(c: dict[str, Any]) -> CloseOrder:
    prior = _num(c, "prior") if "prior" in c else Decimal(0)  # older records: quantity was cumulative
    return CloseOrder(
        ClientId(c["client_id"]), _num(c, "quantity") - prior, _get(c, "state", LegState), _get(c, "sent_at", int)
    )


def _exits(value: Any) -> tuple[Exit, ...]:
    return tuple(Exit(str(key), Decimal(str(qty))) for key, qty in value)


def _legs(value: Any) -> tuple[ProtectionOrder, ...]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return tuple(_decode_leg(x) for x in value)


def _history(value: Any) -> tuple[Note, ...]:
    return tuple(Note(int(at), str(text)) for at, text in value)


def _decode_leg(x: dict[str, Any]) -> ProtectionOrder:
    return ProtectionOrder(
        _get(x, "leg", Leg),
        _get(x, "gen", int),
        ClientId(x["client_id"]),
        _num(x, "quantity"),
        _num(x, "trigger_price"),
        _get(x, "state", LegState),
        _get(x, "sent_at", int),
        _get({"level": x.get("level", 0)}, "level", int),
        _opt({"callback_pct": x.get("callback_pct")}, "callback_pct"),
    )

