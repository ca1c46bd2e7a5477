"""`bot config check [--online]`: is this set-up ready to run?

Offline: the config loads, the keys the venue needs are in the environment (never shown),
the state dir is usable. With --online, the venue is asked (weight about 41, and one test
order): the clock offset, the position mode against the config's, the account's permissions
where the API says them, and the user data stream, opened as `bot run` opens it and proven
by the event of a post-only test order far from the market, cancelled at once
(``bot_cli.ops.stream_probe``). On a live account that order needs --allow-order (or a yes
on a terminal); without it the row is a warning. Exit 1 (one line on stderr) when a check
fails; a warning does not fail.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext, state_dir_problem
from bot_cli.cli.render import print_json, table
from bot_cli.errors import BotError


if TYPE_CHECKING:
    import httpx

    from bot_cli.config import Config
    from bot_cli.connect import Connection
    from bot_cli.exchange.rest import BinanceRest

app = typer.Typer(no_args_is_help=True, help="Check the configuration, keys and venue before a run.")
CLOCK_WARN_MS = 1000  # the bot corrects the offset; this large it says the host's clock is off


class Result(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    result: Result
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "result": self.result.value.lower(), "detail": self.detail}


@app.command("check")
def check(
    ctx: typer.Context,
    online: Annotated[
        bool, typer.Option("--online", help="Also ask the venue (about 41 weight and one test order).")
    ] = False,
    allow_order: Annotated[bool, typer.Option(
        "--allow-order", help="On a live account, allow the post-only test order (far from the market, "
        "cancelled at once) that proves the user stream; testnet and paper never ask.",
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"ok", "checks": [...]}.')] = False,
) -> None:
    """Validate the config, the API keys' presence and the state dir; with --online also
    the venue: clock offset, position mode, account permissions, and a user stream proven
    by the event of a test order (post-only, far from the market, cancelled at once).

    Examples:

      bot config check

      bot --config bot.toml config check --online --json

      bot config check --online --allow-order
    """
    import asyncio

    obj: AppContext = ctx.obj
    checks, cfg = offline_checks(obj)
    if online and cfg is not None:
        consent = allow_order or (_live(cfg) and not as_json and _ask_consent())
        checks += asyncio.run(online_checks(cfg, obj.state_dir, allow_order=consent))
    _show(checks, as_json)
    failed = [c.name for c in checks if c.result is Result.FAIL]
    if failed:
        raise BotError(f"{len(failed)} check(s) failed ({', '.join(failed)}): see the table above")


def offline_checks(obj: AppContext) -> tuple[list[Check], Config | None]:
    from bot_cli.config import load_config

    try:
        cfg = load_config(obj.config_path)
    except BotError as err:
        return [Check("config", Result.FAIL, str(err))], None
    checks = [_config_row(cfg), _keys_row(cfg), *_secret_rows(cfg), _state_row(obj.state_dir)]
    if _live(cfg):
        checks.append(Check("live", Result.WARN, "network live: orders trade real money"))
    return checks, cfg


def _live(cfg: Config) -> bool:
    return cfg.venue.kind == "binance" and cfg.venue.network == "live"


def _ask_consent() -> bool:
    """On a terminal, the operator may allow the live test order; elsewhere it needs --allow-order."""
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    return typer.confirm("Prove the user stream with a post-only test order on the live account "
                         "(far below the market, cancelled at once)?", default=False)  # fmt: skip


def _config_row(cfg: Config) -> Check:
    where = str(cfg.path) if cfg.path else "no bot.toml: the defaults"
    venue = "paper venue" if cfg.venue.kind == "paper" else f"binance {cfg.venue.network}"
    return Check("config", Result.OK, f"{where} ({venue}, REST {cfg.rest_url()})")


def _keys_row(cfg: Config) -> Check:
    import os

    if cfg.venue.kind == "paper":
        return Check("keys", Result.OK, "none needed: the paper venue has its own")
    missing = [name for name in ("BOT_API_KEY", "BOT_API_SECRET") if not os.environ.get(name)]
    if missing:
        return Check("keys", Result.FAIL, f"{' and '.join(missing)} not set in the environment")
    return Check("keys", Result.OK, "BOT_API_KEY and BOT_API_SECRET set in the environment")


def _secret_rows(cfg: Config) -> list[Check]:
    """The other secrets a configured feature needs, also from the environment only."""
    import os

    rows = []
    if cfg.notify.telegram_chat_id:
        env = "BOT_TELEGRAM_TOKEN"
        rows.append(
            Check("notify", Result.OK, f"{env} set in the environment") if os.environ.get(env)
            else Check("notify", Result.FAIL, f"notify.telegram_chat_id is set but {env} is not set in the environment")
        )  # fmt: skip
    if cfg.inbox.enabled:
        rows.append(_inbox_row())
    return rows


def _inbox_row() -> Check:
    """The very check `bot run` makes before it starts an enabled inbox (the same line)."""
    from bot_cli.inbox.guard import SECRET_ENV, InboxError, secret_from

    try:
        secret_from()
    except InboxError as err:
        return Check("inbox", Result.FAIL, str(err))
    return Check("inbox", Result.OK, f"{SECRET_ENV} set in the environment")


def _state_row(path: Path) -> Check:
    import stat

    if (problem := state_dir_problem(path)) is not None:
        return Check("state dir", Result.FAIL, problem)
    if not path.exists():
        return Check("state dir", Result.OK, f"{path} (created 0700 at the first run)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("state dir", Result.WARN, f"{path} is {mode:04o}: the next command makes it 0700")
    return Check("state dir", Result.OK, f"{path} ({mode:04o})")


# --- online -----------------------------------------------------------------------------------


async def online_checks(cfg: Config, state_dir: Path, *, allow_order: bool = False) -> list[Check]:
    """Ask the venue; it is never started here (a paper venue not running is a warning).
    ``allow_order``: the operator's consent to the test order on a live account."""
    from bot_cli.connect import VenueUnreachable, connect

    try:
        async with connect(cfg, state_dir, start_paper=False) as conn:
            return [_clock_row(conn.rest), await _mode_row(conn.rest, cfg), await _permissions_row(cfg, conn.rest),
                    await _stream_row(conn, cfg, allow_order or not _live(cfg))]  # fmt: skip
    except VenueUnreachable as err:
        if cfg.venue.kind == "paper" and not cfg.venue.rest_url:
            return [Check("venue", Result.WARN, f"{err.why}: none runs now; `bot run` starts one")]
        return [Check("venue", Result.FAIL, str(err))]
    except BotError as err:
        return [Check("venue", Result.FAIL, str(err))]


def _clock_row(rest: BinanceRest) -> Check:
    offset = rest.time_offset_ms
    text = f"local clock {abs(offset)} ms {'behind' if offset > 0 else 'ahead of'} the venue"
    if abs(offset) >= CLOCK_WARN_MS:
        return Check("clock", Result.WARN, f"{text} (corrected in every request; check NTP)")
    return Check("clock", Result.OK, text)


async def _mode_row(rest: BinanceRest, cfg: Config) -> Check:
    from bot_cli.venue import VenueError

    try:
        hedge = rest.hedge_mode if cfg.venue.position_mode == "auto" else await rest.position_mode()
    except VenueError as err:
        return Check("position mode", Result.FAIL, f"cannot read it: {err}")
    actual = "hedge" if hedge else "one-way"
    wanted = cfg.venue.position_mode
    if wanted not in ("auto", actual):
        return Check("position mode", Result.FAIL, f"the account is in {actual} mode, the config "
                     f'says {wanted}: set venue.position_mode = "{actual}" or "auto"')  # fmt: skip
    return Check("position mode", Result.OK, f"{actual} (config: {wanted})")


async def _permissions_row(cfg: Config, rest: BinanceRest) -> Check:
    """GET /fapi/v1/accountConfig (weight 5) says canTrade; a venue without it (the paper
    one) does not say, and the signed calls above already proved the keys can read."""
    import httpx

    from bot_cli.connect import venue_credentials

    query = rest.signed_query([])
    headers = {"X-MBX-APIKEY": venue_credentials(cfg).api_key}
    try:
        async with httpx.AsyncClient(base_url=cfg.rest_url(), timeout=cfg.venue.timeout_s) as http:
            answer = await http.get(f"/fapi/v1/accountConfig?{query}", headers=headers)
    except httpx.HTTPError as err:
        return Check("permissions", Result.WARN, f"not checked ({type(err).__name__})")
    return _permissions(answer.status_code, _json(answer))


def _json(answer: httpx.Response) -> object:
    try:
        return answer.json()
    except ValueError:
        return None


def _permissions(status: int, body: object) -> Check:
    if status == HTTPStatus.NOT_FOUND:
        return Check("permissions", Result.OK, "not reported by this venue; the keys can read")
    if status != HTTPStatus.OK or not isinstance(body, dict) or "canTrade" not in body:
        code = body.get("code") if isinstance(body, dict) else None
        return Check("permissions", Result.WARN, f"not checked (HTTP {status}, code {code})")
    if body["canTrade"] is not True:
        return Check("permissions", Result.FAIL, "the account cannot trade (canTrade false)")
    return Check("permissions", Result.OK, "the account can trade")


async def _stream_row(conn: Connection, cfg: Config, may_order: bool) -> Check:
    """The user data stream at the URL `bot run` uses, proven by a test order's event."""
    from bot_cli.connect import venue_credentials
    from bot_cli.ops import stream_probe as probe

    target = probe.StreamTarget(conn.ws_url, cfg.rest_url(), cfg.venue.timeout_s, cfg.venue.recv_window_ms)
    proof = await probe.prove_user_stream(conn.rest, venue_credentials(cfg), target, may_order=may_order)
    result = {probe.Verdict.DELIVERED: Result.OK, probe.Verdict.NOT_PROVEN: Result.WARN}
    return Check("user stream", result.get(proof.verdict, Result.FAIL), proof.detail)


def _show(checks: list[Check], as_json: bool) -> None:
    if as_json:
        ok = all(c.result is not Result.FAIL for c in checks)
        print_json({"ok": ok, "checks": [c.as_json() for c in checks]})
        return
    table("config check", ("check", "result", "detail"), [(c.name, c.result.value, c.detail) for c in checks])
