"""Open the configured venue for one command or the daemon.

The paper venue is started inside this process for its duration when nothing
listens on its port (so `bot enter` works with no daemon and no network); the
Binance venue needs its keys in the environment and never starts anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot_cli.config import Config, Credentials, credentials
from bot_cli.errors import BotError
from bot_cli.exchange.rest import BinanceRest
from bot_cli.venue import VenueError


@dataclass
class Connection:
    rest: BinanceRest
    ws_url: str
    venue_name: str
    paper: Any = None  # the in-process paper server, when this process started it


def _paper_credentials() -> Credentials:
    from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET

    return Credentials(PAPER_API_KEY, PAPER_API_SECRET)


@contextlib.asynccontextmanager
async def connect(cfg: Config, state_dir: Path, *, start_paper: bool = True) -> AsyncIterator[Connection]:
    """A ready REST client (clock synced, position mode known); closes what it opened."""
    paper = None
    if cfg.venue.kind == "paper":
        creds = _paper_credentials()
        if start_paper:
            paper = await _start_paper(cfg, state_dir)
    else:
        creds = credentials()
    rest = BinanceRest(
        cfg.rest_url(), creds.api_key, creds.api_secret,
        recv_window_ms=cfg.venue.recv_window_ms, timeout_s=cfg.venue.timeout_s,
        hedge_mode=cfg.venue.position_mode == "hedge",
    )
    name = "paper" if cfg.venue.kind == "paper" else f"binance {cfg.venue.network}"
    try:
        await _prepare(rest, cfg, name)
        yield Connection(rest, cfg.ws_url(), name, paper)
    finally:
        await rest.aclose()
        if paper is not None:
            await paper.stop()


async def _prepare(rest: BinanceRest, cfg: Config, name: str) -> None:
    try:
        await rest.sync_time()
        if cfg.venue.position_mode == "auto":
            rest.hedge_mode = await rest.position_mode()
    except (VenueError, httpx.HTTPError) as err:
        raise BotError(
            f"cannot talk to the {name} venue at {cfg.rest_url()} ({err}); "
            "check venue.rest_url, the network, and the API keys"
        ) from None


async def _start_paper(cfg: Config, state_dir: Path) -> Any:
    from bot_cli.paper import server

    p = cfg.paper
    if server.is_listening(p.host, p.port):
        return None
    return await server.start_in_process(
        state_dir, p.host, p.port, seed=p.seed, faults=p.faults, volatility=p.volatility
    )
