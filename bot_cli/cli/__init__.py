"""The `bot` command line: one module per command group, one renderer, exit codes by error type.

Exit codes: 0 success; 1 error (one line on stderr, no traceback); 2 `recover --dry-run`
found work to do (and command-line usage errors, as Typer reports them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from bot_cli.cli import config_cmd, notify, paper, pending
from bot_cli.cli.adopt import adopt
from bot_cli.cli.amend import amend
from bot_cli.cli.context import show_version, start
from bot_cli.cli.enter import enter
from bot_cli.cli.exit import cancel, close
from bot_cli.cli.history import history
from bot_cli.cli.init import init
from bot_cli.cli.probe import probe
from bot_cli.cli.recover import recover
from bot_cli.cli.render import conventions, error
from bot_cli.cli.run import run
from bot_cli.cli.status import status
from bot_cli.errors import TRACEBACK_ENV, BotError, UsageError, unexpected
from bot_cli.state_store import StoreError


class Terminated(BaseException):  # not an Exception: no handler of errors may swallow it
    """SIGTERM reached a one-shot command (`bot run` and `bot paper serve` handle their own)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


class _Group(TyperGroup):
    """Our errors become one line on stderr and their exit code, never a traceback; SIGTERM
    ends a one-shot command with one line saying what it left and what finishes it."""

    def invoke(self, ctx: Any) -> Any:
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            answer = super().invoke(ctx)
        except typer.Exit:  # an answer with its own exit code: what it deferred is said too
            _say_deferred()
            raise
        except Terminated:
            error(_terminated(ctx))
            raise typer.Exit(TERMINATED) from None
        except (BotError, StoreError) as err:
            error(str(err))
            raise typer.Exit(getattr(err, "exit_code", 1)) from None
        except (typer.Abort, typer.TyperException):
            raise  # exit codes and usage errors, which click reports itself
        except Exception as err:  # the rule is one line, even for what nobody foresaw
            if os.environ.get(TRACEBACK_ENV):
                raise
            error(unexpected(err))
            raise typer.Exit(1) from None
        _say_deferred()
        return answer


def _say_deferred() -> None:
    """What a command that got as far as an answer deferred (bot_cli.connect.DEFERRED); never
    imports the venue's client for a command that did not use it."""
    connect = sys.modules.get("bot_cli.connect")
    if connect is not None:
        connect.say_deferred()


TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process SIGTERM ended


def _terminated(ctx: Any) -> str:
    """One line: the command was stopped, the entries it left unsettled, and what finishes them
    (the journal was written before anything was sent, so nothing is lost)."""
    from bot_cli.ops.checks import journal_entries
    from bot_cli.state_store import PendingEntryStore

    obj = ctx.obj
    left = ""
    if obj is not None and Path(obj.state_dir).is_dir():
        with contextlib.suppress(Exception), PendingEntryStore(obj.state_dir) as store:
            mid = [p for p in journal_entries(store) if p.status.value in _MIDWAY]
            left = "; left " + ", ".join(f"{p.pending_id} {p.status.value}" for p in mid) if mid else ""
    return (f"stopped by SIGTERM before `bot {ctx.invoked_subcommand}` finished{left}; the journal has what it"
            " decided: `bot recover` (or `bot run`) finishes it")


_MIDWAY = frozenset({"SUBMITTING", "PROTECTING", "EXITING", "REQUESTED"})


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold API secrets
    add_completion=True,  # --install-completion / --show-completion
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Operator tool for a Binance USD-M futures bot: every filled entry gets its stop-loss and take-profit.",
)
app.add_typer(pending.app, name="pending")
app.add_typer(paper.app, name="paper")
app.add_typer(notify.app, name="notify")
app.command("run")(run)
app.command("recover", epilog="Example: bot recover --dry-run; bot recover --yes --json")(recover)
# A number given as -0 or -5 is a number refused as one, not an unknown option.
NUMBERS_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}
app.command("enter", epilog="Example: bot enter BTCUSDT buy 0.010 --sl 95000 --tp 99000",
            context_settings=NUMBERS_MAY_BE_NEGATIVE)(enter)
app.command("adopt", epilog="Example: bot adopt BTCUSDT --sl 95000 --tp 99000")(adopt)
app.command("status")(status)
app.command("probe", epilog="Example: bot probe deadman --symbol BTCUSDT")(probe)
app.command("history")(history)
app.command("cancel")(cancel)
app.command("close")(close)
app.command("amend", epilog="Example: bot amend bc0mi3k2x7a1b2c --sl 96500")(amend)
app.command("init")(init)
app.add_typer(config_cmd.app, name="config")


@app.callback()
def _global(
    ctx: typer.Context,
    state_dir: Annotated[
        str, typer.Option("--state-dir", envvar="BOT_STATE_DIR", help="State directory (journal, archive, lock).")
    ] = "state",
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="BOT_CONFIG", help="Config file (TOML); default ./bot.toml if present."),
    ] = None,
    _version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=show_version, help="Print the version and exit.")
    ] = False,
) -> None:
    if not state_dir.strip():  # Path("") is the current directory: never meant
        raise UsageError("--state-dir '' names no directory: give a path, e.g. --state-dir state")
    ctx.obj = start(ctx, Path(state_dir), config)


def main() -> None:
    """The `bot` console script."""
    conventions(app)
    app(prog_name="bot")
