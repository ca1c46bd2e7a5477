"""An ASGI app served from a task of the running event loop (the inbox, the metrics), beside
the daemon and never able to stop it: uvicorn without its signal handling, on a socket bound
here so that "address in use" is an error we name, not uvicorn's sys.exit."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from bot_cli.errors import BotError


START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class ListenError(BotError):
    """The server could not start listening."""


class GuestServer(uvicorn.Server):
    """uvicorn without signal handling: `bot run` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int, key: str) -> socket.socket:
    """A listening socket of our own; ListenError names the config ``key`` to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK wait
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        why = err.strerror or str(err)
        raise ListenError(f"cannot listen on {host}:{port} ({why}): set {key}") from None
    return sock


@dataclass
class Guest:
    server: GuestServer
    task: asyncio.Task[None]
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        try:  # asyncio.wait: a server that failed or was cancelled is reported, not re-raised
            if not self.task.done():
                await asyncio.wait([self.task], timeout=STOP_TIMEOUT_S)
            if not self.task.done():
                self.server.force_exit = True
                await asyncio.wait([self.task], timeout=STOP_TIMEOUT_S)
        finally:
            self.sock.close()  # ours: uvicorn leaves a socket it was given open


async def serve(app: Any, sock: socket.socket, name: str) -> Guest:
    """Serve ``app`` on ``sock`` from a task of the running loop; returns once it accepts
    connections (ListenError if it does not within START_TIMEOUT_S)."""
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", access_log=False)
    server = GuestServer(config)
    guest = Guest(server, asyncio.create_task(server.serve(sockets=[sock]), name=name), sock)
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while not server.started:  # uvicorn sets it once the listener is up
        if guest.task.done() or asyncio.get_running_loop().time() > deadline:
            await guest.stop()
            raise ListenError(f"the {name} on {sock.getsockname()[0]}:{guest.port} did not start")
        await asyncio.sleep(0.01)
    return guest
