"""`bot probe [NAME...]`: check the venue's unwritten rules on this account, and save the verdicts.

The experiments and what each verdict means are in ``bot_cli.ops.probe``; this module parses,
asks for the confirmation a live account needs, and prints the table.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.errors import UsageError


NAMES_HELP = "Probes to run: deadman, gte-gtc, stop-before-position (default: all three)."
SYMBOL_HELP = "The symbol to probe on: no open regular order, no position, no entry of the journal."
COUNTDOWN_HELP = "deadman: the countdown armed and left to run out, in seconds."
WAIT_HELP = "How long to wait for what the venue does on its own (an expiry, a trigger), in seconds."
LIVE_HELP = "Allow probing a live (real-money) account: smallest orders, far from the market; asks first."


def probe(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(metavar="[NAME...]", help=NAMES_HELP)] = None,
    symbol: Annotated[str, typer.Option("--symbol", help=SYMBOL_HELP)] = "BTCUSDT",
    countdown: Annotated[float, typer.Option("--countdown", min=1.0, max=300.0, help=COUNTDOWN_HELP)] = 10.0,
    wait: Annotated[float, typer.Option("--wait", min=1.0, max=600.0, help=WAIT_HELP)] = 30.0,
    allow_live: Annotated[bool, typer.Option("--allow-live", help=LIVE_HELP)] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (a live account still needs --allow-live).")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
) -> None:
    """Check, with small self-cleaning orders, what Binance does not document: does the dead-man
    switch spare the stop-losses, is GTE_GTC accepted on algo orders, can a stop rest before a position.

    Each verdict is saved in the state dir with its date and venue; `bot run` arms the dead-man
    switch on a Binance venue only after `deadman` said legs-survive there.

    Exit 0: every probe ran (whatever it found). Exit 1: refused (a daemon runs, the symbol is in
    use, a live account without --allow-live); nothing was sent.
    """
    import asyncio
    import sys

    from bot_cli.ops.probe import PROBES, probe_venue

    obj: AppContext = ctx.obj
    chosen = list(dict.fromkeys(names or PROBES))
    unknown = [n for n in chosen if n not in PROBES]
    if unknown:
        raise UsageError(f"unknown probe {', '.join(unknown)}; known: {', '.join(PROBES)}")
    obj.check_config()
    cfg = obj.config
    if cfg.venue.kind == "binance" and cfg.venue.network == "live":
        if not allow_live:
            raise UsageError("this config trades real money: `bot probe` places small orders on it only with"
                             " --allow-live")  # fmt: skip
        if not yes and not typer.confirm(
            f"Probe {', '.join(chosen)} on the LIVE account with the smallest {symbol.upper()} orders"
            " (gte-gtc opens and closes a position: two taker fees)?"
        ):
            raise typer.Exit(1)

    def say(line: str) -> None:
        if not as_json:
            sys.stderr.write(line + "\n")

    verdicts = asyncio.run(probe_venue(
        cfg, obj.state_dir, chosen, symbol=symbol.upper(), countdown_s=countdown, wait_s=wait, say=say,
    ))  # fmt: skip
    if as_json:
        print_json([{"name": v.name, "verdict": v.verdict, "detail": v.detail, "at": v.at, "venue": v.venue}
                    for v in verdicts])  # fmt: skip
        return
    table(f"probes on {verdicts[0].venue if verdicts else cfg.rest_url()}", ["probe", "verdict", "seen", "at"],
          [[v.name, v.verdict, v.detail, v.at] for v in verdicts])  # fmt: skip
