"""The retry policy for transient trouble (pure): how long to wait, never whether to give up.

Transient outcomes (429/418, -1008, 503 "Service Unavailable", unreachable before sending)
were definitely not executed; they are retried for as long as they last and never count toward
``max_protection_attempts``. When the exchange says when to come back (Retry-After, the end of a
ban or of an order-count window) that is the wait, exactly: waiting longer leaves a fill bare for
nothing. Otherwise the wait doubles from ``recheck_ms`` up to ``retry_max_ms`` (a few seconds:
protection is retried at the pace trouble allows, not once a minute), spread by a jitter that is
a pure function of the entry and the try, so a burst of entries does not retry in lockstep and a
test sees the same delays every time.
"""

from __future__ import annotations

import zlib

from bot_cli.core.model import Millis, Policy


_MAX_SHIFT = 16
_JITTER_SPAN = 2**32


def backoff_ms(failures: int, retry_after_ms: int, policy: Policy, key: str = "") -> Millis:
    """The wait before the next try after ``failures`` transient failures in a row."""
    if retry_after_ms > 0:
        return retry_after_ms
    return jittered(doubling_ms(failures, policy.recheck_ms, policy.retry_max_ms), key, failures)


def doubling_ms(failures: int, first_ms: int, cap_ms: int) -> Millis:
    """``first_ms``, twice that, four times ..., never above ``cap_ms``."""
    return min(first_ms << min(max(failures - 1, 0), _MAX_SHIFT), cap_ms)


def jittered(wait_ms: Millis, key: str, failures: int) -> Millis:
    """Between half of ``wait_ms`` and all of it, the same for the same key and try."""
    spread = zlib.crc32(f"{key}:{failures}".encode()) / _JITTER_SPAN
    return wait_ms // 2 + int(wait_ms / 2 * spread)
