"""Open the configured venue for one command or the daemon.

The paper venue is started inside this process for its duration only when this
process may own the paper state: nothing answers on paper.host:paper.port, no
`bot paper serve` is recorded for the state dir, its lock is free, and
venue.rest_url does not point elsewhere (see ``paper.server.start_owned``). Then
one line on stderr says so; otherwise the command stops with one line saying why,
before anything is written or sent. The Binance venue needs its keys in the
environment and never starts anything.

A venue that does not answer for now (unreachable, 5xx, timed out) raises ``VenueUnreachable``,
which `bot run` waits out; a read refused for the minute's request weight raises ``WeightSpent``
(a VenueUnreachable whose one line says so, never "cannot reach"); refused keys, a bad URL or a
paper venue recorded but down raise a plain BotError: no wait fixes those.

``light=True`` sends nothing while connecting (no clock sync, no exchangeInfo, no position
mode): for `bot enter` handing its entry to a running daemon; the caller (``bot_cli.ops.enter``)
brings the rate limits and the position mode from the state dir.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot_cli.config import Config, Credentials, credentials
from bot_cli.errors import BotError
from bot_cli.exchange.rest import BinanceRest
from bot_cli.venue import OutcomeUnknown, RateLimited, Unavailable, VenueError, WeightThrottled


class VenueUnreachable(BotError):
    """The venue did not answer now; trying again later may work (``retry_after`` at least)."""

    def __init__(self, name: str, url: str, why: str, retry_after: float) -> None:
        super().__init__(
            f"cannot reach the {name} venue at {url} ({why}); check venue.rest_url and the network"
        )
        self.why, self.retry_after = why, retry_after


class WeightSpent(VenueUnreachable):
    """A read refused for the minute's request weight: the venue is reachable, the budget is not."""

    def __init__(self, line: str, retry_after: float) -> None:
        BotError.__init__(self, line)
        self.why, self.retry_after = line, retry_after


def rate_limited_line(rest: BinanceRest, err: RateLimited) -> str:
    """One line for a request refused for the request weight: by this process's throttle (the
    minute's weight, as the exchange counts it, is nearly spent) or by the exchange itself."""
    wait_s = max(1, math.ceil(err.retry_after))
    if isinstance(err, WeightThrottled) and rest.weight.limit is not None:
        return (f"not sent: this process's request weight budget is spent ({rest.used_weight} of"
                f" {rest.weight.limit} this minute); try again in {wait_s} s")  # fmt: skip
    return f"not sent: the venue refuses requests for now ({err.message}); try again in {wait_s} s"


@dataclass
class Connection:
    rest: BinanceRest
    ws_url: str
    venue_name: str
    paper: Any = None  # the in-process paper server, when this process started it


def venue_credentials(cfg: Config) -> Credentials:
    """The paper venue's fixed keys, or Binance's from the environment (ConfigError if unset)."""
    if cfg.venue.kind != "paper":
        return credentials()
    from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET

    return Credentials(PAPER_API_KEY, PAPER_API_SECRET)


@contextlib.asynccontextmanager
async def connect(
    cfg: Config,
    state_dir: Path,
    *,
    start_paper: bool = True,
    say: Callable[[str], None] | None = None,
    light: bool = False,
) -> AsyncIterator[Connection]:
    """A ready REST client (clock synced, rate limits and position mode known; with ``light``,
    none of these: nothing is sent); closes what it opened.

    ``say`` gets the one line announcing an in-process paper venue (default: stderr).
    """
    creds = venue_credentials(cfg)
    paper = None
    if cfg.venue.kind == "paper" and start_paper:
        paper = await _start_paper(cfg, state_dir, say or _to_stderr)
    rest = BinanceRest(
        cfg.rest_url(), creds.api_key, creds.api_secret,
        recv_window_ms=cfg.venue.recv_window_ms, timeout_s=cfg.venue.timeout_s,
        hedge_mode=cfg.venue.position_mode == "hedge",
    )
    name = "paper" if cfg.venue.kind == "paper" else f"binance {cfg.venue.network}"
    try:
        if not light:
            await _prepare(rest, cfg, name)
        yield Connection(rest, cfg.ws_url(), name, paper)
    finally:
        await rest.aclose()
        if paper is not None:
            await paper.stop()


async def _prepare(rest: BinanceRest, cfg: Config, name: str) -> None:
    try:
        await rest.sync_time()
        await rest.load_limits()  # the request weight a minute allows, as the exchange says
        if cfg.venue.position_mode == "auto":
            rest.hedge_mode = await rest.position_mode()
    except RateLimited as err:  # reachable: the minute's weight is spent
        raise WeightSpent(rate_limited_line(rest, err), err.retry_after) from None
    except Unavailable as err:  # not sent, 503: it may answer later
        raise VenueUnreachable(name, cfg.rest_url(), str(err), err.retry_after) from None
    except (OutcomeUnknown, httpx.TransportError) as err:  # no answer in time
        raise VenueUnreachable(name, cfg.rest_url(), str(err), 1.0) from None
    except (VenueError, httpx.HTTPError) as err:
        raise BotError(
            f"cannot talk to the {name} venue at {cfg.rest_url()} ({err}); "
            "check venue.rest_url, the network, and the API keys"
        ) from None


async def _start_paper(cfg: Config, state_dir: Path, say: Callable[[str], None]) -> Any:
    from bot_cli.paper import server
    from bot_cli.paper.auth import OrderLimits

    if cfg.venue.rest_url:  # the venue is configured elsewhere: never start one in its place
        return None
    p = cfg.paper
    handle = await server.start_owned(
        state_dir, p.host, p.port, seed=p.seed, faults=p.faults, volatility=p.volatility,
        order_limits=OrderLimits(p.order_limit_10s, p.order_limit_1m),
    )  # fmt: skip
    if handle is not None:
        try:  # the venue may have created the state dir just now, with the umask's mode
            _private(Path(state_dir))
        except BotError:
            await handle.stop()
            raise
        say(
            f"started the paper venue in this process on {p.host}:{handle.port} "
            f"(state: {Path(state_dir) / 'paper'})"
        )
    return handle


async def venue_key(cfg: Config) -> str:
    """Which venue this is, for the probe verdicts found on it: Binance by its URL, a paper
    venue by the id of the state it serves (``GET /paper/whoami``)."""
    from bot_cli.store.probes import venue_key as key

    if cfg.venue.kind != "paper":
        return key("binance", cfg.rest_url())
    try:
        async with httpx.AsyncClient(timeout=cfg.venue.timeout_s) as client:
            answer = (await client.get(f"{cfg.rest_url()}/paper/whoami")).json()
    except (httpx.HTTPError, ValueError) as err:
        raise BotError(f"the paper venue at {cfg.rest_url()} does not say which state it serves ({err})") from None
    return key("paper", cfg.rest_url(), str(answer.get("id")) if isinstance(answer, dict) else None)


def _private(state_dir: Path) -> None:
    from bot_cli.store import StateDirError
    from bot_cli.store.atomic import tighten_dir

    try:
        tighten_dir(state_dir)
    except StateDirError as err:
        raise BotError(str(err)) from None


# What a one-shot command has to say besides its answer ("started the paper venue in this
# process ..."): said once it succeeded (``say_deferred``); a command that fails says one line,
# its error, and nothing else.
DEFERRED: list[str] = []


def _to_stderr(line: str) -> None:
    DEFERRED.append(line)


def say_deferred() -> None:
    """Write what the command deferred to stderr, once."""
    for line in DEFERRED:
        sys.stderr.write(line + "\n")
    DEFERRED.clear()
    sys.stderr.flush()
