"""One HTTP reply of the exchange, read at the edge: its outcome, code, message and body.

``read`` classifies a reply (``errors.classify``), ``parse`` turns an accepted body into core
values (a body we cannot read leaves the outcome unknown), ``retry_after`` says how long a
refusal asks us to wait, and ``redact`` takes secrets out of any text before it goes further.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeVar

import httpx

from bot_cli.exchange import wire
from bot_cli.exchange.errors import Outcome, classify
from bot_cli.venue import OutcomeUnknown


UNREADABLE: Final = object()
_T = TypeVar("_T")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_BANNED_UNTIL = re.compile(r"banned until (\d{13})")


class Reply(NamedTuple):
    outcome: Outcome
    code: int | None  # Binance's error code, if the body has one
    msg: str
    body: object  # the parsed JSON, or UNREADABLE


def read(response: httpx.Response) -> Reply:
    """Classify a reply by its status, Binance code and message."""
    try:
        body: object = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        body = UNREADABLE
    code, msg = None, ""
    if isinstance(body, dict):
        raw_code, raw_msg = body.get("code"), body.get("msg")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        msg = raw_msg if isinstance(raw_msg, str) else ""
    elif body is UNREADABLE:
        msg = response.text.strip()  # cut only after redaction
    return Reply(classify(response.status_code, code, msg), code, msg, body)


def parse(parser: Callable[[Any], _T], body: object, what: str) -> _T:
    """Translate an accepted body; one we cannot read leaves the outcome unknown."""
    try:
        return parser(body)
    except wire.WireError as exc:
        raise OutcomeUnknown(f"{what}: unreadable answer: {exc}") from None


def retry_after(response: httpx.Response, msg: str, default: float, server_now_ms: int) -> float:
    """Retry-After if sent (undocumented for fapi), else "banned until <ms>", else default."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
        if seconds > 0:
            return seconds
    except ValueError:
        pass
    banned = _BANNED_UNTIL.search(msg)
    if banned is not None:
        return max((int(banned.group(1)) - server_now_ms) / 1000, 1.0)
    return default


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` without the given secrets or anything shaped like a signature."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _HEX64.sub("<redacted>", text)
