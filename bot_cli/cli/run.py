"""`bot run`: the daemon."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from functools import partial
from typing import Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError, UsageError


def run(
    ctx: typer.Context,
    log_format: Annotated[str, typer.Option("--log-format", help="plain or json (when not on a terminal).")] = "plain",
    live: Annotated[bool | None, typer.Option("--live/--no-live", help="Live view (default: on a terminal).")] = None,
) -> None:
    """Run the daemon: lock the state dir, reconcile, follow the user stream, protect fills."""
    import asyncio

    obj: AppContext = ctx.obj
    if log_format not in ("plain", "json"):
        raise UsageError(f"--log-format {log_format!r} is not plain or json")
    obj.config  # a config error surfaces before anything is locked or started
    with _daemon_lock(obj):
        asyncio.run(_daemon(obj, sys.stdout.isatty() if live is None else live, log_format))


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


async def _daemon(obj: AppContext, live: bool, log_format: str) -> None:
    # imported here so that light commands (pending list) start fast
    import asyncio

    from bot_cli.state_store import PendingEntryStore
    from bot_cli.cli.views import LiveView, LogView
    from bot_cli.connect import connect
    from bot_cli.exchange.user_stream import UserStream
    from bot_cli.runtime.driver import Daemon
    from bot_cli.runtime.engine import ExecutionEngine

    cfg = obj.config
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with connect(cfg, obj.state_dir) as conn:
        store = PendingEntryStore(obj.state_dir)
        engine = ExecutionEngine(store, conn.rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms)
        view = LiveView(engine, conn.venue_name, str(obj.state_dir)) if live else LogView(log_format)
        daemon = Daemon(engine, partial(UserStream, conn.rest, conn.ws_url), view)
        view.stream = daemon.stream  # type: ignore[union-attr]
        view.note(f"bot run on {conn.venue_name} ({cfg.rest_url()}), state {obj.state_dir}")
        demo = _start_demo(cfg, conn, engine, view)
        with view:
            try:
                await daemon.run(stop)
            finally:
                if demo is not None:
                    demo.cancel()
        store.close()


def _start_demo(cfg: object, conn: object, engine: object, view: object) -> object:
    try:
        from bot_cli.paper.demo import start_demo
    except ImportError:
        return None
    return start_demo(cfg, conn, engine, view)
