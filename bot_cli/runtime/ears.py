"""Is the user stream hearing the bot's own orders? (pure: times are passed in)

Every order the bot sends is a probe of its stream: when a REST answer shows one of its orders
changed (accepted, cancelled, filled), the stream reports the same change within moments. If it
has not within ``deaf_after_ms``, the stream is deaf (a wrong route is accepted and stays
silent; a socket can hang): the daemon then reconciles by REST at a short interval until the
stream speaks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot_cli.core import commands as cm
from bot_cli.core import events as ev
from bot_cli.core.model import AlgoStatus, Millis
from bot_cli.runtime.dispatch import Job


DEAF_AFTER_MS = 5_000
_HEARD_KEPT_MS = 120_000  # how long a client id the stream reported is remembered
_PRUNE_EVERY_MS = 10_000  # how often ids older than that are forgotten
_SENDS = (cm.PlaceEntry, cm.PlaceProtection, cm.ClosePosition, cm.CancelProtection, cm.CancelEntry)
_CHANGED = (
    ev.EntryAccepted, ev.EntryPartiallyFilled, ev.EntryFilled, ev.EntryCanceled, ev.EntryCanceledPartFilled,
    ev.ProtectionCanceled, ev.CloseReport,
)


def stream_should_say(job: Job) -> str | None:
    """The client id whose change the stream must report, after this answered job; or None."""
    cmd = job.cmd
    if not isinstance(cmd, _SENDS):
        return None
    for e in job.events:
        if isinstance(e, _CHANGED) or (isinstance(e, ev.ProtectionReport) and e.status is AlgoStatus.NEW):
            return cmd.client_id
    return None


@dataclass
class Ears:
    """What the stream owes, what it said, and whether it is deaf."""

    deaf_after_ms: int = DEAF_AFTER_MS
    owed: dict[str, tuple[Millis, Millis]] = field(default_factory=dict)  # id -> (sent, due by)
    heard: dict[str, Millis] = field(default_factory=dict)  # id -> last time the stream said it
    last_heard: Millis = 0  # anything at all
    deaf_since: Millis = 0  # 0: hearing
    pruned_at: Millis = 0  # when ``heard`` was last cut to _HEARD_KEPT_MS

    @property
    def deaf(self) -> bool:
        return self.deaf_since > 0

    def expect(self, client_id: str, sent_at: Millis, now: Millis) -> None:
        """An answer showed ``client_id`` changed (decided at ``sent_at``): the stream owes it."""
        if self.heard.get(client_id, 0) < sent_at:
            self.owed.setdefault(client_id, (sent_at, now + self.deaf_after_ms))

    def hear(self, client_id: str | None, now: Millis) -> Millis:
        """The stream said something (about ``client_id``). When it was deaf until now, since
        when (then it is hearing again); 0 when it was hearing."""
        self.last_heard = now
        if client_id is not None:
            self.heard[client_id] = now
            self.owed.pop(client_id, None)
        if now - self.pruned_at >= _PRUNE_EVERY_MS:  # not per message: a burst hears hundreds
            self.pruned_at = now
            self.heard = {k: t for k, t in self.heard.items() if now - t < _HEARD_KEPT_MS}
        since, self.deaf_since = self.deaf_since, 0
        if since:
            self.owed.clear()
        return since

    def check(self, now: Millis) -> bool:
        """True when the stream has just been found deaf (something owed is overdue)."""
        if self.deaf or not any(due <= now for _, due in self.owed.values()):
            return False
        self.deaf_since = now
        return True
