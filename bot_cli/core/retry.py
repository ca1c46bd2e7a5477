"""The retry policy for transient trouble (pure): how long to wait, never whether to give up.

Transient outcomes (429/418, -1008, 503 "Service Unavailable", unreachable before sending)
were definitely not executed; they are retried with a doubling backoff that honours the
exchange's own Retry-After or ban end, and never count toward ``max_protection_attempts``.
"""

from __future__ import annotations

from bot_cli.core.model import Millis, Policy


def backoff_ms(failures: int, retry_after_ms: int, policy: Policy) -> Millis:
    """The wait before the next try after ``failures`` transient failures in a row."""
    doubling = policy.recheck_ms << min(max(failures - 1, 0), 16)
    return max(min(doubling, policy.retry_max_ms), retry_after_ms)
