"""`bot status`: is a daemon following this state dir, and what is exposed (``ops.status``,
which also lists the exit codes a monitor gets)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import age, print_json, table, warn
from bot_cli.ops.journal import iso
from bot_cli.ops.status import HEALTHY, Beat, Report, deadman_lines, gather


EXPOSURE_HEADERS = (
    "symbol", "side", "position side", "share", "stop-loss", "take-profit", "entries", "covered",
)


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

    Exit 10: no daemon runs on this state dir (none ran, or the last one stopped cleanly).

    Exit 11: the daemon's heartbeat is older than 15 s: it hangs, or it was killed without
    stopping cleanly (kill -9); or the lock's pid is dead.

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
            deadman=raw.get("deadman"),
        )  # fmt: skip
    return {"daemon": daemon, "source": r.source, "entries": r.entries, "unreadable": r.unreadable,
            "exposure": r.exposure, "unclaimed": r.unclaimed, "problems": r.problems(), "exit_code": r.code}


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
    elif r.source == "journal" and r.entries:
        typer.echo("exposure: unknown - no daemon follows the exchange, and the journal cannot say what filled"
                   " since; `bot recover --dry-run` reads it")  # fmt: skip
    else:
        typer.echo("exposure: none")
    for u in r.unclaimed:
        typer.echo(f"NOT the bot's: {u['symbol']} {u['position_side']} {u['side']} {u['quantity']} of the"
                   f" position {u['position']} is held by no entry; nothing of the bot protects it")


def _daemon_lines(b: Beat, now: int, state: str) -> list[str]:
    raw = b.raw
    stream, rec = raw.get("stream") or {}, raw.get("last_reconcile") or {}
    up = "connected" if stream.get("connected") else "NOT connected"
    if isinstance(deaf := stream.get("deaf_since"), int) and deaf > 0:
        up = f"connected but DEAF since {_ago(deaf, now)} (reconciling by REST)"
    lines = [
        (f"daemon: {state}, pid {b.pid} (stop it with `kill {b.pid}`),"
        f" up {age((now - b.started_at) / 1000)}, venue {raw.get('venue') or '?'}"),
        f"stream: {up} since {_ago(stream.get('since'), now)}",
        f"last event: {_ago(raw.get('last_event_at'), now)}",
        f"heartbeat: {_ago(b.written_at, now)}",
    ]
    lines += deadman_lines(raw.get("deadman"), now)
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
