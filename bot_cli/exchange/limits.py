"""The IP request weight of the current minute: what the exchange allows and what is used (pure).

The limit is what exchangeInfo.rateLimits says (REQUEST_WEIGHT per minute, per IP, reference
§7): nothing is hard-coded, and until it has been read nothing is refused here (the exchange's
own 429 still is). The use is the exchange's own count, `X-MBX-USED-WEIGHT-1M`, which covers
every process on the IP; where an answer lacks it, the endpoint's known weight is added.

Near the limit a read is refused at once rather than sent (the caller may hold the engine lock
a protective send waits on: nothing here sleeps); order sends and cancels are never refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot_cli.exchange.wire import RateLimit


THROTTLE_SHARE = 0.9  # refuse reads past this share of the minute's limit
MINUTE_MS = 60_000


def weight_per_minute(limits: Iterable[RateLimit]) -> int | None:
    """The REQUEST_WEIGHT limit of one minute, if the exchange states one."""
    minute_s = MINUTE_MS // 1000
    return next((x.limit for x in limits if x.kind == "REQUEST_WEIGHT" and x.interval_s == minute_s), None)


class WeightBudget:
    """The request weight of one server minute: the exchange's limit, and what it says is used."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # per minute; None until exchangeInfo has been read
        self.used = 0  # the last X-MBX-USED-WEIGHT-1M seen, in `minute`
        self.minute = 0
        self.spent = 0  # the known weights of every answered request, summed

    def count(self, weight: int, used_header: str, now_ms: int) -> None:
        """An answered request of `weight`, whose answer said `used_header` (may be "")."""
        self.spent += weight
        if now_ms // MINUTE_MS != self.minute:
            self.used, self.minute = 0, now_ms // MINUTE_MS
        self.used = int(used_header) if used_header.isdigit() else self.used + weight

    def refusal(self, weight: int, now_ms: int) -> float | None:
        """Seconds to the next minute if a read of `weight` must not be sent now, else None."""
        if self.limit is None or now_ms // MINUTE_MS != self.minute:
            return None  # no limit known, or the minute that weight was counted in is over
        if self.used + weight <= self.limit * THROTTLE_SHARE:
            return None
        return (MINUTE_MS - now_ms % MINUTE_MS) / 1000
