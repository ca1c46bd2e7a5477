"""`bot run`: the daemon."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError, UsageError


if TYPE_CHECKING:
    from bot_cli.cli.views import LiveView, LogView
    from bot_cli.connect import Connection
    from bot_cli.runtime.engine import ExecutionEngine

READY_HELP = (
    "Once the first reconcile has completed, write PATH atomically with JSON "
    '{"pid", "started_at", "venue", "reconciled_at"} (UTC ISO 8601); removed on a clean exit '
    "(SIGTERM/SIGINT). A file left by a killed run is removed at start."
)


def run(
    ctx: typer.Context,
    log_format: Annotated[str, typer.Option("--log-format", help="plain or json (when not on a terminal).")] = "plain",
    live: Annotated[bool | None, typer.Option("--live/--no-live", help="Live view (default: on a terminal).")] = None,
    ready_file: Annotated[Path | None, typer.Option("--ready-file", metavar="PATH", help=READY_HELP)] = None,
) -> None:
    """Run the daemon: lock the state dir, reconcile, follow the user stream, protect fills.

    With the paper venue and nothing answering on paper.host:paper.port, the venue runs inside
    this process (said on stderr), unless `bot paper serve` is recorded for the state dir or
    another process holds its paper state: then it exits 1 saying which.
    """
    import asyncio

    started_at = time.time()
    obj: AppContext = ctx.obj
    if log_format not in ("plain", "json"):
        raise UsageError(f"--log-format {log_format!r} is not plain or json")
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file {ready_file}: directory {ready_file.parent} does not exist")
    obj.config  # a config error surfaces before anything is locked or started
    live = sys.stdout.isatty() if live is None else live
    with _daemon_lock(obj):
        asyncio.run(_daemon(obj, live, log_format, ready_file, started_at))


LOCK_WAIT_S = 10.0  # `bot enter` / `bot recover` hold the lock for the seconds they send


@contextlib.contextmanager
def _daemon_lock(obj: AppContext) -> Iterator[None]:
    """The state dir's lock; a short command holding it is waited for, a daemon is not."""
    from bot_cli.state_store import DaemonLock, LockHeld

    end = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            with DaemonLock(obj.state_dir):
                yield
            return
        except LockHeld as err:
            if time.monotonic() > end:
                raise BotError(
                    f"another bot process (pid {err.pid}) has held {obj.state_dir} for {LOCK_WAIT_S:.0f}s: "
                    "a `bot run` must be stopped first (or use another --state-dir)"
                ) from None
            time.sleep(0.2)


async def _daemon(
    obj: AppContext, live: bool, log_format: str, ready_path: Path | None, started_at: float
) -> None:
    # imported here so that light commands (pending list) start fast
    import asyncio

    from bot_cli.state_store import PendingEntryStore
    from bot_cli.cli.views import ReadyFile, remove_ready
    from bot_cli.connect import connect
    from bot_cli.exchange.user_stream import UserStream
    from bot_cli.runtime.driver import Daemon
    from bot_cli.runtime.engine import ExecutionEngine

    cfg = obj.config
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready_path is not None:  # we hold the lock: a file there now is a killed run's
        remove_ready(ready_path)
    said: list[str] = []  # "started the paper venue here": a log line in the log's format
    async with connect(cfg, obj.state_dir, say=None if live else said.append) as conn:
        store = PendingEntryStore(obj.state_dir)
        engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms)
        view = _view(obj, engine, conn, live, log_format, said)
        ready = ReadyFile(view, ready_path, conn.venue_name, started_at) if ready_path else None
        stream = partial(UserStream, conn.rest, conn.ws_url)
        daemon = Daemon(engine, stream, ready or view, venue=conn.venue_name)
        view.stream = daemon.stream  # type: ignore[union-attr]
        demo = _start_demo(cfg, conn, engine, view)
        with view:
            try:
                await daemon.run(stop)
            finally:
                if demo is not None:
                    demo.cancel()
                if ready_path is not None:
                    remove_ready(ready_path)
        store.close()


def _view(
    obj: AppContext, engine: ExecutionEngine, conn: Connection, live: bool, log_format: str,
    said: list[str],
) -> LiveView | LogView:
    from bot_cli.cli.views import LiveView, LogView

    view = LiveView(engine, conn.venue_name, str(obj.state_dir)) if live else LogView(log_format)
    view.note(f"bot run on {conn.venue_name} ({obj.config.rest_url()}), state {obj.state_dir}")
    for line in said:
        view.note(line)
    return view


def _start_demo(cfg: object, conn: object, engine: object, view: object) -> object:
    try:
        from bot_cli.paper.demo import start_demo
    except ImportError:
        return None
    return start_demo(cfg, conn, engine, view)
