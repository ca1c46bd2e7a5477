"""The exchange's rate limits, as this client sees them (pure): the IP request weight of the
current minute, and the account's new orders per window (``OrderBudget``).

The limit is what exchangeInfo.rateLimits says (REQUEST_WEIGHT per minute, per IP, reference
§7): nothing is hard-coded, and until it has been read nothing is refused here (the exchange's
own 429 still is). The use is the exchange's own count, `X-MBX-USED-WEIGHT-1M`, which covers
every process on the IP; where an answer lacks it, the endpoint's known weight is added.

Near the limit a read is refused at once rather than sent (nothing here sleeps: the caller
decides what waits); order sends and cancels are never refused here. Which new order goes first
when the order budget is short is the daemon's choice (runtime.dispatch): stop-losses first.
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


ORDER_SHARE = 0.95  # leave this much of each order window to the account's other clients
STOP_RESERVE = 0.1  # and keep this much of it for stop-losses and closes


class OrderBudget:
    """The account's new orders per window (exchangeInfo's ORDERS limits, reference §7): what
    the exchange counted (X-MBX-ORDER-COUNT-10S / -1M) and what this client sent since.

    Windows are aligned to the server clock (now // span), as Binance counts them. Until the
    limits are read nothing is held back (the exchange's own -1015 still is)."""

    def __init__(self) -> None:
        self.limits: dict[int, int] = {}  # window in ms -> orders allowed in it
        self._used: dict[int, tuple[int, int]] = {}  # window in ms -> (window number, used)

    def load(self, limits: Iterable[RateLimit]) -> None:
        self.limits = {x.interval_s * 1000: x.limit for x in limits if x.kind == "ORDERS"}

    def used(self, span_ms: int, now_ms: int) -> int:
        window, used = self._used.get(span_ms, (-1, 0))
        return used if window == now_ms // span_ms else 0

    def sent(self, now_ms: int) -> None:
        """One new order is on its way: count it before the exchange's header says so."""
        for span in self.limits:
            self._used[span] = (now_ms // span, self.used(span, now_ms) + 1)

    def counted(self, span_ms: int, header: str, now_ms: int) -> None:
        """The exchange's own count for a window (a header); never below what was sent."""
        if header.isdigit() and span_ms in self.limits:
            self._used[span_ms] = (now_ms // span_ms, max(int(header), self.used(span_ms, now_ms)))

    def exhausted(self, now_ms: int) -> None:
        """The exchange said -1015: every window is full as far as we are concerned."""
        for span, limit in self.limits.items():
            self._used[span] = (now_ms // span, max(limit, self.used(span, now_ms)))

    def room(self, now_ms: int) -> int | None:
        """New orders that may go now; None while no limit is known."""
        if not self.limits:
            return None
        return min(max(int(limit * ORDER_SHARE) - self.used(span, now_ms), 0) for span, limit in self.limits.items())

    def reserve(self) -> int:
        """Slots of the smallest window only stop-losses and closes may take (at least one)."""
        return max(1, int(min(self.limits.values()) * STOP_RESERVE)) if self.limits else 0

    def wait_s(self, now_ms: int) -> float:
        """Seconds until the fullest window rolls over (0 when there is room)."""
        full = [span for span, limit in self.limits.items() if self.used(span, now_ms) >= int(limit * ORDER_SHARE)]
        return max(((span - now_ms % span) / 1000 for span in full), default=0.0)
