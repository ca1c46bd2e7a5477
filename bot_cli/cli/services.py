"""What runs beside the daemon and must never hold protection up: the signal inbox (when
enabled) and notifications. Each is started and stopped here; a failure in one is logged,
never raised into the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
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
        stacking=cfg.protection.stacking,
    )  # fmt: skip
    async with inbox, _notifications(cfg, daemon, notifier, venue):
        yield


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
