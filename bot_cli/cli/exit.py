"""`bot cancel ID [--close]` and `bot close ID|SYMBOL`: parse, hand to ``ops.exit``, say what is known."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, warn
from bot_cli.errors import BotError
from bot_cli.ops.exit import CANCEL, CANCEL_CLOSE, CLOSE, EXITING, FOLLOW_S, PROTECTED


if TYPE_CHECKING:
    from bot_cli.core.model import Pending
    from bot_cli.ops.exit import Outcome

_ID_HELP = "The entry's id (see `bot pending list`)."
_TARGET_HELP = "An entry's id, or a symbol: every entry on it that holds a share."
_CLOSE_HELP = "Also close at market what filled (otherwise it stays protected)."
_TIMEOUT_HELP = "Seconds to wait for the effect (daemon) or to follow the entry (no daemon)."
_JSON_HELP = "Print the result as JSON."


def cancel(
    ctx: typer.Context,
    pending_id: Annotated[str, typer.Argument(help=_ID_HELP)],
    close: Annotated[bool, typer.Option("--close", help=_CLOSE_HELP)] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
) -> None:
    """Cancel the rest of a working entry order; what filled stays protected (--close: closed).

    Example: bot cancel bc0mi3k2x7a1b2c --close

    Exit 0: done (cancelled; a fill protected, or closed with --close). Exit 1: refused, nothing
    changed (unknown id, nothing left to cancel); needs attention; or the daemon stopped first
    (its request stays for the next `bot run`). Exit 3: not settled within --timeout.
    """
    _run(ctx.obj, pending_id, CANCEL_CLOSE if close else CANCEL, timeout, as_json)


def close(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help=_TARGET_HELP)],
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
) -> None:
    """Close an entry's share at market (reduce-only), then cancel its legs.

    A SYMBOL closes every entry on it, each its own share; an entry order still working is
    cancelled first.

    Example: bot close bc0mi3k2x7a1b2c; bot close BTCUSDT

    Exit 0: closed (with a daemon: closed, or its close in flight). Exit 1: refused, nothing
    changed (unknown id, nothing filled, no share); needs attention; or the daemon stopped first
    (its request stays for the next `bot run`). Exit 3: not settled within --timeout.
    """
    _run(ctx.obj, target, CLOSE, timeout, as_json)


def _run(obj: AppContext, target: str, verb: str, timeout: float, as_json: bool) -> None:
    import asyncio

    from bot_cli.ops.exit import exit_entries

    obj.check_config()
    show_outcomes(asyncio.run(exit_entries(obj.config, obj.state_dir, target, verb=verb, timeout=timeout)), as_json)


# -- the answer -------------------------------------------------------------------------


def what(p: Pending) -> str:
    """The state in words, for the stdout line."""
    if p.status.terminal:
        return p.reason or p.status.value.lower()
    if p.status.value == PROTECTED:
        levels = f"stop-loss {p.spec.stop_loss}" + (f", take-profit {p.spec.take_profit}" if p.spec.take_profit else "")
        return f"entry order over with {p.filled_qty} filled; its share {p.share} stays protected ({levels})"
    if p.status.value == EXITING and p.close is not None:
        c = p.close
        return f"market close {c.client_id} of {c.quantity} in flight ({c.state.value})"
    if p.status.value == EXITING and p.share == 0:
        return "closed at market; its legs are being cancelled"
    return p.reason or ("entry order over" if p.entry_done else "entry order still working")


def show_outcomes(outcomes: list[Outcome], as_json: bool) -> None:
    if as_json:
        print_json({"results": [_as_json(o) for o in outcomes]})
    else:
        for o in outcomes:
            p = o.pending
            typer.echo(f"entry {p.pending_id} ({p.spec.symbol}): {p.status.value} - {what(p)}"
                       f" [by {o.by}]")  # fmt: skip
    notes = "; ".join(o.note for o in outcomes if o.note)
    if any(o.code == 1 for o in outcomes):
        raise BotError(notes)
    if notes:
        warn(notes)
    if code := max((o.code for o in outcomes), default=0):
        raise typer.Exit(code)


def _as_json(o: Outcome) -> dict[str, Any]:
    p = o.pending
    return {
        "id": p.pending_id, "symbol": p.spec.symbol, "state": p.status.value, "reason": p.reason,
        "filled_quantity": str(p.filled_qty), "share": str(p.share), "by": o.by,
        "stop_loss": str(p.spec.stop_loss),
        "take_profit": None if p.spec.take_profit is None else str(p.spec.take_profit),
        "note": o.note or None, "exit_code": o.code,
    }  # fmt: skip
