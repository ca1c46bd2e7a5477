"""`bot adopt`: protect a part of a position no entry holds (a trade by hand, an entry that
filled unseen) by making it an entry of its own, with its own stop-loss and take-profit.

The part is read from the venue's position and the journal; the adoption is checked and
admitted as an entry is, and a refusal is exit 1 and one line, with nothing written or sent.
With a daemon running it is handed over and the daemon places the legs; with none, this
process places them. The flow is shared with the Python API (``bot_cli.ops.adopt``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.enter import PositionSideArg, parse_decimal
from bot_cli.cli.render import end, print_json


if TYPE_CHECKING:
    from bot_cli.core.model import Pending
    from bot_cli.ops.enter import Result


_PS_HELP = "LONG or SHORT (hedge mode only; needed when both have an unclaimed part)."
_QTY_HELP = "Adopt only this much of the unclaimed part (default: all of it)."


def adopt(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    sl: Annotated[str, typer.Option("--sl", help="Stop-loss trigger price (required).")],
    tp: Annotated[str | None, typer.Option("--tp", help="Take-profit trigger price.")] = None,
    position_side: Annotated[
        PositionSideArg | None, typer.Option("--position-side", case_sensitive=False, help=_PS_HELP)
    ] = None,
    quantity: Annotated[str | None, typer.Option("--quantity", help=_QTY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Protect the part of a position no entry holds: adopt it as an entry with its own SL and TP.

    Nothing is sent for the position itself: only the stop-loss (and take-profit) for the part adopted.

    Exit 0: adopted and protected (or handed to `bot run`).

    Exit 1: refused (nothing unclaimed, a filter, the account's limits); one line says why.

    Exit 3: adopted, its legs not placed yet and no daemon to place them: start `bot run`.
    """
    import asyncio

    from bot_cli.ops import adopt as adopting

    obj: AppContext = ctx.obj
    ask = adopting.Adoption(
        symbol.upper(), parse_decimal("--sl", sl), None if tp is None else parse_decimal("--tp", tp),
        None if position_side is None else position_side.value,
        None if quantity is None else parse_decimal("--quantity", quantity),
    )  # fmt: skip
    names = adopting.Names("--position-side", "--quantity")
    _show(asyncio.run(adopting.adopt(obj.config, obj.state_dir, ask, names=names)), as_json)


def _show(r: Result, as_json: bool) -> None:
    p = r.pending
    if as_json:
        print_json(_document(r))
    else:
        typer.echo(f"entry {p.pending_id}: {p.status.value} - {_what(p)} [by {r.sent_by}]")
    end(r.code, r.note)


def _what(p: Pending) -> str:
    s = p.spec
    tp = "" if s.take_profit is None else f", take-profit {s.take_profit}"
    side = "" if s.position_side.value == "BOTH" else f" ({s.position_side.value})"
    return f"adopted {s.side.value.lower()} {s.quantity} {s.symbol}{side}, stop-loss {s.stop_loss}{tp}"


def _document(r: Result) -> dict[str, object]:
    p, s = r.pending, r.pending.spec
    from bot_cli.cli.history import legs_json

    legs = legs_json(p)
    return {
        "id": p.pending_id, "state": p.status.value, "reason": p.reason, "symbol": s.symbol,
        "side": s.side.value, "position_side": s.position_side.value, "quantity": str(s.quantity),
        "stop_loss": str(s.stop_loss), "take_profit": None if s.take_profit is None else str(s.take_profit),
        "legs": legs, "sent_by": r.sent_by, "note": r.note or None,
    }  # fmt: skip
