"""Running the paper venue: in the foreground (``serve``) or inside another asyncio program
(``start_in_process``), plus ``is_listening`` to find out whether one already runs.

In-process use::

    handle = await start_in_process(state_dir, port=0)   # 0: an ephemeral port
    ... talk to handle.rest_url / handle.ws_url with PAPER_API_KEY / PAPER_API_SECRET ...
    await handle.stop()

We bind the listening socket ourselves, so "address in use" is an ordinary error here instead
of uvicorn's ``sys.exit`` inside a task, and the in-process server leaves the host program's
signal handlers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from bot_cli.errors import BotError
from bot_cli.paper.app import create_app
from bot_cli.paper.service import PaperExchange, wall_ms

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class PaperStartError(BotError):
    """The paper venue could not start listening."""


@dataclass
class PaperHandle:
    """A paper venue running as a task of the current event loop."""

    exchange: PaperExchange
    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}/private"

    async def stop(self) -> None:
        """Stop serving, close the sockets, release the state dir (the state is already saved)."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), STOP_TIMEOUT_S)
        except TimeoutError:
            self.server.force_exit = True
            await self.task
        finally:
            self.exchange.close()


class _GuestServer(uvicorn.Server):
    """uvicorn without signal handling: the host program owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit it: without it the response's second write waits for a
        # delayed ACK (40 ms on Linux) behind Nagle's algorithm, on every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise PaperStartError(
            f"the paper venue cannot listen on {host}:{port} ({err.strerror}): "
            "is another one running? "
            f"Use it, or set paper.port to a free port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _config(exchange: PaperExchange, *, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(exchange),
        lifespan="on",
        timeout_graceful_shutdown=2,
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
    )


def _exchange(
    state_dir: Path, seed: int, faults: Iterable[str], volatility: float, clock: Callable[[], int]
) -> PaperExchange:
    exchange = PaperExchange(
        state_dir, seed=seed, volatility=volatility, faults=faults, clock=clock
    )
    exchange.open()
    return exchange


async def start_in_process(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 7,
    faults: Iterable[str] = (),
    volatility: float = 0.0005,
    clock: Callable[[], int] = wall_ms,
) -> PaperHandle:
    """Start the venue as a task of the running loop; returns once it accepts connections."""
    exchange = _exchange(state_dir, seed, faults, volatility, clock)
    try:
        sock = _bind(host, port)
    except BaseException:
        exchange.close()
        raise
    server = _GuestServer(_config(exchange, quiet=True))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="paper-venue")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while not server.started:  # uvicorn sets it once the listener is up
        if task.done() or loop.time() > deadline:
            server.should_exit = True
            exchange.close()
            raise PaperStartError(
                f"the paper venue on {host}:{sock.getsockname()[1]} did not start"
            )
        await asyncio.sleep(0.01)
    return PaperHandle(exchange, server, task, host, sock.getsockname()[1])


def serve(
    state_dir: Path,
    host: str,
    port: int,
    *,
    seed: int = 7,
    faults: Iterable[str] = (),
    volatility: float = 0.0005,
) -> None:
    """Serve in the foreground until Ctrl-C / SIGTERM (uvicorn handles the signals)."""
    exchange = _exchange(state_dir, seed, faults, volatility, wall_ms)
    try:
        sock = _bind(host, port)
        uvicorn.Server(_config(exchange, quiet=False)).run(sockets=[sock])
    finally:
        exchange.close()


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on host:port?"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
