"""Binance's request checks, server side: API key, HMAC signature, timestamp, request weight.

The signature is HMAC-SHA256 (hex, case-insensitive) over ``totalParams`` = the exact query
string concatenated with the exact body, no separator, with ``signature`` removed from the end
of whichever of the two carries it (Binance requires it to be the last parameter).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from bot_cli.paper.rules import BookError, integer


# The one account's credentials: the venue accepts these and no others.
PAPER_API_KEY = "paper-key"
PAPER_API_SECRET = "paper-secret"
WEIGHT_LIMIT = 2400  # REQUEST_WEIGHT per minute, as exchangeInfo says
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_MS = 1000  # a timestamp this far ahead of the server's clock is refused


def merged_params(query: str, body: str) -> dict[str, str]:
    """Query and body parameters; the query string wins when a name is in both."""
    params = dict(parse_qsl(body, keep_blank_values=True))
    params.update(parse_qsl(query, keep_blank_values=True))
    return params


def check_api_key(sent: str | None, expected: str) -> None:
    if not sent:
        raise BookError(-2014, "API-key format invalid.", 401)
    if not hmac.compare_digest(sent, expected):
        raise BookError(
            -2015, "Invalid API-key, IP, or permissions for action, request ip: 127.0.0.1", 401
        )


def _split_signature(text: str) -> tuple[str, str] | None:
    """``(text without its trailing signature, signature)`` when signature is its last parameter."""
    head, sep, tail = text.rpartition("signature=")
    if sep and "&" not in tail and (head == "" or head.endswith("&")):
        return head[:-1] if head else "", tail
    return None


def check_signature(query: str, body: str, secret: str) -> None:
    split = _split_signature(body) if body else None
    if split is not None:
        payload, signature = query + split[0], split[1]
    else:
        in_query = _split_signature(query)
        if in_query is None:
            raise BookError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        payload, signature = in_query[0] + body, in_query[1]
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise BookError(-1022, "Signature for this request is not valid.")


def check_timestamp(params: Mapping[str, str], now: int) -> None:
    """Accepted iff timestamp < now + 1000 and now - timestamp <= recvWindow (default 5000)."""
    timestamp = integer(params, "timestamp")
    if timestamp is None:
        raise BookError(
            -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
        )
    window = integer(params, "recvWindow", DEFAULT_RECV_WINDOW_MS) or DEFAULT_RECV_WINDOW_MS
    if window > MAX_RECV_WINDOW_MS:
        raise BookError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}")
    if timestamp >= now + AHEAD_MS:
        raise BookError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - timestamp > window:
        raise BookError(-1021, "Timestamp for this request is outside of the recvWindow.")


@dataclass
class WeightMeter:
    """IP request weight per minute, and order counts per 10 s and per minute."""

    minute: int = -1
    used: int = 0
    order_windows: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, weight: int, now: int) -> int:
        if now // 60000 != self.minute:
            self.minute, self.used = now // 60000, 0
        self.used += weight
        return self.used

    def add_order(self, now: int) -> dict[str, str]:
        """Count one order; the X-MBX-ORDER-COUNT-* headers to send."""
        headers = {}
        for name, span in (("10S", 10_000), ("1M", 60_000)):
            window, count = self.order_windows.get(name, (-1, 0))
            count = count + 1 if now // span == window else 1
            self.order_windows[name] = (now // span, count)
            headers[f"X-MBX-ORDER-COUNT-{name}"] = str(count)
        return headers
