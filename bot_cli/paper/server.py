"""Running the paper venue: in the foreground (``serve``) or inside another asyncio program
(``start_in_process``), plus ``is_listening`` to find out whether one already runs.

In-process use::

    handle = await start_in_process(state_dir, port=0)   # 0: an ephemeral port
    ... talk to handle.rest_url / handle.ws_url with PAPER_API_KEY / PAPER_API_SECRET ...
    await handle.stop()

We bind the listening socket ourselves, so "address in use" is an ordinary error here instead
of uvicorn's ``sys.exit`` inside a task, and the in-process server leaves the host program's
signal handlers alone.

Who may start a venue in its own process (``open_owned`` / ``start_owned``): only a command that
finds nothing answering on the configured address, no ``bot paper serve`` recorded for the state
dir (``persist.read_server``) and the state's lock free. A recorded server that does not answer
is down or restarting; a held lock belongs to another command: starting a second venue then
would hide the real one, so those are errors (``PaperVenueDown``) that name what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import socket
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from bot_cli.errors import BotError
from bot_cli.paper import persist
from bot_cli.paper.app import create_app
from bot_cli.paper.auth import BINANCE_ORDER_LIMITS, OrderLimits
from bot_cli.paper.persist import PaperLockHeld, ServerRecord
from bot_cli.paper.service import PaperExchange, wall_ms
from bot_cli.redact import RedactKeys
from bot_cli.store.lock import is_alive


START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
OWNER_WAIT_S = 2.0  # a lock held by a command that is about to listen (or finish) is waited for
OWNER_POLL_S = 0.1


class PaperStartError(BotError):
    """The paper venue could not start listening."""


class PaperVenueDown(BotError):
    """The state dir's venue runs elsewhere and does not answer: one started here would hide it."""


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


class _ForegroundServer(uvicorn.Server):
    """uvicorn's signal handling without re-raising the signal once shut down (which would kill
    the process before ``serve`` removes its record): SIGTERM and Ctrl-C exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


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
    except OverflowError:  # a port outside 0-65535: bind() says so with this, not an OSError
        sock.close()
        raise PaperStartError(
            f"the paper venue cannot listen on port {port}: ports are 0-65535"
        ) from None
    except OSError as err:
        sock.close()
        raise PaperStartError(
            f"the paper venue cannot listen on {host}:{port} ({err.strerror}): "
            "is another one running? "
            f"Use it, or set paper.port to a free port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _config(
    exchange: PaperExchange, *, quiet: bool, access_log: bool = False
) -> uvicorn.Config:
    """In the foreground: start-up, faults switched and stream connects on the console (the
    venue's own log lines); one line per request only with ``access_log``."""
    return uvicorn.Config(
        create_app(exchange),
        lifespan="on",
        timeout_graceful_shutdown=2,
        log_config=None if quiet else _log_config(),
        log_level="warning" if quiet else "info",
        access_log=access_log and not quiet,
    )


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["listen_key"] = {"()": RedactKeys}  # uvicorn logs the stream's path
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("listen_key")
    config["loggers"]["bot_cli.paper"] = {
        "handlers": ["default"], "level": "INFO", "propagate": False,
    }  # fmt: skip
    return config


def _exchange(
    state_dir: Path,
    seed: int,
    faults: Iterable[str],
    volatility: float,
    clock: Callable[[], int],
    *,
    order_limits: OrderLimits,
) -> PaperExchange:
    exchange = PaperExchange(
        state_dir, seed=seed, volatility=volatility, faults=faults, clock=clock,
        order_limits=order_limits,
    )  # fmt: skip
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
    order_limits: OrderLimits = BINANCE_ORDER_LIMITS,
) -> PaperHandle:
    """Start the venue as a task of the running loop; returns once it accepts connections."""
    exchange = _exchange(state_dir, seed, faults, volatility, clock, order_limits=order_limits)
    return await _serve_in_task(exchange, host, port)


async def _serve_in_task(exchange: PaperExchange, host: str, port: int) -> PaperHandle:
    """Serve an opened exchange from a task of the running loop (closes it on failure)."""
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


# --- who may start a venue --------------------------------------------------------------------


def open_owned(
    state_dir: Path,
    host: str,
    port: int,
    *,
    seed: int = 7,
    faults: Iterable[str] = (),
    volatility: float = 0.0005,
    wait_s: float = OWNER_WAIT_S,
) -> PaperExchange | None:
    """None when a venue answers on host:port; else the state opened here, if this process may
    own it; else PaperVenueDown. Blocking: for commands without an event loop (admin calls only:
    no order reaches it, so it keeps the default order limits)."""
    make = partial(_exchange, state_dir, seed, faults, volatility, wall_ms, order_limits=BINANCE_ORDER_LIMITS)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _claim(state_dir, host, port, make)
        except PaperLockHeld as held:
            if time.monotonic() >= deadline:
                raise _held_elsewhere(state_dir, host, port, held.pid) from None
        time.sleep(OWNER_POLL_S)


async def start_owned(
    state_dir: Path,
    host: str,
    port: int,
    *,
    seed: int = 7,
    faults: Iterable[str] = (),
    volatility: float = 0.0005,
    order_limits: OrderLimits = BINANCE_ORDER_LIMITS,
    wait_s: float = OWNER_WAIT_S,
) -> PaperHandle | None:
    """As ``open_owned``, then served on host:port from a task of the running loop."""
    make = partial(_exchange, state_dir, seed, faults, volatility, wall_ms, order_limits=order_limits)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            exchange = _claim(state_dir, host, port, make)
        except PaperLockHeld as held:
            if loop.time() >= deadline:
                raise _held_elsewhere(state_dir, host, port, held.pid) from None
            await asyncio.sleep(OWNER_POLL_S)
            continue
        return None if exchange is None else await _serve_in_task(exchange, host, port)


def _claim(
    state_dir: Path, host: str, port: int, make: Callable[[], PaperExchange]
) -> PaperExchange | None:
    """One attempt: None when this state dir's venue answers, else the state opened (``open``
    locks first); PaperVenueDown when the venue answering serves another state dir."""
    if is_listening(host, port):
        if (problem := owner_problem(state_dir, host, port)) is not None:
            raise PaperVenueDown(problem)
        return None
    refuse_if_served(state_dir, host, port)
    return make()


def owner_problem(state_dir: Path, host: str, port: int) -> str | None:
    """Why the venue answering on host:port is not this state dir's, in one line; None if it is.
    A venue belongs to the state dir it serves: using another's by accident moves its prices,
    fills its orders and reads its positions."""
    import httpx

    ours = persist.read_id(state_dir)
    mine = Path(state_dir) / "paper"
    fix = ("stop it, give this state dir another [paper] port, or set venue.rest_url to use that venue on"
           " purpose")  # fmt: skip
    try:
        answer = httpx.get(f"http://{host}:{port}/paper/whoami", timeout=5)
        theirs = answer.json() if answer.is_success else None
    except (httpx.HTTPError, ValueError):
        theirs = None
    if not isinstance(theirs, dict) or "id" not in theirs:
        return (f"something answers on {host}:{port} that does not say which state dir it serves (another"
                f" program, or an older `bot paper serve`), not this state dir's paper venue ({mine}): {fix}")
    if ours is not None and theirs["id"] == ours:
        return None
    return (f"the paper venue on {host}:{port} serves {theirs.get('paper_dir')}, not this state dir's"
            f" ({mine}): {fix}")


def refuse_if_served(state_dir: Path, host: str, port: int) -> None:
    """PaperVenueDown when a `bot paper serve` is recorded for the state dir (alive or not)."""
    record = persist.read_server(state_dir)
    if record is None:
        return
    where = f"{host}:{port}"
    if (record.host, record.port) != (host, port):
        where += f" (it was started on {record.host}:{record.port}: check paper.host/paper.port)"
    serve = f"the paper venue for {Path(state_dir) / 'paper'} is run by `bot paper serve`"
    if is_alive(record.pid):
        raise PaperVenueDown(
            f"{serve} (pid {record.pid}) but does not answer on {where}; "
            "wait for it to start, or stop it and start it again"
        )
    raise PaperVenueDown(
        f"{serve} (pid {record.pid}, no longer running) and nothing answers on {where}; "
        f"start `bot paper serve` again, or delete {persist.server_path(state_dir)} "
        "to let bot commands run the venue in their own process"
    )


def _held_elsewhere(state_dir: Path, host: str, port: int, pid: int | None) -> PaperVenueDown:
    holder = pid if pid is not None else "unknown"
    return PaperVenueDown(
        f"the paper state {Path(state_dir) / 'paper'} is held by another process (pid {holder}) "
        f"and no venue answers on {host}:{port}; wait for that command to finish, or stop it"
    )



def serve(
    state_dir: Path,
    host: str,
    port: int,
    *,
    seed: int = 7,
    faults: Iterable[str] = (),
    volatility: float = 0.0005,
    order_limits: OrderLimits = BINANCE_ORDER_LIMITS,
    access_log: bool = False,
) -> None:
    """Serve in the foreground until Ctrl-C / SIGTERM (uvicorn handles the signals).

    While it runs, ``<state_dir>/paper/server.json`` records it (see ``refuse_if_served``).
    """
    exchange = _exchange(state_dir, seed, faults, volatility, wall_ms, order_limits=order_limits)
    try:
        sock = _bind(host, port)
        started = datetime.now(UTC).isoformat(timespec="milliseconds")
        record = ServerRecord(os.getpid(), host, sock.getsockname()[1], started)
        persist.record_server(state_dir, record)  # we hold the lock: the record is ours
        try:
            config = _config(exchange, quiet=False, access_log=access_log)
            _ForegroundServer(config).run(sockets=[sock])
        finally:
            persist.forget_server(state_dir, record.pid)
    finally:
        exchange.close()


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Does something accept TCP connections on host:port?"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
