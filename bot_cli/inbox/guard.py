"""The inbox's door: the shared secret, the body's size, the request rate.

The secret comes from the environment (``BOT_INBOX_SECRET``), never from the config file, and
is never logged. A request proves it knows the secret by one of:

- ``X-Bot-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (the secret never travels);
- ``X-Bot-Secret: <secret>`` (for curl and scripts);
- a ``"secret"`` field in the JSON body, for charting services that cannot set headers (the
  secret then lives in the alert: use it only behind TLS).

Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from bot_cli.errors import BotError
from bot_cli.inbox.signals import Refused


SECRET_ENV = "BOT_INBOX_SECRET"
MIN_SECRET_LEN = 16
SECRET_HEADER = "x-bot-secret"
SIGNATURE_HEADER = "x-bot-signature"


class InboxError(BotError):
    """The inbox cannot start: `bot run` stops with this line (the operator asked for it)."""


def secret_from(env: Mapping[str, str] | None = None) -> bytes:
    """The shared secret, from the environment only."""
    value = (os.environ if env is None else env).get(SECRET_ENV, "")
    if len(value) < MIN_SECRET_LEN:
        what = "is not set" if not value else f"is shorter than {MIN_SECRET_LEN} characters"
        raise InboxError(f"{SECRET_ENV} {what}: set it in the environment to enable the inbox")
    return value.encode()


def header_auth(headers: Mapping[str, str], body: bytes, secret: bytes) -> bool | None:
    """True/False when the request carries an auth header; None when it carries none."""
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        given = signature.strip().removeprefix("sha256=").lower()
        return hmac.compare_digest(given.encode(), expected.encode())
    given_secret = headers.get(SECRET_HEADER)
    if given_secret is not None:
        return hmac.compare_digest(given_secret.encode(), secret)
    return None


def body_auth(obj: Mapping[str, Any], secret: bytes) -> bool:
    given = obj.get("secret")
    return isinstance(given, str) and hmac.compare_digest(given.encode(), secret)


class RateLimit:
    """A token bucket: ``per_minute`` requests a minute, at most that many at once."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(per_minute, 1))
        self.rate = self.capacity / 60.0
        self.tokens, self.clock = self.capacity, clock
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Strangers:
    """A token bucket per source address for requests that fail authentication: they never
    take from the signals' budget, and one source cannot hammer the inbox either. At most
    ``keep`` sources are remembered (the least recently seen are forgotten)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, keep: int = 1024) -> None:
        self.per_minute, self.clock, self.keep = per_minute, clock, keep
        self.buckets: dict[str, RateLimit] = {}

    def take(self, source: str) -> bool:
        bucket = self.buckets.pop(source, None) or RateLimit(self.per_minute, self.clock)
        self.buckets[source] = bucket  # most recently seen last
        while len(self.buckets) > self.keep:
            del self.buckets[next(iter(self.buckets))]
        return bucket.take()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
