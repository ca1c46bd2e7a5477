"""`bot run`: the daemon.

At start a venue that does not answer is waited for, with the same doubling backoff as
every transient failure (2 s, 4 s, ... 60 s), for at most --venue-wait seconds; SIGTERM
stops the wait at once. Each try costs one request weight (GET /fapi/v1/time).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError, UsageError


if TYPE_CHECKING:
    import asyncio

    from bot_cli.cli.views import LiveView, LogView
    from bot_cli.config import Config
    from bot_cli.connect import Connection
    from bot_cli.notify import Notifier
    from bot_cli.runtime.deadman import DeadmanSwitch
    from bot_cli.runtime.engine import ExecutionEngine

log = logging.getLogger("bot_cli.run")


class LogFormat(enum.StrEnum):
    plain = "plain"
    json = "json"


READY_HELP = (
    "Once the first reconcile has completed, write PATH atomically with JSON "
    '{"pid", "started_at", "venue", "reconciled_at"} (UTC ISO 8601); removed on a clean exit '
    "(SIGTERM/SIGINT). A file left by a killed run is removed at start."
)
FORMAT_HELP = "Log lines when not in the live view: plain text, or one JSON object per line."
WAIT_HELP = "At start, wait this long for a venue that does not answer (0: fail at once)."
VENUE_WAIT_S = 600.0
VENUE_WAIT_FIRST_MS, VENUE_WAIT_MAX_MS = 2_000, 60_000  # a venue down at start: 2 s, 4 s, ... 60 s


def run(
    ctx: typer.Context,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help=FORMAT_HELP)] = LogFormat.plain,
    live: Annotated[bool | None, typer.Option("--live/--no-live", help="Live view (default: on a terminal).")] = None,
    ready_file: Annotated[Path | None, typer.Option("--ready-file", metavar="PATH", help=READY_HELP)] = None,
    venue_wait: Annotated[
        float, typer.Option("--venue-wait", metavar="SECONDS", min=0.0, help=WAIT_HELP)
    ] = VENUE_WAIT_S,
) -> None:
    """Run the daemon: lock the state dir, reconcile, follow the user stream, protect fills.

    With the paper venue and nothing answering on paper.host:paper.port, the venue runs inside
    this process (said on stderr), unless `bot paper serve` is recorded for the state dir or
    another process holds its paper state: then it exits 1 saying which.

    Examples:

      bot run

      bot run --no-live --log-format json --ready-file ready.json
    """
    import asyncio

    from bot_cli.cli.views import log_to_stderr

    started_at = time.time()
    obj: AppContext = ctx.obj
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file {ready_file}: directory {ready_file.parent} does not exist")
    obj.check_config()  # before anything is locked or started
    if obj.config.inbox.enabled:  # asked for: a daemon without it is not what was asked
        from bot_cli.inbox.guard import secret_from

        secret_from()
    live = sys.stdout.isatty() if live is None else live
    log_to_stderr(log_format.value)  # until the view takes over
    for note in obj.notes:
        log.warning(note)
    notifier = _notifier(obj)  # a bad [notify] is an error before anything is locked
    with _daemon_lock(obj):
        asyncio.run(_daemon(obj, live, log_format.value, ready_file, started_at, venue_wait, notifier))


LOCK_WAIT_S = 10.0  # `bot enter` / `bot recover` hold the lock for the seconds they send


@contextlib.contextmanager
def _daemon_lock(obj: AppContext) -> Iterator[None]:
    """The state dir's lock; a short command holding it is waited for (said at once), a
    daemon is not."""
    from bot_cli.state_store import DaemonLock, LockHeld

    end = time.monotonic() + LOCK_WAIT_S
    told = False
    while True:
        try:
            with DaemonLock(obj.state_dir):
                yield
            return
        except LockHeld as err:
            if _is_daemon(obj.state_dir, err.pid):
                raise BotError(
                    f"`bot run` (pid {err.pid}) already runs on {obj.state_dir}: stop it first "
                    f"(kill {err.pid}) or use another --state-dir"
                ) from None
            if time.monotonic() > end:
                raise BotError(
                    f"pid {err.pid} has held {obj.state_dir} for {LOCK_WAIT_S:.0f}s: if it is a "
                    "`bot run`, stop it first (or use another --state-dir)"
                ) from None
            if not told:
                told = True
                log.info("waiting up to %.0fs for pid %s, which holds %s (a `bot enter` or `bot recover` "
                         "sending, or a `bot run` starting)", LOCK_WAIT_S, err.pid, obj.state_dir,
                         extra={"event": "lock_wait", "holder_pid": err.pid})  # fmt: skip
            time.sleep(0.2)


def _is_daemon(state_dir: Path, pid: int | None) -> bool:
    """Does the holder keep the daemon's heartbeat? (`bot enter` and `bot recover` do not)"""
    from bot_cli.runtime.heartbeat import read

    beat = read(state_dir)
    return pid is not None and beat is not None and beat.get("pid") == pid


async def _daemon(
    obj: AppContext, live: bool, log_format: str, ready_path: Path | None, started_at: float,
    venue_wait: float, notifier: Notifier,
) -> None:
    # imported here so that light commands (pending list) start fast
    import asyncio

    from bot_cli.cli.views import remove_ready

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready_path is not None:  # we hold the lock: a file there now is a killed run's
        remove_ready(ready_path)
    said: list[str] = []  # "started the paper venue here": a log line in the log's format
    async with contextlib.AsyncExitStack() as stack:
        conn = await _connect(stack, obj, None if live else said.append, stop, venue_wait)
        if conn is None:
            log.info("stopped while waiting for the venue", extra={"event": "stopped_waiting"})
            return
        engine = _engine(obj, conn, notifier)
        view = _view(obj, engine, conn, live, log_format, said)
        with view:
            await _serve(obj, engine, conn, view, notifier, ready_path, started_at, stop)
        engine.store.close()


def _engine(obj: AppContext, conn: Connection, notifier: Notifier) -> ExecutionEngine:
    """The engine over the state dir's journal, telling the notifier its alerts and sends."""
    from bot_cli.notify import AlertHooks
    from bot_cli.runtime.engine import ExecutionEngine
    from bot_cli.state_store import PendingEntryStore

    cfg, hooks = obj.config, AlertHooks(notifier)
    engine = ExecutionEngine(
        PendingEntryStore(obj.state_dir), conn.rest, policy=cfg.policy, recv_window_ms=cfg.venue.recv_window_ms,
        on_alert=hooks.on_alert, on_command=hooks.on_command,
    )  # fmt: skip
    hooks.attach(engine)
    return engine


async def _serve(
    obj: AppContext, engine: ExecutionEngine, conn: Connection, view: LiveView | LogView, notifier: Notifier,
    ready_path: Path | None, started_at: float, stop: asyncio.Event,
) -> None:
    """The daemon, the inbox and the notifications, until `stop` is set."""
    from bot_cli.cli.services import side_services
    from bot_cli.cli.views import ReadyFile, remove_ready
    from bot_cli.exchange.user_stream import UserStream
    from bot_cli.runtime.driver import Daemon

    cfg = obj.config
    ready = ReadyFile(view, ready_path, conn.venue_name, started_at) if ready_path else None
    daemon = Daemon(engine, partial(UserStream, conn.rest, conn.ws_url), ready or view, venue=conn.venue_name)
    if cfg.protection.unclaimed == "protect":
        from bot_cli.ops.adopt import protect_unclaimed

        daemon.adopter = partial(protect_unclaimed, engine, cfg=cfg, state_dir=obj.state_dir, venue=cfg.rest_url())
    daemon.deadman = await _deadman(obj, engine)
    view.deadman = daemon.deadman  # type: ignore[union-attr]
    view.stream = daemon.stream  # type: ignore[union-attr]
    view.ears = daemon.ears  # type: ignore[union-attr]
    demo = _start_demo(cfg, conn, engine, view)
    async with side_services(
        cfg, obj.state_dir, daemon, notifier, venue=conn.venue_name, market=conn.rest, say=view.note
    ):
        try:
            await daemon.run(stop)
        finally:
            if demo is not None:
                demo.cancel()
            if ready_path is not None:
                remove_ready(ready_path)


async def _deadman(obj: AppContext, engine: ExecutionEngine) -> DeadmanSwitch | None:
    """The dead-man switch as configured and as the probe verdicts of this venue allow."""
    from bot_cli.connect import venue_key
    from bot_cli.core.deadman import switch_for
    from bot_cli.runtime.deadman import DeadmanSwitch
    from bot_cli.store.probes import ProbesUnreadable, on_venue

    cfg = obj.config.deadman
    if cfg.countdown_s <= 0:
        return None
    try:
        verdicts = on_venue(obj.state_dir, await venue_key(obj.config))
    except ProbesUnreadable as err:
        log.warning("%s; the dead-man switch goes by no verdict", err)
        verdicts = {}
    if verdicts:
        log.info("venue rules (`bot probe`): %s", "; ".join(f"{v.name} {v.verdict} ({v.at[:10]})"
                 for v in verdicts.values()), extra={"event": "probe_verdicts"})  # fmt: skip
    found = verdicts.get("deadman")
    switch = switch_for(
        int(cfg.countdown_s * 1000), include_foreign=cfg.foreign_orders == "include",
        paper=obj.config.venue.kind == "paper", verdict=found.verdict if found else None,
        probed=f"{found.at[:10]}: {found.detail}" if found else "",
    )  # fmt: skip
    return DeadmanSwitch(engine, switch)


async def _connect(
    stack: contextlib.AsyncExitStack, obj: AppContext, say: Callable[[str], None] | None,
    stop: asyncio.Event, wait_s: float,
) -> Connection | None:
    """The venue, once it answers; None if SIGTERM/SIGINT came first. Not answering for
    longer than ``wait_s`` is the last error, said in one line."""
    import asyncio

    from bot_cli.connect import VenueUnreachable, connect
    from bot_cli.core.retry import doubling_ms

    deadline = time.monotonic() + wait_s
    failures = 0
    while not stop.is_set():
        try:
            return await stack.enter_async_context(connect(obj.config, obj.state_dir, say=say))
        except VenueUnreachable as err:
            failures += 1
            delay = max(doubling_ms(failures, VENUE_WAIT_FIRST_MS, VENUE_WAIT_MAX_MS), err.retry_after * 1000) / 1000
            if time.monotonic() + delay > deadline:
                raise _gave_up(err, wait_s) from None
            log.warning("%s; trying again in %.0fs (try %d; SIGTERM stops)", err, delay, failures + 1,
                        extra={"event": "venue_unreachable", "attempt": failures, "retry_in_s": delay})  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return None


def _notifier(obj: AppContext) -> Notifier:
    """From [notify]; a sink set up halfway is a config error now, not a silence later."""
    from bot_cli.notify import Notifier

    return Notifier.from_config(obj.config.notify, source=str(obj.config.path or "config"))


def _gave_up(err: BotError, wait_s: float) -> BotError:
    if wait_s == 0:
        return err
    return BotError(f"{err}; gave up after --venue-wait {wait_s:g}s")


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


def _start_demo(
    cfg: Config, conn: Connection, engine: ExecutionEngine, view: LiveView | LogView
) -> asyncio.Task[None] | None:
    from bot_cli.demo import start_demo

    return start_demo(cfg, conn, engine, view)
