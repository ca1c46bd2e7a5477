"""Binance's request checks, server side: API key, HMAC signature, timestamp, request weight,
order rate limits.

The signature is HMAC-SHA256 (hex, case-insensitive) over ``totalParams`` = the exact query
string concatenated with the exact body, no separator, with ``signature`` removed from the end
of whichever of the two carries it (Binance requires it to be the last parameter).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qsl

from bot_cli.paper.rules import BookError, integer


# The one account's credentials: the venue accepts these and no others.
PAPER_API_KEY = "paper-key"
PAPER_API_SECRET = "paper-secret"
WEIGHT_LIMIT = 2400  # REQUEST_WEIGHT per minute, as exchangeInfo says
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_MS = 1000  # a timestamp this far ahead of the server's clock is refused
MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
SECOND_MS = 1000
ORDER_LIMIT_10S = 300  # ORDERS per account (reference §7)
ORDER_LIMIT_1M = 1200
TOO_MANY_ORDERS = -1015
TOO_MANY_REQUESTS_STATUS = 429


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


class OrderWindow(NamedTuple):
    """One fixed, clock-aligned order-count window."""

    header: str  # X-MBX-ORDER-COUNT-<header>
    interval: str  # as the -1015 message names it
    span_ms: int


ORDER_WINDOWS = (OrderWindow("10S", "TEN_SECONDS", TEN_SECONDS_MS), OrderWindow("1M", "MINUTE", MINUTE_MS))


class OrderLimits(NamedTuple):
    """The ORDERS limits per account, in ``ORDER_WINDOWS`` order."""

    per_10s: int = ORDER_LIMIT_10S
    per_1m: int = ORDER_LIMIT_1M


BINANCE_ORDER_LIMITS = OrderLimits()


class OrderCost(NamedTuple):
    """What one request counts toward each window, in ``ORDER_WINDOWS`` order."""

    per_10s: int = 1
    per_1m: int = 1


ONE_ORDER = OrderCost()  # POST /order and /algoOrder (a batch would be OrderCost(5, 1))


class TooManyOrders(BookError):
    """-1015: an order beyond a limit, refused uncounted; ``headers`` add Retry-After and the counts."""

    def __init__(self, limit: int, interval: str, headers: dict[str, str]) -> None:
        msg = f"Too many new orders; current limit is {limit} orders per {interval}."
        super().__init__(TOO_MANY_ORDERS, msg, TOO_MANY_REQUESTS_STATUS)
        self.headers = headers


def seconds_left(span_ms: int, now: int) -> int:
    """Whole seconds until the window holding ``now`` rolls over, at least 1 (a Retry-After)."""
    left_ms = (now // span_ms + 1) * span_ms - now
    return max(1, -(-left_ms // SECOND_MS))


@dataclass
class WeightMeter:
    """IP request weight per minute, and order counts per 10 s and per minute (fixed windows
    aligned to the venue's clock, as Binance's), held to ``limits``."""

    limits: OrderLimits = BINANCE_ORDER_LIMITS
    minute: int = -1
    used: int = 0
    order_windows: dict[str, tuple[int, int]] = field(default_factory=dict)  # header: (window, count)

    def add(self, weight: int, now: int) -> int:
        if now // MINUTE_MS != self.minute:
            self.minute, self.used = now // MINUTE_MS, 0
        self.used += weight
        return self.used

    def order_counts(self, now: int) -> list[int]:
        """The orders counted so far in the windows holding ``now``, in ``ORDER_WINDOWS`` order."""
        counts = []
        for window in ORDER_WINDOWS:
            start, count = self.order_windows.get(window.header, (-1, 0))
            counts.append(count if start == now // window.span_ms else 0)
        return counts

    def add_order(self, now: int, cost: OrderCost = ONE_ORDER) -> dict[str, str]:
        """Count an order: the X-MBX-ORDER-COUNT-* headers to send. Beyond a limit it is not
        counted: TooManyOrders names the window that rolls over last (retrying sooner fails)."""
        counts = self.order_counts(now)
        after = [count + add for count, add in zip(counts, cost, strict=True)]
        over = [
            (seconds_left(window.span_ms, now), window.span_ms, limit, window.interval)
            for window, limit, count in zip(ORDER_WINDOWS, self.limits, after, strict=True)
            if count > limit
        ]
        if over:  # a tie (both end now): the longer window, the one a client should back off for
            wait_s, _span, limit, interval = max(over)
            retry = {"Retry-After": str(wait_s)}
            raise TooManyOrders(limit, interval, {**_count_headers(counts), **retry})
        for window, count in zip(ORDER_WINDOWS, after, strict=True):
            self.order_windows[window.header] = (now // window.span_ms, count)
        return _count_headers(after)


def _count_headers(counts: list[int]) -> dict[str, str]:
    return {
        f"X-MBX-ORDER-COUNT-{window.header}": str(count)
        for window, count in zip(ORDER_WINDOWS, counts, strict=True)
    }
