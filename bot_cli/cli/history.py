"""`bot history [ID]`: the archive (the audit trail), or one entry's whole story.

Without ID: every archived entry, newest first (id, symbol, side, quantity, filled, final
state, reason, when it was archived), optionally only those archived since --since.
With ID: the entry from the journal (still pending) or the archive: what was asked, where it
stands, every note the lifecycle kept with its time (the decisions, the prices seen, the
calls made), its protective legs, its market closes and what took its share away.

Exit 0: shown. Exit 1: an unknown id or an unreadable --since (one line).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.errors import BotError, UsageError
from bot_cli.ops.journal import Archived, Unreadable, find, iso, read_archive


if TYPE_CHECKING:
    from bot_cli.core.model import Pending, ProtectionOrder

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
ARCHIVE_HEADERS = ("id", "symbol", "side", "qty", "filled", "state", "reason", "archived")
LEG_HEADERS = ("entry", "client id", "leg", "quantity", "trigger", "state")
_SINCE_HELP = (
    "Only what happened since then: a duration back from now (30m, 2h, 1d, 1h30m)"
    " or an ISO time (2025-11-24, 2025-11-24T16:00Z)."
)
_ID_HELP = "An entry id (see `bot pending list`, or the archive this command lists)."


def history(
    ctx: typer.Context,
    pending_id: Annotated[str | None, typer.Argument(help=_ID_HELP, show_default=False)] = None,
    since: Annotated[str | None, typer.Option("--since", help=_SINCE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the archive, newest first, or with ID one entry's full history, legs and exits.

    Example: bot history --since 1d; bot history bc0mi3k2x7a1b2c

    Exit 0: shown. Exit 1: unknown id or unreadable --since; one line says why.
    """
    obj: AppContext = ctx.obj
    now = time.time_ns() // 1_000_000
    since_ms = None if since is None else parse_since(since, now)
    if pending_id is None:
        _show_archive(obj.state_dir, since_ms, as_json)
    else:
        _show_entry(obj.state_dir, pending_id, since_ms, as_json)


def parse_since(text: str, now_ms: int) -> int:
    """Epoch ms from `30m`, `1h30m`, `2d` back from now, or an ISO date or time (UTC if no zone)."""
    if _DURATION.fullmatch(text):
        seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text))
        return now_ms - seconds * 1000
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration (30m, 2h, 1d)"
            " nor an ISO time (2025-11-24T16:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


# -- the archive ----------------------------------------------------------------------------


def _archive_cells(a: Archived) -> tuple[str, ...]:
    d = a.as_json()
    keys = ("id", "symbol", "side", "quantity", "filled_quantity", "state", "reason")
    return (*(d[k] for k in keys), iso(a.at_ms))


def _show_archive(state_dir: Path, since_ms: int | None, as_json: bool) -> None:
    rows = [a for a in reversed(read_archive(state_dir)) if since_ms is None or a.at_ms >= since_ms]
    rows.sort(key=lambda a: a.at_ms, reverse=True)  # stable: equal times keep newest-written first
    if as_json:
        print_json({"archive": [a.as_json() for a in rows]})
        return
    if not rows:
        since = "" if since_ms is None else f" since {iso(since_ms)}"
        typer.echo(f"no archived entries in {state_dir}{since}")
        return
    cells = [_archive_cells(a) for a in rows]
    table(f"{len(rows)} archived entries in {state_dir}", ARCHIVE_HEADERS, cells)


# -- one entry ------------------------------------------------------------------------------


def _show_entry(state_dir: Path, key: str, since_ms: int | None, as_json: bool) -> None:
    found = find(state_dir, key)
    if found is None:
        raise BotError(f"no entry {key} in the journal or the archive of {state_dir}: "
                       "see `bot pending list` and `bot history`")
    if isinstance(found.entry, Unreadable):
        u = found.entry
        line = f"see its line in {state_dir / 'archive.jsonl'}"
        where = u.advice if found.archived is None else line
        raise BotError(f"the record of {key} cannot be read ({u.reason}): {where}")
    p, a = found.entry, found.archived
    notes = [n for n in p.history if since_ms is None or n.at >= since_ms]
    if as_json:
        print_json(entry_json(p, a, notes))
    else:
        _print_entry(p, a, notes)


def entry_json(p: Pending, a: Archived | None, notes: list[Any]) -> dict[str, Any]:
    s = p.spec

    def dec(v: object) -> str | None:
        return None if v is None else str(v)

    return {
        "id": p.pending_id, "where": "journal" if a is None else "archive",
        "archived_at": None if a is None else a.at_ms,
        "archive_reason": None if a is None else a.reason,
        "state": p.status.value, "reason": p.reason, "symbol": s.symbol, "side": s.side.value,
        "quantity": str(s.quantity), "order_type": s.order_type.value, "price": dec(s.price),
        "stop_loss": str(s.stop_loss), "take_profit": dec(s.take_profit),
        "position_side": s.position_side.value, "created_at": p.created_at,
        "filled_quantity": str(p.filled_qty), "avg_price": dec(p.avg_price), "share": str(p.share),
        "history": [{"at": n.at, "time": iso(n.at, precise=True), "text": n.text} for n in notes],
        "legs": legs_json(p),
        "exits": [{"by": x.key, "quantity": str(x.quantity)} for x in p.exits],
    }


def legs_json(p: Pending) -> list[dict[str, Any]]:
    """Its protective orders and market closes still on record, as data."""
    legs = [{"client_id": x.client_id, "leg": x.label, "kind": x.kind, "quantity": str(x.quantity),
             "trigger": _trigger(p, x), "state": x.state.value} for x in p.protections]
    if p.close is not None:
        c = p.close
        legs.append({"client_id": c.client_id, "leg": "close", "quantity": str(c.quantity),
                     "trigger": "market", "state": c.state.value})
    return legs


def _trigger(p: Pending, x: ProtectionOrder) -> str:
    """Where the leg triggers; a trailing stop, by how much it trails and from when."""
    from bot_cli.core.model import Leg

    trail = p.spec.trail
    if x.leg is not Leg.TRAIL or trail is None:
        return str(x.trigger_price)
    start = f" from {x.trigger_price}" if x.trigger_price else ""
    return f"trails {trail.callback_pct}%{start}"


def leg_cells(p: Pending) -> list[tuple[str, ...]]:
    keys = ("client_id", "kind", "quantity", "trigger", "state")
    return [(p.pending_id, *(x[k] for k in keys)) for x in legs_json(p)]


def _print_entry(p: Pending, a: Archived | None, notes: list[Any]) -> None:
    s = p.spec
    at = f" at {s.price}" if s.price is not None else ""
    tp = f", take-profit {s.take_profit}" if s.take_profit is not None else ""
    where = "in the journal" if a is None else f"archived {iso(a.at_ms)}"
    if a is not None and a.reason != p.reason:
        where += f" ({a.reason})"
    avg = f" at {p.avg_price}" if p.avg_price is not None else ""
    typer.echo(f"entry {p.pending_id}: {s.symbol} {s.side.value} {s.quantity} {s.order_type.value}"
               f"{at}, stop-loss {s.stop_loss}{tp} ({s.position_side.value})")
    typer.echo(f"state: {p.status.value}{f' - {p.reason}' if p.reason else ''}; {where}")
    typer.echo(f"created {iso(p.created_at)}; filled {p.filled_qty}{avg}; share {p.share}")
    lines = [(iso(n.at, precise=True), n.text) for n in notes]
    table(f"{len(notes)} notes", ("time", "note"), lines)
    if legs := leg_cells(p):
        table("orders on record", LEG_HEADERS, legs)
    if p.exits:
        exits = [(x.key, str(x.quantity)) for x in p.exits]
        table("what took its share", ("by", "quantity"), exits)
