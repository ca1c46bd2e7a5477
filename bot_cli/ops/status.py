"""What `bot status` reports: is a daemon following this state dir, and what is exposed.

The daemon is known from the state dir's lock (who holds it) and the heartbeat file the
daemon rewrites every 5 s (pid, venue, stream, last event, last reconcile, entries,
exposure, positions no entry explains). With a live daemon its heartbeat gives the entries, the
exposure and those positions; otherwise the journal gives the first two. The journal is always
read for the records the daemon cannot read.

The codes a monitor gets (exactly one applies, checked in this order):
  10  no daemon runs on this state dir (none ran, or the last one stopped cleanly)
  11  the daemon's heartbeat is stale (older than 15 s): it is hung, or it was killed without
      stopping cleanly (kill -9, a crash); or the lock is held by a dead pid
  12  an entry needs attention (NEEDS_ATTENTION or UNREADABLE), a share is not covered, or
      a position is larger than the entries on it explain (nothing of the bot protects that part)
  0   a daemon runs, its heartbeat is fresh, and nothing needs a person
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_cli.ops.journal import iso


HEALTHY, NO_DAEMON, STALE, ATTENTION = 0, 10, 11, 12
STALE_BEATS = 3  # missed beats before the heartbeat is stale (the daemon beats every 5 s)
_UNCLAIMED_KEYS = frozenset({"symbol", "position_side", "side", "quantity", "position"})
_EXPOSURE_KEYS = frozenset({
    "symbol", "side", "position_side", "share", "stop_loss", "take_profit", "entries", "covered",
})


@dataclass(frozen=True, slots=True)
class Beat:
    """The heartbeat's guaranteed fields, checked at the edge; the rest is shown as written."""

    pid: int
    written_at: int
    started_at: int
    raw: dict[str, Any]

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Beat | None:
        if raw is None:
            return None
        pid, written, started = raw.get("pid"), raw.get("written_at"), raw.get("started_at")
        if not all(type(v) is int for v in (pid, written, started)):
            return None  # not a heartbeat this version wrote: as good as none
        return cls(pid, written, started, raw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Daemon:
    """What the lock and the heartbeat say: running, none or stale, and why in words."""

    code: int  # HEALTHY, NO_DAEMON or STALE
    pid: int | None
    note: str
    beat: Beat | None = None  # only when it is the running daemon's own

    @property
    def state(self) -> str:
        return {HEALTHY: "running", NO_DAEMON: "none", STALE: "stale"}[self.code]


def classify(
    holder: int | None, beat: Beat | None, now_ms: int, alive: Callable[[int], bool], stale_ms: int
) -> Daemon:
    """The daemon's state from the lock holder (None: free, 0: no pid) and the heartbeat."""
    if holder is None:
        if beat is None:
            note = "no daemon is running on this state dir: start `bot run`"
            return Daemon(NO_DAEMON, None, note)
        # killed (kill -9, a crash, the host): its heartbeat went stale with nobody to follow fills
        return Daemon(STALE, None, (
            f"no daemon is running: the last one (pid {beat.pid}) did not stop cleanly, its"
            f" heartbeat is from {iso(beat.written_at)}; start `bot run`"))  # fmt: skip
    if holder == 0 or not alive(holder):
        who = f"pid {holder}" if holder else "a process that wrote no pid"
        return Daemon(STALE, holder or None, (
            f"the state dir's lock is held, but by {who} that is not alive (a child process"
            " that inherited it?); find the holder (`fuser lock` in the state dir), stop it"
        ))  # fmt: skip
    if beat is None or beat.pid != holder:
        return Daemon(NO_DAEMON, holder, (
            f"no daemon heartbeat: process {holder} holds the state dir (a one-shot `bot enter`,"
            " `recover`, `cancel` or `close`, or a `bot run` still starting)"))  # fmt: skip
    old_s = (now_ms - beat.written_at) / 1000
    if now_ms - beat.written_at > stale_ms:
        return Daemon(STALE, holder, (
            f"the daemon (pid {holder}) last wrote its heartbeat {old_s:.0f}s ago: it may be hung;"
            f" `kill {holder}` and start `bot run`"), beat)  # fmt: skip
    return Daemon(HEALTHY, holder, "", beat)


@dataclass(frozen=True, slots=True)
class Report:
    daemon: Daemon
    source: str  # where entries and exposure come from: "heartbeat" or "journal"
    entries: dict[str, int]
    exposure: list[dict[str, Any]]
    unreadable: int
    now_ms: int
    warnings: list[str] = field(default_factory=list)
    unclaimed: list[dict[str, Any]] = field(default_factory=list)  # from the daemon only

    def problems(self) -> list[str]:
        """What needs a person among the entries, in words."""
        found = []
        if n := self.entries.get("NEEDS_ATTENTION", 0):
            found.append(f"{n} entr{'y' if n == 1 else 'ies'} NEEDS_ATTENTION"
                         " (see `bot pending list`)")  # fmt: skip
        if self.unreadable:
            found.append(f"{self.unreadable} journal record(s) UNREADABLE (see `bot pending list`)")
        found.extend(
            f"{x['symbol']} {x['side']} share {x['share']} is covered by a stop-loss of only {x['stop_loss']}"
            for x in self.exposure if not x["covered"]
        )  # fmt: skip
        found.extend(
            f"{u['symbol']} {u['position_side']}: {u['side']} {u['quantity']} of the position {u['position']}"
            " is held by no entry: nothing of the bot protects it"
            for u in self.unclaimed
        )  # fmt: skip
        found.extend(self._daemon_problems())
        return found

    def _daemon_problems(self) -> list[str]:
        """A deaf stream, and position reads short of the shares not proven yet (heartbeat)."""
        raw = self.daemon.beat.raw if self.daemon.beat is not None else {}
        stream, doubts = raw.get("stream"), raw.get("doubts")
        stream = stream if isinstance(stream, dict) else {}
        doubts = doubts if isinstance(doubts, list) else []
        found = []
        if isinstance(deaf := stream.get("deaf_since"), int) and deaf > 0:
            found.append(f"the user stream is deaf since {iso(deaf)}: connected, but no event for the bot's own"
                         " orders; fills are seen by REST polling only (check venue.ws_url)")  # fmt: skip
        found.extend(
            f"{d.get('symbol')} {d.get('position_side')}: the position reads less than the entries' shares;"
            f" nothing is moved until it is proven (waiting for {d.get('waiting_for')})"
            for d in doubts if isinstance(d, dict)
        )  # fmt: skip
        return found

    @property
    def code(self) -> int:
        if self.daemon.code != HEALTHY:
            return self.daemon.code
        return ATTENTION if self.problems() else HEALTHY


def gather(state_dir: Path, now_ms: int) -> Report:
    """Read the lock, the heartbeat and the journal; changes nothing, creates nothing."""
    from bot_cli.runtime.heartbeat import EVERY_S, read
    from bot_cli.state_store import lock_holder
    from bot_cli.store.lock import is_alive

    stale_ms = int(STALE_BEATS * EVERY_S * 1000)
    daemon = classify(lock_holder(state_dir), Beat.parse(read(state_dir)), now_ms, is_alive, stale_ms)
    entries, exposure, unreadable, warnings = _journal(state_dir)
    view = None if daemon.beat is None else _beat_view(daemon.beat.raw)
    if view is not None:  # the daemon's own view: what it follows right now
        return Report(daemon, "heartbeat", *view[:2], unreadable, now_ms, warnings, view[2])
    return Report(daemon, "journal", entries, exposure, unreadable, now_ms, warnings)


def _beat_view(
    raw: dict[str, Any],
) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The heartbeat's entries, exposure and unclaimed positions, if shaped as the daemon writes."""
    entries, exposure, unclaimed = raw.get("entries"), raw.get("exposure"), raw.get("unclaimed", [])
    if not isinstance(entries, dict) or not all(type(n) is int for n in entries.values()):
        return None
    if not isinstance(exposure, list):
        return None
    if not all(isinstance(x, dict) and x.keys() >= _EXPOSURE_KEYS for x in exposure):
        return None
    if not isinstance(unclaimed, list) or not all(isinstance(u, dict) and u.keys() >= _UNCLAIMED_KEYS
                                                  for u in unclaimed):
        return None
    return entries, exposure, unclaimed


def _journal(state_dir: Path) -> tuple[dict[str, int], list[dict[str, Any]], int, list[str]]:
    from bot_cli.core.summary import by_status, exposure
    from bot_cli.ops.journal import read_journal
    from bot_cli.state_store import PendingEntryStore

    if not state_dir.is_dir():
        return {}, [], 0, []
    with PendingEntryStore(state_dir) as store:
        entries, unreadable = read_journal(store)
        warnings = store.warnings
    live = list(entries.values())
    return by_status(live), [x.as_dict() for x in exposure(live)], len(unreadable), warnings


def deadman_lines(d: Any, now_ms: int) -> list[str]:
    """The dead-man switch as the heartbeat has it: which symbols are covered, which are not and why."""
    if not isinstance(d, dict):
        return ["dead-man switch: off ([deadman] countdown_s = 0)"]
    head = f"dead-man switch: countdown {d.get('countdown_s', 0):g}s, going by {d.get('basis') or '?'}"
    armed, skipped, errors = d.get("armed") or {}, d.get("skipped") or {}, d.get("errors") or {}
    if not d.get("allowed", True):
        lines = [f"dead-man switch: OFF: {d.get('why_not')}"]
    elif not armed and not skipped:
        lines = [f"{head}; no entry order rests, nothing armed"]
    else:
        lines = [head]
    for symbol, at in sorted(armed.items()):
        renewed = f"renewed {max(0, now_ms - at) / 1000:.0f}s ago" if isinstance(at, int) and at > 0 else "arming"
        lines.append(f"  {symbol}: armed, {renewed}")
    if d.get("allowed", True):
        lines += [f"  {symbol}: NOT armed: {why}" for symbol, why in sorted(skipped.items())]
    else:
        lines += [f"  {symbol}: resting entries NOT covered" for symbol in sorted(skipped)]
    lines += [f"  {symbol}: failing: {why}" for symbol, why in sorted(errors.items())]
    return lines
