"""Serving the inbox beside the daemon, in the same event loop, without ever stopping it.

    async with serve_inbox(cfg.inbox, state_dir, conn.rest, venue_name=conn.venue_name,
                           recv_window_ms=cfg.venue.recv_window_ms,
                           connected=daemon.stream.connected.is_set, say=view.note):
        await daemon.run(stop)

``on_accepted(entry_id)`` is called after each 202 (in the loop): a daemon that offers a
wake-up for its journal look sends the entry at once instead of at its next tick.

Disabled (``[inbox] enabled = false``): does nothing. Enabled but unable to start (no secret
in the environment, the port taken): says so and yields None; the daemon runs on. A server
that fails later is logged; the daemon runs on. The journal writes run in a worker thread, so
a signal's fsyncs never hold up the daemon's own work in the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bot_cli.config import InboxConfig
from bot_cli.guest import Guest, ListenError, bind, serve
from bot_cli.inbox.app import Connected, Inbox, create_app
from bot_cli.inbox.guard import InboxError, secret_from
from bot_cli.ops.checks import Market


log = logging.getLogger("bot_cli.inbox")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class InboxHandle:
    """The inbox serving as a task of the current event loop."""

    inbox: Inbox
    guest: Guest
    host: str

    @property
    def port(self) -> int:
        return self.guest.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/signal"

    async def stop(self) -> None:
        """Stop accepting signals; what was acknowledged is already durable."""
        try:
            await self.guest.stop()
        finally:
            self.inbox.close()


@contextlib.asynccontextmanager
async def serve_inbox(
    cfg: InboxConfig, state_dir: Path, market: Market, *, venue_name: str = "",
    recv_window_ms: int = 5000, connected: Connected | None = None,
    on_accepted: Callable[[str], None] | None = None, say: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None, stacking: bool = False, breakeven_fee_pct: Decimal = Decimal("0.1"),
) -> AsyncIterator[InboxHandle | None]:  # fmt: skip
    """The inbox for the duration of the block, when enabled. One that cannot start raises
    InboxError (`bot run` stops with that line: the operator asked for an inbox); one that
    fails later is said and protection goes on without it."""
    tell = say or log.warning
    handle = None
    if cfg.enabled:
        try:
            handle = await start_inbox(
                cfg, state_dir, market, venue_name=venue_name, recv_window_ms=recv_window_ms,
                connected=connected, on_accepted=on_accepted, env=env, stacking=stacking,
                breakeven_fee_pct=breakeven_fee_pct,
            )  # fmt: skip
        except InboxError as err:
            raise InboxError(f"inbox not started: {err}") from None
        tell(f"inbox listening on {handle.url}{_exposed(handle.host)}")
    try:
        yield handle
    finally:
        if handle is not None:
            await handle.stop()


async def start_inbox(
    cfg: InboxConfig, state_dir: Path, market: Market, *, venue_name: str = "",
    recv_window_ms: int = 5000, connected: Connected | None = None,
    on_accepted: Callable[[str], None] | None = None, env: Mapping[str, str] | None = None,
    stacking: bool = False, breakeven_fee_pct: Decimal = Decimal("0.1"),
) -> InboxHandle:  # fmt: skip
    """Serve the inbox from a task of the running loop; returns once it accepts connections."""
    secret = secret_from(env)
    try:
        sock = bind(cfg.host, cfg.port, "inbox.port")
    except ListenError as err:
        raise InboxError(str(err)) from None
    inbox = Inbox(
        state_dir, market, secret, venue_name=venue_name, recv_window_ms=recv_window_ms,
        max_body_bytes=cfg.max_body_bytes, max_per_minute=cfg.max_per_minute, connected=connected,
        on_accepted=on_accepted, stacking=stacking, breakeven_fee_pct=breakeven_fee_pct,
    )  # fmt: skip
    try:
        guest = await serve(create_app(inbox), sock, "inbox")
    except ListenError as err:
        inbox.close()
        raise InboxError(str(err)) from None
    guest.task.add_done_callback(_report)
    return InboxHandle(inbox, guest, cfg.host)


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("inbox stopped: %r; protection goes on without it", task.exception())


def _exposed(host: str) -> str:
    if host in _LOOPBACK:
        return ""
    return f" (reachable beyond this machine on {host}: put TLS in front of it)"
