"""Prometheus metrics of the running daemon: is every position protected, right now?

Gauges are computed when Prometheus scrapes, from the daemon's own state (the scrape runs in
the daemon's event loop, so it reads a consistent moment and never races a step). Two things
are counted as they happen: the fill-to-protection latency (``CoverWatch``: from the moment a
share is seen without a full stop-loss to the moment its stop-loss is live) and the reconcile
failures. README "Metrics" lists every metric; ``deploy/alerts.yml`` has the alert rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot_cli.core.admission import MAX_CONDITIONAL
from bot_cli.core.model import Leg, LegState, Pending, PendingId, Status
from bot_cli.core.summary import exposure


if TYPE_CHECKING:
    from bot_cli.runtime.driver import Daemon


# Fill to stop-loss: a calm exchange answers in tens of ms, a burst of 100 in about a second.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_COUNTED_LEGS = frozenset({LegState.SENDING, LegState.UNKNOWN, LegState.LIVE, LegState.CANCELING})


def _uncovered(p: Pending) -> bool:
    live = sum((x.quantity for x in p.protections if x.leg is Leg.SL and x.state is LegState.LIVE), Decimal(0))
    return p.share > live


class CoverWatch:
    """When each entry's share went without a full live stop-loss; observed once it has one."""

    def __init__(self, daemon: Daemon, histogram: Histogram) -> None:
        self.daemon, self.histogram = daemon, histogram
        self.since: dict[PendingId, int] = {}

    def look(self, pid: PendingId | None) -> None:
        if pid is None:
            return
        now = self.daemon.engine.clock.now_ms()
        p = self.daemon.engine.state.get(pid)
        if p is not None and _uncovered(p):
            self.since.setdefault(pid, now)
        elif pid in self.since:
            self.histogram.observe((now - self.since.pop(pid)) / 1000)


class DaemonCollector(Collector):
    """Everything read off the daemon at scrape time."""

    def __init__(
        self, daemon: Daemon, cover: CoverWatch, version: str, alerts: Callable[[], Mapping[str, int]]
    ) -> None:
        self.daemon, self.cover, self.version, self.alerts = daemon, cover, version, alerts
        self._first_seen: dict[tuple[str, str, str], int] = {}  # an exposure uncovered since (ms)

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        now = d.engine.clock.now_ms()
        entries = list(d.engine.state.values())
        yield _gauge("botcli_build_info", "bot_cli's version.", 1, version=self.version)
        yield from self._exposure(entries, now)
        yield from _entries(entries, now)
        yield from self._stream(now)
        yield from self._reconcile(now)
        yield from self._limits(entries)
        yield from self._deadman()
        alerts = GaugeMetricFamily("botcli_alerts", "Alerts by outcome since start: delivered, failed (given up"
                                   " after tries) or dropped (queue full, or stopped while sending).",
                                   labels=["outcome"])  # fmt: skip
        counts = self.alerts()
        for outcome in ("delivered", "failed", "dropped"):
            alerts.add_metric([outcome], float(counts.get(outcome, 0)))
        yield alerts

    def _exposure(self, entries: list[Pending], now: int) -> Iterable[Metric]:
        qty = GaugeMetricFamily("botcli_unprotected_quantity", "Filled quantity held by entries and not covered by"
                                " a live stop-loss, per symbol and position side (0 when covered).",
                                labels=["symbol", "side", "position_side"])  # fmt: skip
        age = GaugeMetricFamily("botcli_unprotected_seconds", "How long that quantity has been without a full"
                                " stop-loss (0 when covered).", labels=["symbol", "side", "position_side"])  # fmt: skip
        seen: set[tuple[str, str, str]] = set()
        for x in exposure(entries):
            key = (x.symbol, x.side.value, x.position_side.value)
            bare = max(x.share - x.stop_loss, Decimal(0))
            since = 0
            if bare > 0:
                seen.add(key)
                starts = [self.cover.since[p.pending_id] for p in entries if p.pending_id in self.cover.since
                          and (p.spec.symbol, p.spec.side.value, p.spec.position_side.value) == key]  # fmt: skip
                since = min([*starts, self._first_seen.setdefault(key, now)])
            qty.add_metric(list(key), float(bare))
            age.add_metric(list(key), (now - since) / 1000 if since else 0.0)
        self._first_seen = {k: v for k, v in self._first_seen.items() if k in seen}
        unclaimed = GaugeMetricFamily("botcli_unclaimed_quantity", "Part of a position no entry holds: nothing of"
                                      " the bot protects it.", labels=["symbol", "position_side"])  # fmt: skip
        for u in self.daemon.heartbeat.unclaimed:
            unclaimed.add_metric([u.symbol, u.position_side.value], float(abs(u.quantity)))
        yield from (qty, age, unclaimed)

    def _stream(self, now: int) -> Iterable[Metric]:
        d = self.daemon
        last = d.heartbeat.last_event_at
        yield _gauge("botcli_stream_connected", "1 while the user data stream is connected.",
                     1 if d.stream.connected.is_set() else 0)  # fmt: skip
        yield _gauge("botcli_stream_deaf", "1 while the stream is connected but did not report the bot's own orders"
                     " (the daemon reconciles by REST meanwhile).", 1 if d.ears.deaf else 0)  # fmt: skip
        yield _gauge("botcli_stream_last_event_seconds", "Seconds since the stream's last event (since start if"
                     " none).", (now - (last or d.heartbeat.started_at)) / 1000)  # fmt: skip

    def _reconcile(self, now: int) -> Iterable[Metric]:
        d = self.daemon
        last = d.heartbeat.last_reconcile
        yield _gauge("botcli_reconcile_last_seconds", "Seconds since the last completed reconcile (since start if"
                     " none yet).", (now - int(last.get("at") or d.heartbeat.started_at)) / 1000)  # fmt: skip
        yield _gauge("botcli_reconcile_last_acted", "Entries the last reconcile had to act on.",
                     int(last.get("acted") or 0))  # fmt: skip
        yield _gauge("botcli_reconcile_last_needs_attention", "Entries the last reconcile left NEEDS_ATTENTION.",
                     int(last.get("needs_attention") or 0))  # fmt: skip
        yield _gauge("botcli_reconcile_failures", "Reconciles that failed (and were tried again) since start.",
                     d.reconcile_failures)  # fmt: skip

    def _limits(self, entries: list[Pending]) -> Iterable[Metric]:
        venue: Any = self.daemon.engine.venue
        weight = getattr(venue, "weight", None)
        if weight is not None:
            yield _gauge("botcli_request_weight_used", "Request weight used this minute (X-MBX-USED-WEIGHT-1M).",
                         getattr(venue, "used_weight", 0))  # fmt: skip
            yield _gauge("botcli_request_weight_limit", "Request weight allowed per minute (exchangeInfo).",
                         weight.limit or 0)  # fmt: skip
        orders = getattr(venue, "orders", None)
        if orders is not None:
            now = self.daemon.engine.clock.now_ms()
            used = GaugeMetricFamily("botcli_orders_sent", "New orders counted in the exchange's ORDERS window.",
                                     labels=["window_s"])  # fmt: skip
            limit = GaugeMetricFamily("botcli_orders_limit", "New orders allowed per ORDERS window.",
                                      labels=["window_s"])  # fmt: skip
            for span_ms, allowed in sorted(orders.limits.items()):
                used.add_metric([str(span_ms // 1000)], orders.used(span_ms, now))
                limit.add_metric([str(span_ms // 1000)], allowed)
            yield from (used, limit)
        ours = sum(1 for p in entries for x in p.protections if x.state in _COUNTED_LEGS)
        yield _gauge("botcli_conditional_orders_open", "Open conditional (algo) orders on the account: the bot's"
                     " legs plus the others last counted.", ours + self.daemon.engine.foreign_conditional)  # fmt: skip
        yield _gauge("botcli_conditional_orders_limit", "Open conditional orders the account may hold.",
                     MAX_CONDITIONAL)  # fmt: skip

    def _deadman(self) -> Iterable[Metric]:
        switch = self.daemon.deadman
        armed = GaugeMetricFamily("botcli_deadman_armed", "1 per symbol whose dead-man switch (countdownCancelAll)"
                                  " the daemon renews.", labels=["symbol"])  # fmt: skip
        skipped = GaugeMetricFamily("botcli_deadman_skipped", "1 per symbol with a resting entry whose dead-man"
                                    " switch is not armed (`bot status` says why).", labels=["symbol"])  # fmt: skip
        if switch is not None:
            for symbol in switch.armed:
                armed.add_metric([symbol], 1)
            for symbol in switch.skipped:
                skipped.add_metric([symbol], 1)
        yield from (armed, skipped)


def _entries(entries: list[Pending], now: int) -> Iterable[Metric]:
    by_state = GaugeMetricFamily("botcli_entries", "Entries in the journal, by state.", labels=["state"])
    counts = {s: 0 for s in Status if not s.terminal}
    for p in entries:
        if p.status in counts:
            counts[p.status] += 1
    for status, n in counts.items():
        by_state.add_metric([status.value], n)
    yield by_state
    stuck = [p.history[-1].at if p.history else p.created_at for p in entries if p.status is Status.NEEDS_ATTENTION]
    yield _gauge("botcli_needs_attention_oldest_seconds", "Age of the oldest NEEDS_ATTENTION entry (0: none).",
                 (now - min(stuck)) / 1000 if stuck else 0.0)  # fmt: skip


def _gauge(name: str, doc: str, value: float, **labels: str) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    g.add_metric(list(labels.values()), float(value))
    return g


def registry_for(
    daemon: Daemon, version: str, alerts: Callable[[], Mapping[str, int]]
) -> tuple[CollectorRegistry, CoverWatch]:
    """A registry of the daemon's metrics (not the process-wide default one); ``alerts``: the
    notifier's counts by outcome."""
    registry = CollectorRegistry(auto_describe=False)
    histogram = Histogram(
        "botcli_fill_to_protection_seconds", "From a share seen without a full stop-loss to its stop-loss live.",
        buckets=LATENCY_BUCKETS, registry=registry,
    )  # fmt: skip
    cover = CoverWatch(daemon, histogram)
    registry.register(DaemonCollector(daemon, cover, version, alerts))
    return registry, cover
