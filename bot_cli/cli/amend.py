"""`bot amend ID [--sl PRICE] [--tp PRICE] [--breakeven]`: parse, hand to ``ops.amend``, say what is known."""

from __future__ import annotations

from typing import Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.enter import parse_decimal, parse_trail
from bot_cli.ops.exit import FOLLOW_S


_TP_HELP = "The new take-profit trigger price; for an entry with levels, one --tp per level, in order."
_TRAIL_HELP = "Add a trailing stop beside the stop-loss (or change how it trails): it follows the best price by PCT %."
_ACTIVATE_HELP = "With --trail: the price at which it starts to trail (default: at once)."
_TIMEOUT_HELP = "Seconds to wait for the new legs live and the old ones gone (daemon or not)."
_BE_HELP = "Move the stop-loss to the average fill price plus the round trip's fees ([protection] breakeven_fee_pct)."


def amend(
    ctx: typer.Context,
    pending_id: Annotated[str, typer.Argument(help="The entry's id (see `bot pending list`).")],
    sl: Annotated[str | None, typer.Option("--sl", help="The new stop-loss trigger price.")] = None,
    tp: Annotated[list[str] | None, typer.Option("--tp", metavar="PRICE", help=_TP_HELP)] = None,
    breakeven: Annotated[bool, typer.Option("--breakeven", help=_BE_HELP)] = False,
    trail: Annotated[str | None, typer.Option("--trail", metavar="PCT", help=_TRAIL_HELP)] = None,
    activate: Annotated[str | None, typer.Option("--activate", metavar="PRICE", help=_ACTIVATE_HELP)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Move an entry's stop-loss and/or take-profit; the new leg is live before the old one goes.

    The new levels are checked as an entry's (the tick; for a share held now, the stop-loss on the
    losing side of the mark and the take-profit on the other, so neither triggers at once) and
    written to the journal before anything is sent. Through `bot run` when it runs, alone otherwise.

    Example: bot amend bc0mi3k2x7a1b2c --sl 96500; bot amend bc0mi3k2x7a1b2c --breakeven

    Exit 0: moved (the legs at the new levels, the old ones cancelled). Exit 1: refused, nothing
    changed (unknown id, a level on the wrong side or off the tick, an entry winding down); or the
    daemon stopped first. Exit 3: not settled within --timeout (the daemon, or the next `bot run`,
    finishes it).
    """
    import asyncio
    from decimal import Decimal

    from bot_cli.cli.exit import show_outcomes
    from bot_cli.ops.amend import Amendment
    from bot_cli.ops.amend import amend as amending

    obj: AppContext = ctx.obj
    ask = Amendment(
        None if sl is None else parse_decimal("--sl", sl), tuple(parse_decimal("--tp", x) for x in tp or ()), breakeven,
        parse_trail(trail, activate),
    )  # fmt: skip
    obj.check_config()
    fee = Decimal(str(obj.config.protection.breakeven_fee_pct))
    outcome = asyncio.run(amending(obj.config, obj.state_dir, pending_id, ask, timeout=timeout, fee_pct=fee))
    show_outcomes([outcome], as_json)
