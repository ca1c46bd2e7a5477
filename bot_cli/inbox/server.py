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
import socket
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from bot_cli.config import InboxConfig
from bot_cli.inbox.app import Connected, Inbox, create_app
from bot_cli.inbox.guard import InboxError, secret_from
from bot_cli.ops.checks import Market


log = logging.getLogger("bot_cli.inbox")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class InboxHandle:
    """The inbox serving as a task of the current event loop."""

    inbox: Inbox
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/signal"

    async def stop(self) -> None:
        """Stop accepting signals; what was acknowledged is already durable."""
        self.server.should_exit = True
        try:  # asyncio.wait: a server that failed or was cancelled is reported, not re-raised
            if not self.task.done():
                await asyncio.wait([self.task], timeout=STOP_TIMEOUT_S)
            if not self.task.done():
                self.server.force_exit = True
                await asyncio.wait([self.task], timeout=STOP_TIMEOUT_S)
        finally:
            self.sock.close()  # ours: uvicorn leaves a socket it was given open
            self.inbox.close()


@contextlib.asynccontextmanager
async def serve_inbox(
    cfg: InboxConfig, state_dir: Path, market: Market, *, venue_name: str = "",
    recv_window_ms: int = 5000, connected: Connected | None = None,
    on_accepted: Callable[[str], None] | None = None, say: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None, stacking: bool = False,
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
    stacking: bool = False,
) -> InboxHandle:  # fmt: skip
    """Serve the inbox from a task of the running loop; returns once it accepts connections."""
    secret = secret_from(env)
    sock = _bind(cfg.host, cfg.port)
    inbox = Inbox(
        state_dir, market, secret, venue_name=venue_name, recv_window_ms=recv_window_ms,
        max_body_bytes=cfg.max_body_bytes, max_per_minute=cfg.max_per_minute, connected=connected,
        on_accepted=on_accepted, stacking=stacking,
    )  # fmt: skip
    config = uvicorn.Config(create_app(inbox), lifespan="off", log_config=None,
                            log_level="warning", access_log=False)  # fmt: skip
    server = _GuestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="inbox")
    task.add_done_callback(_report)
    port = sock.getsockname()[1]
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while not server.started:  # uvicorn sets it once the listener is up
        if task.done() or asyncio.get_running_loop().time() > deadline:
            handle = InboxHandle(inbox, server, task, sock, cfg.host, port)
            await handle.stop()
            raise InboxError(f"the inbox on {cfg.host}:{port} did not start")
        await asyncio.sleep(0.01)
    return InboxHandle(inbox, server, task, sock, cfg.host, port)


class _GuestServer(uvicorn.Server):
    """uvicorn without signal handling: `bot run` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Our own socket, so "address in use" is an error we report, not uvicorn's sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK wait
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        why = err.strerror or str(err)
        raise InboxError(f"cannot listen on {host}:{port} ({why}): set inbox.port") from None
    return sock


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("inbox stopped: %r; protection goes on without it", task.exception())


def _exposed(host: str) -> str:
    if host in _LOOPBACK:
        return ""
    return f" (reachable beyond this machine on {host}: put TLS in front of it)"
