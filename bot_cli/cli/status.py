"""`bot status`: is a daemon following this state dir, and what is exposed.

The daemon is known from the state dir's lock (who holds it) and the heartbeat file the
daemon rewrites every 5 s (pid, venue, stream, last event, last reconcile, entries,
exposure). With a live daemon its heartbeat gives the entries and the exposure; otherwise
the journal does. The journal is always read for the records the daemon cannot read.

Exit codes, for monitors (exactly one applies, checked in this order):
  10  no daemon runs on this state dir
  11  the daemon's heartbeat is stale (older than 15 s), or the lock is held by a dead pid
  12  an entry needs attention (NEEDS_ATTENTION or UNREADABLE) or a share is not covered
  0   a daemon runs, its heartbeat is fresh, and nothing needs a person
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.history import iso
from bot_cli.cli.render import age, print_json, table, warn


HEALTHY, NO_DAEMON, STALE, ATTENTION = 0, 10, 11, 12
STALE_BEATS = 3  # missed beats before the heartbeat is stale (the daemon beats every 5 s)
EXPOSURE_HEADERS = (
    "symbol", "side", "position side", "share", "stop-loss", "take-profit", "entries", "covered",
)
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
        return Daemon(NO_DAEMON, None, (
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
        return Report(daemon, "heartbeat", *view, unreadable, now_ms, warnings)
    return Report(daemon, "journal", entries, exposure, unreadable, now_ms, warnings)


def _beat_view(raw: dict[str, Any]) -> tuple[dict[str, int], list[dict[str, Any]]] | None:
    """The heartbeat's entries and exposure, if they have the shape the daemon writes."""
    entries, exposure = raw.get("entries"), raw.get("exposure")
    if not isinstance(entries, dict) or not all(type(n) is int for n in entries.values()):
        return None
    if not isinstance(exposure, list):
        return None
    if not all(isinstance(x, dict) and x.keys() >= _EXPOSURE_KEYS for x in exposure):
        return None
    return entries, exposure


def _journal(state_dir: Path) -> tuple[dict[str, int], list[dict[str, Any]], int, list[str]]:
    from bot_cli import ops
    from bot_cli.core.summary import by_status, exposure
    from bot_cli.state_store import PendingEntryStore

    if not state_dir.is_dir():
        return {}, [], 0, []
    with PendingEntryStore(state_dir) as store:
        entries, unreadable = ops.read_journal(store)
        warnings = store.warnings
    live = list(entries.values())
    return by_status(live), [x.as_dict() for x in exposure(live)], len(unreadable), warnings


# -- the command ----------------------------------------------------------------------------


_JSON_HELP = "Print JSON (with exit_code and problems)."


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
) -> None:
    """Is a daemon running here (pid, uptime, stream, last reconcile), and what is exposed.

    Entries by state, and each symbol's share against its live stop-loss and take-profit.

    Example: bot status; bot status --json

    Exit 0: a daemon runs, its heartbeat is fresh, nothing needs a person.

    Exit 10: no daemon runs on this state dir.

    Exit 11: the daemon's heartbeat is older than 15 s (hung?), or the lock's pid is dead.

    Exit 12: an entry is NEEDS_ATTENTION or UNREADABLE, or a share is not covered by its stop-loss.
    """
    obj: AppContext = ctx.obj
    report = gather(obj.state_dir, time.time_ns() // 1_000_000)
    for line in report.warnings:
        warn(line)
    if as_json:
        print_json(as_json_doc(report))
    else:
        _print(report, obj.state_dir)
    if report.code != HEALTHY:
        warn(report.daemon.note if report.daemon.code != HEALTHY else "; ".join(report.problems()))
        raise typer.Exit(report.code)


def as_json_doc(r: Report) -> dict[str, Any]:
    d, raw = r.daemon, (r.daemon.beat.raw if r.daemon.beat else {})
    daemon: dict[str, Any] = {"state": d.state, "pid": d.pid, "note": d.note or None}
    if d.beat is not None:
        daemon.update(
            venue=raw.get("venue"), started_at=d.beat.started_at,
            uptime_seconds=round((r.now_ms - d.beat.started_at) / 1000, 1),
            heartbeat_at=d.beat.written_at, stream=raw.get("stream"),
            last_event_at=raw.get("last_event_at") or None,
            last_reconcile=raw.get("last_reconcile") or None, start_weight=raw.get("start_weight"),
        )  # fmt: skip
    return {"daemon": daemon, "source": r.source, "entries": r.entries, "unreadable": r.unreadable,
            "exposure": r.exposure, "problems": r.problems(), "exit_code": r.code}


def _print(r: Report, state_dir: Path) -> None:
    d = r.daemon
    if d.beat is None:
        typer.echo(f"daemon: {d.state} - {d.note}")
    else:
        for line in _daemon_lines(d.beat, r.now_ms, d.state):
            typer.echo(line)
    counts = ", ".join(f"{n} {s}" for s, n in r.entries.items()) or "none"
    typer.echo(f"entries: {counts} (from the {'daemon' if r.source == 'heartbeat' else 'journal'})")
    if r.unreadable:
        typer.echo(f"unreadable journal records: {r.unreadable}")
    if r.exposure:
        cells = [_exposure_cells(x) for x in r.exposure]
        table(f"exposure in {state_dir}", EXPOSURE_HEADERS, cells)
    else:
        typer.echo("exposure: none")


def _daemon_lines(b: Beat, now: int, state: str) -> list[str]:
    raw = b.raw
    stream, rec = raw.get("stream") or {}, raw.get("last_reconcile") or {}
    up = "connected" if stream.get("connected") else "NOT connected"
    lines = [
        (f"daemon: {state}, pid {b.pid} (stop it with `kill {b.pid}`),"
        f" up {age((now - b.started_at) / 1000)}, venue {raw.get('venue') or '?'}"),
        f"stream: {up} since {_ago(stream.get('since'), now)}",
        f"last event: {_ago(raw.get('last_event_at'), now)}",
        f"heartbeat: {_ago(b.written_at, now)}",
    ]
    if (weight := raw.get("start_weight")) is not None:
        lines.append(f"start: request weight {weight} (of the exchange's limit per minute)")
    if rec:
        lines.insert(3, (
            f"last reconcile: {_ago(rec.get('at'), now)} ({rec.get('why')}):"
            f" {rec.get('entries')} entries, {rec.get('acted')} acted on, {rec.get('calls')} calls,"
            f" {rec.get('needs_attention')} need attention"
        ))  # fmt: skip
    else:
        lines.insert(3, "last reconcile: none yet")
    return lines


def _ago(ms: object, now: int) -> str:
    if type(ms) is not int or ms <= 0:
        return "never"
    return f"{iso(ms)} ({age(max(0, now - ms) / 1000)} ago)"


def _exposure_cells(x: dict[str, Any]) -> tuple[str, ...]:
    covered = "yes" if x["covered"] else "NO: uncovered"
    keys = ("symbol", "side", "position_side", "share", "stop_loss", "take_profit")
    return (*(str(x[k]) for k in keys), str(x["entries"]), covered)
