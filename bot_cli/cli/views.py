"""What `bot run` shows: a live rich view on a terminal, log lines otherwise.

Both take the same three calls from the daemon (recovered, message, note) and the
logging records of the engine; neither ever prints a secret (none reaches them).
``ReadyFile`` wraps either and writes `bot run --ready-file`'s file.

``--log-format json`` writes one object per line: ts, level, logger, msg, and every field
a log call passes as ``extra=`` (entry, symbol, state, client_id, event, ...).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot_cli.cli.render import console
from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import OrderType, Pending, Status
from bot_cli.exchange.wire import AccountUpdate, AlgoUpdate, Ignored, OrderUpdate, StreamMessage
from bot_cli.redact import RedactKeys
from bot_cli.runtime.engine import ExecutionEngine, Recovery
from bot_cli.store import StoreError
from bot_cli.store.atomic import replace_durable


def describe(message: StreamMessage) -> str | None:
    if isinstance(message, OrderUpdate):
        o = message.report
        kind, status = message.execution_type, o.status.value
        what = status if kind == status else f"{kind} {status}"
        return f"order {o.client_id} {what} filled {o.filled_qty}/{o.quantity}"  # never "NEW NEW"
    if isinstance(message, AlgoUpdate):
        a = message.report
        return f"algo {a.client_id} {a.status.value} trigger {a.trigger_price} qty {a.quantity}"
    if isinstance(message, AccountUpdate):
        return "account " + ", ".join(f"{s} {ps.value} {amt}" for (s, ps), amt in message.positions.items())
    if isinstance(message, Ignored):
        return None
    return type(message).__name__


def fields(message: StreamMessage) -> dict[str, str]:
    """The structured fields of a stream message, for JSON log lines."""
    if not isinstance(message, OrderUpdate | AlgoUpdate):
        return {"event": type(message).__name__}
    r = message.report
    event = message.execution_type if isinstance(message, OrderUpdate) else "ALGO_UPDATE"
    doc = {"event": event, "symbol": r.symbol, "client_id": r.client_id, "state": r.status.value}
    if (ours := parse_client_id(r.client_id)) is not None:
        doc["entry"] = ours.pending_id
    return doc


def summary(recovery: Recovery, why: str) -> str:
    plan = recovery.plan
    acted = [row for row in plan.rows if row.commands]
    weight = "" if recovery.weight is None else f", request weight {recovery.weight}"
    return (
        f"reconciled ({why}): {len(plan.rows)} pending, {len(acted)} acted on, "
        f"{recovery.calls} REST calls{weight}"
    )


def summary_fields(recovery: Recovery, why: str) -> dict[str, object]:
    """The structured fields of a reconcile's log line (JSON logs carry them)."""
    acted = sum(1 for row in recovery.plan.rows if row.commands)
    return {"event": "reconciled", "why": why, "pending": len(recovery.plan.rows), "acted": acted,
            "calls": recovery.calls, "weight": recovery.weight}  # fmt: skip


class LogView:
    """Plain (or JSON) log lines on stderr, one per event."""

    def __init__(self, fmt: str = "plain") -> None:
        self.fmt = fmt
        log_to_stderr(fmt)
        self.log = logging.getLogger("bot_cli.run")

    def recovered(self, recovery: Recovery, why: str) -> None:
        self.log.info(summary(recovery, why), extra=summary_fields(recovery, why))
        for row in recovery.plan.rows:
            if row.commands:
                self.log.info(
                    "  %s %s -> %s: %s", row.pending_id, row.local.value, row.result.value, row.exchange,
                    extra={"event": "reconciled", "entry": row.pending_id, "state": row.result.value},
                )  # fmt: skip

    def message(self, message: StreamMessage) -> None:
        text = describe(message)
        if text:
            self.log.info(text, extra=fields(message))

    def note(self, text: str, **fields: str) -> None:
        """A line of the daemon's; ``fields`` (entry, event, ...) go into a JSON line as keys."""
        self.log.info(text, extra=fields)

    def __enter__(self) -> LogView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def log_to_stderr(fmt: str) -> None:
    """Every bot_cli logger to stderr, one line per record, plain or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactKeys())
    plain = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handler.setFormatter(JsonFormatter() if fmt == "json" else plain)
    root = logging.getLogger("bot_cli")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


# What every LogRecord carries; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
            "msg": record.getMessage(),
        }  # fmt: skip
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=_plain_value)


def _plain_value(value: object) -> object:
    """Enums by value, Decimals and ids as strings: what a log reader can filter on."""
    return value.value if isinstance(value, enum.Enum) else str(value)


class _ToEvents(logging.Handler):
    def __init__(self, view: LiveView) -> None:
        super().__init__(logging.INFO)
        self.view = view
        self.addFilter(RedactKeys())

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        self.view.note(prefix + record.getMessage())


class LiveView:
    """A full-screen rich view: pending entries, their protections, recent events."""

    def __init__(self, engine: ExecutionEngine, venue: str, state_dir: str) -> None:
        self.engine, self.venue, self.state_dir = engine, venue, state_dir
        self.events: deque[tuple[str, str]] = deque(maxlen=14)
        self.started = time.time()
        self.console = console(soft_wrap=False)
        self.live = Live(
            get_renderable=self.render, console=self.console, refresh_per_second=4,
            screen=False, transient=False,
        )  # fmt: skip
        root = logging.getLogger("bot_cli")
        root.handlers[:] = [_ToEvents(self)]
        root.setLevel(logging.INFO)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def recovered(self, recovery: Recovery, why: str) -> None:
        self.note(summary(recovery, why))

    def message(self, message: StreamMessage) -> None:
        text = describe(message)
        if text:
            self.note(text)

    def note(self, text: str, **fields: str) -> None:
        self.events.append((time.strftime("%H:%M:%S"), text))

    def render(self) -> Group:
        up = int(time.time() - self.started)
        stream = ("stream connected", "green") if self.stream_ok() else ("stream connecting…", "yellow")
        if self.stream_ok() and getattr(getattr(self, "ears", None), "deaf", False):
            stream = ("stream DEAF: reconciling by REST", "bold red")
        head = Text.assemble(
            ("bot run", "bold"), f"  venue {self.venue}  state {self.state_dir}  pid {os.getpid()}  up {up}s  ", stream
        )
        deadman = getattr(self, "deadman", None)
        if deadman is not None:
            from bot_cli.ops.status import deadman_lines

            lines = deadman_lines(deadman.describe(), self.engine.clock.now_ms())
            bad = any("NOT" in line or "OFF" in line or "failing" in line for line in lines)
            head.append("\n" + "; ".join(line.strip() for line in lines), style="bold red" if bad else "")
        return Group(Panel(head), self._pending_table(), self._events_table())

    def stream_ok(self) -> bool:
        stream = getattr(self, "stream", None)
        return bool(stream and stream.connected.is_set())

    def _pending_table(self) -> Table:
        t = Table(title=f"pending entries ({len(self.engine.state)})", title_justify="left", expand=True)
        narrow = self.console.width < NARROW
        wide = ("id", "symbol", "side", "qty", "filled", "entry", "sl / tp", "state")
        heads = ("entry", "prices", "state") if narrow else wide
        for h in heads:
            t.add_column(h, no_wrap=not narrow)
        t.add_column("live legs", ratio=1, overflow="fold")
        for p in sorted(self.engine.state.values(), key=lambda p: p.pending_id)[-20:]:
            t.add_row(*(_narrow_row(p) if narrow else _wide_row(p)))
        return t

    def _events_table(self) -> Table:
        t = Table(title="recent events", title_justify="left", expand=True, show_header=False)
        t.add_column("time", width=8, no_wrap=True)
        t.add_column("event", ratio=1, overflow="fold")
        for at, text in self.events:
            t.add_row(at, text)
        return t


NARROW = 120  # below this many columns an entry takes two lines: everything still shows


def _wide_row(p: Pending) -> tuple[str | Text, ...]:
    s = p.spec
    return (
        p.pending_id, s.symbol, s.side.value, str(s.quantity), str(p.filled_qty), _entry_price(p),
        f"{s.stop_loss} / {s.take_profit or '-'}", Text(p.status.value, style=_STYLE.get(p.status, "")),
        _protection(p),
    )


def _narrow_row(p: Pending) -> tuple[str | Text, ...]:
    s = p.spec
    entry = f"{p.pending_id}\n{s.symbol} {s.side.value} {p.filled_qty}/{s.quantity}"
    prices = f"{_entry_price(p)}\nsl {s.stop_loss} tp {s.take_profit or '-'}"
    return entry, prices, Text(p.status.value, style=_STYLE.get(p.status, "")), _protection(p)


def _entry_price(p: Pending) -> str:
    if p.spec.order_type is OrderType.ADOPTED:
        return "adopted"  # no entry order: a part of the position the bot took over
    return "market" if p.spec.price is None else str(p.spec.price)


_STYLE = {Status.NEEDS_ATTENTION: "bold red", Status.PROTECTING: "yellow", Status.PARTIALLY_FILLED: "yellow",
          Status.OPEN: "cyan", Status.EXITING: "magenta"}


def _protection(p: Pending) -> str:
    if not p.protections:
        return "-" if p.filled_qty == 0 else "none yet"
    return ", ".join(f"{x.label} {x.quantity} {x.state.value.lower()}" for x in p.protections)


# --- `bot run --ready-file` -------------------------------------------------------------------


class _View(Protocol):  # runtime.driver.View, without importing the daemon loop here
    def recovered(self, recovery: Recovery, why: str) -> None: ...

    def message(self, message: StreamMessage) -> None: ...

    def note(self, text: str, **fields: str) -> None: ...


class ReadyFile:
    """A view that passes every call on and, once the first reconcile has completed, writes
    ``path`` atomically: {pid, started_at, venue, reconciled_at} (UTC, ISO 8601)."""

    def __init__(self, view: _View, path: Path, venue: str, started_at: float) -> None:
        self.view, self.path, self.venue, self.started_at = view, path, venue, started_at
        self.written = False
        self.log = logging.getLogger("bot_cli.run")

    def recovered(self, recovery: Recovery, why: str) -> None:
        self.view.recovered(recovery, why)
        if not self.written:
            self.written = True
            self._write(time.time())

    def message(self, message: StreamMessage) -> None:
        self.view.message(message)

    def note(self, text: str, **fields: str) -> None:
        self.view.note(text, **fields)

    def _write(self, now: float) -> None:
        doc = {"pid": os.getpid(), "started_at": iso_utc(self.started_at), "venue": self.venue,
               "reconciled_at": iso_utc(now)}  # fmt: skip
        try:
            replace_durable(self.path, (json.dumps(doc) + "\n").encode())
        except (OSError, StoreError) as err:  # the daemon still protects fills: say it, go on
            self.log.error("cannot write the ready file %s (%s)", self.path, err)
            return
        self.note(f"ready: wrote {self.path}")



def remove_ready(path: Path) -> None:
    """Not ready (any more): a clean exit, or a file left by a run that was killed."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
