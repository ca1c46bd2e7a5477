"""What runs beside the daemon and must never hold protection up: the signal inbox (when
enabled) and notifications. Each is started and stopped here; a failure in one is logged,
never raised into the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot_cli.inbox import serve_inbox
from bot_cli.notify import Notifier, follow_stream, formats


if TYPE_CHECKING:
    from bot_cli.config import Config
    from bot_cli.core.summary import Unclaimed
    from bot_cli.ops.checks import Market
    from bot_cli.runtime.driver import Daemon


log = logging.getLogger("bot_cli.services")


@contextlib.asynccontextmanager
async def side_services(
    cfg: Config, state_dir: Path, daemon: Daemon, notifier: Notifier, *, venue: str, market: Market,
    say: Callable[[str], None],
) -> AsyncIterator[None]:
    inbox = serve_inbox(
        cfg.inbox, state_dir, market, venue_name=venue, recv_window_ms=cfg.venue.recv_window_ms,
        connected=daemon.stream.connected.is_set, on_accepted=daemon.poke, say=say,
        stacking=cfg.protection.stacking, breakeven_fee_pct=Decimal(str(cfg.protection.breakeven_fee_pct)),
    )  # fmt: skip
    async with (
        inbox, _notifications(cfg, daemon, notifier, venue), _metrics(cfg, daemon, notifier, say), _systemd(daemon)
    ):
        yield


@contextlib.asynccontextmanager
async def _systemd(daemon: Daemon) -> AsyncIterator[None]:
    """READY=1, WATCHDOG=1 and STATUS= under systemd (NOTIFY_SOCKET set); nothing otherwise."""
    from bot_cli.runtime import watchdog

    sd, interval = watchdog.from_env()
    if sd is None:
        yield
        return
    task = asyncio.create_task(watchdog.run(daemon, sd, interval), name="systemd")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        sd.send("STOPPING=1")
        sd.close()


@contextlib.asynccontextmanager
async def _metrics(cfg: Config, daemon: Daemon, notifier: Notifier, say: Callable[[str], None]) -> AsyncIterator[None]:
    """Prometheus text at http://host:port/metrics, when enabled; a port that cannot be listened
    on stops `bot run` with that line (the operator asked for metrics)."""
    if not cfg.metrics.enabled:
        yield
        return
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from bot_cli import __version__
    from bot_cli.guest import bind, serve
    from bot_cli.runtime.metrics import registry_for

    registry, cover = registry_for(daemon, __version__, lambda: notifier.counts)
    daemon.on_step = cover.look

    async def scrape(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    m = cfg.metrics
    guest = await serve(Starlette(routes=[Route("/metrics", scrape)]), bind(m.host, m.port, "metrics.port"), "metrics")
    host = f"[{m.host}]" if ":" in m.host else m.host
    say(f"metrics on http://{host}:{guest.port}/metrics")
    try:
        yield
    finally:
        await guest.stop()


@contextlib.asynccontextmanager
async def _notifications(cfg: Config, daemon: Daemon, notifier: Notifier, venue: str) -> AsyncIterator[None]:
    notifier.start()
    notifier.tell(formats.daemon_started(venue))
    def unclaimed(u: Unclaimed) -> None:
        notifier.tell(formats.position_unclaimed(u.symbol, u.position_side.value, u.side.value, u.quantity))

    daemon.on_unclaimed = unclaimed
    clock = daemon.engine.clock

    def deaf(now_deaf: bool, since: int) -> None:
        notifier.tell(formats.stream_deaf(since) if now_deaf else formats.stream_hearing(since, clock.now_ms()))

    daemon.on_deaf = deaf
    watch = asyncio.create_task(
        follow_stream(daemon.stream.connected.is_set, clock.now_ms, notifier, int(cfg.notify.stream_down_s * 1000)),
        name="stream-watch",
    )
    why = "stopped by SIGTERM/SIGINT"
    try:
        yield
    except BaseException as err:
        why = f"stopped on an error: {type(err).__name__}"  # the type only: a message may hold secrets
        raise
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watch
        notifier.tell(formats.daemon_stopped(venue, why))
        await notifier.stop()
