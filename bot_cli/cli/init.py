"""`bot init`: write a commented bot.toml.

Values are serialised by tomli-w, so whatever is chosen reads back as TOML; the comments
around them are ours (tomli-w writes none). No secret is ever asked for or written: the
keys stay in the environment (BOT_API_KEY / BOT_API_SECRET).
"""

from __future__ import annotations

import enum
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError, UsageError


class Kind(enum.StrEnum):
    paper = "paper"
    binance = "binance"


class Network(enum.StrEnum):
    testnet = "testnet"
    live = "live"


class PositionMode(enum.StrEnum):
    auto = "auto"
    one_way = "one-way"
    hedge = "hedge"


class OnTrigger(enum.StrEnum):
    close = "close"
    alert = "alert"


@dataclass(frozen=True, slots=True)
class Answers:
    kind: str
    network: str
    allow_live: bool
    position_mode: str
    on_immediate_trigger: str
    paper_port: int


# The command's options, one alias each (the signature below stays readable).
_Venue = Annotated[Kind | None, typer.Option("--venue", help="Simulated (paper) or Binance.")]
_Network = Annotated[Network | None, typer.Option("--network", help="Binance only.")]
_AllowLive = Annotated[bool, typer.Option("--allow-live", help="Confirm that network live trades real money.")]
_Mode = Annotated[PositionMode | None, typer.Option("--position-mode", help="auto asks the exchange at start.")]
_OnTrigger = Annotated[
    OnTrigger | None, typer.Option("--on-immediate-trigger", help="A stop already crossed: close at market, or alert.")
]
_PaperPort = Annotated[int | None, typer.Option("--paper-port", min=1, max=65535, help="Port of the paper venue.")]
_Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Where to write (default: --config, else ./bot.toml).")
]
_Force = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
_Interactive = Annotated[
    bool | None, typer.Option("--interactive/--no-interactive", help="Ask (default: on a terminal).")
]


def init(
    ctx: typer.Context, venue: _Venue = None, network: _Network = None, allow_live: _AllowLive = False,
    position_mode: _Mode = None, on_trigger: _OnTrigger = None, paper_port: _PaperPort = None,
    output: _Output = None, force: _Force = False, interactive: _Interactive = None,
) -> None:  # fmt: skip
    """Write a commented bot.toml: asks on a terminal, takes flags otherwise. Never writes a
    secret: the API keys stay in the environment (BOT_API_KEY, BOT_API_SECRET).

    Examples:

      bot init

      bot init --venue binance --network testnet --position-mode auto
    """
    obj: AppContext = ctx.obj
    path = output or obj.config_path or Path("bot.toml")
    if path.exists() and not force:
        raise BotError(f"{path} exists: pass --force to overwrite it, or -o for another file")
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    given = {"kind": venue, "network": network, "position_mode": position_mode,
             "on_immediate_trigger": on_trigger, "paper_port": paper_port}  # fmt: skip
    answers = _ask(given, allow_live) if interactive else _defaults(given, allow_live)
    write_config(path, answers)
    typer.echo(f"wrote {path}: {_summary(answers)}")
    typer.echo(_next_steps(answers, path))


def _value(given: Any, default: str) -> str:
    return default if given is None else str(given.value)


def _defaults(given: dict[str, Any], allow_live: bool) -> Answers:
    network = _value(given["network"], "testnet")
    if network == "live" and not allow_live:
        raise UsageError("--network live trades real money: add --allow-live to confirm")
    return Answers(
        _value(given["kind"], "paper"), network, allow_live, _value(given["position_mode"], "auto"),
        _value(given["on_immediate_trigger"], "close"), given["paper_port"] or 18765,
    )  # fmt: skip


def _ask(given: dict[str, Any], allow_live: bool) -> Answers:
    """Ask for what the flags did not say."""
    a = _defaults({**given, "network": None}, allow_live)
    kind = _choose("venue", Kind, given["kind"], a.kind)
    network, port = a.network, a.paper_port
    if kind == "binance":
        network = _choose("network", Network, given["network"], "testnet")
        if network == "live" and not allow_live:
            allow_live = typer.confirm("network live trades real money: allow it?", default=False)
            if not allow_live:
                network = "testnet"
                typer.echo("network testnet, then")
    elif given["paper_port"] is None:
        port = typer.prompt("paper venue port", default=a.paper_port, type=int)
    mode = _choose("position mode", PositionMode, given["position_mode"], a.position_mode)
    trigger = _choose("a stop already crossed at placement", OnTrigger, given["on_immediate_trigger"],
                      a.on_immediate_trigger)  # fmt: skip
    return Answers(kind, network, allow_live and network == "live", mode, trigger, port)


def _choose(label: str, choices: type[enum.Enum], given: Any, default: str) -> str:
    if given is not None:
        return str(given.value)
    names = [str(c.value) for c in choices]
    while True:
        answer = str(typer.prompt(f"{label} ({'/'.join(names)})", default=default)).strip()
        if answer in names:
            return answer
        typer.echo(f"  one of: {', '.join(names)}", err=True)


def _summary(a: Answers) -> str:
    venue = "paper venue" if a.kind == "paper" else f"binance {a.network}"
    return f"{venue}, position mode {a.position_mode}, a crossed stop: {a.on_immediate_trigger}"


def _next_steps(a: Answers, path: Path) -> str:
    config = "" if path == Path("bot.toml") else f" --config {path}"
    keys = "" if a.kind == "paper" else "export BOT_API_KEY and BOT_API_SECRET, then "
    return f"next: {keys}bot{config} config check --online"


# --- the file ---------------------------------------------------------------------------------

HEADER = """\
# bot.toml, written by `bot init` on {date}. Every key is documented in bot.toml.example;
# unknown keys are errors. Check it with `bot config check --online`.
#
# Secrets never go here: the API keys come from the environment (BOT_API_KEY,
# BOT_API_SECRET; under systemd an EnvironmentFile only the bot's user can read).
"""


def render(a: Answers) -> str:
    """The commented TOML for these answers."""
    import tomli_w

    def key(name: str, value: object, comment: str) -> str:
        return f"# {comment}\n{tomli_w.dumps({name: value})}"

    venue = [key("kind", a.kind, '"paper" (simulated, on this machine) or "binance"')]
    if a.kind == "binance":
        venue.append(key("network", a.network, '"testnet" or "live" (real money)'))
        if a.network == "live":
            venue.append(key("allow_live", a.allow_live, "trading real money was confirmed"))
    venue.append(key("position_mode", a.position_mode,
                     '"auto" asks the exchange once at start; "one-way" or "hedge" saves that call'))  # fmt: skip
    protection = [key("on_immediate_trigger", a.on_immediate_trigger,
                      'a stop/take-profit already crossed when placed: "close" the fill at market, '
                      'or "alert" (NEEDS_ATTENTION)')]  # fmt: skip
    sections = [("venue", venue), ("protection", protection)]
    if a.kind == "paper":
        sections.append(("paper", [key("port", a.paper_port, "where the simulated exchange listens")]))
    body = "\n".join(f"[{name}]\n" + "".join(keys) for name, keys in sections)
    date = time.strftime("%Y-%m-%d")
    return HEADER.format(date=date) + "\n" + body + NOTIFY_HINT


NOTIFY_HINT = """
# Alerts to a person (see bot.toml.example): a JSON webhook and/or Telegram, whose bot token
# comes from BOT_TELEGRAM_TOKEN in the environment, never from here.
# [notify]
# webhook_url = ""
# telegram_chat_id = ""
"""


def write_config(path: Path, answers: Answers) -> None:
    """Write atomically, then read it back with the loader: a file that does not load is
    an error here, not at the bot's next start."""
    from bot_cli.config import load_config
    from bot_cli.store.atomic import replace_durable

    if not path.parent.is_dir():
        raise BotError(f"cannot write {path}: directory {path.parent} does not exist")
    try:
        replace_durable(path, render(answers).encode())
    except OSError as err:
        raise BotError(f"cannot write {path} ({err.strerror}): check the directory's permissions") from None
    load_config(path)
