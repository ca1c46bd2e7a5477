"""`bot enter`: an operator entry, checked, persisted before it is sent, never left unwatched.

Every order the entry will need (the entry, its stop-loss and take-profit) is checked against
the symbol's filters and the mark price first (core.checks), then against the account's
open-order limits (core.admission: 200 conditional orders, MAX_NUM_ORDERS on the symbol): a
refusal is exit 1 and one line, with nothing stored or sent.

With a daemon running, the entry is written as REQUESTED and the daemon sends and protects
it (one process sends per state dir); if the daemon goes away before taking it, exit 1 says
so. With no daemon, this process sends it and then follows a MARKET entry (a LIMIT one with
--wait) until it is protected. The flow is shared with the Python API (``bot_cli.ops.enter``).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import end, print_json
from bot_cli.core.model import Trail
from bot_cli.errors import UsageError


if TYPE_CHECKING:
    from bot_cli.ops.enter import Result


# Re-exported from the shared flow on first use, so that importing the CLI stays light.
_FROM_FLOW = frozenset({"EXIT_NOT_PROTECTED", "EXIT_UNWATCHED", "Result", "THIS_PROCESS"})
FOLLOW_S = 15.0  # = ops.enter.FOLLOW_S, spelled out for the option's default


def __getattr__(name: str) -> Any:
    if name in _FROM_FLOW:
        from bot_cli.ops import enter as flow

        return getattr(flow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SideArg(StrEnum):
    buy = "buy"
    sell = "sell"


class PositionSideArg(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"


_PRICE_HELP = "Limit price; omit for a market entry."
_PS_HELP = "LONG or SHORT (hedge mode only)."
_WAIT_HELP = "No daemon: follow a limit entry until it is protected."
_TIMEOUT_HELP = "Seconds to follow an entry until it is protected (no daemon)."
_TP_HELP = ("Take-profit trigger price. Repeat it to take profit in steps: PRICE:PCT% for each level but"
            " the last, which takes the rest, e.g. --tp 66000:50% --tp 68000.")
_TRAIL_HELP = ("A trailing stop beside the stop-loss (Binance TRAILING_STOP_MARKET): it follows the best price by"
               " PCT percent (0.1 to 20), on the exchange, even while the bot is down.")
_ACTIVATE_HELP = "With --trail: the price at which the trailing stop starts to trail (default: at once)."


def enter(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    side: Annotated[SideArg, typer.Argument(help="buy or sell.")],
    quantity: Annotated[str, typer.Argument(help="Quantity in the base asset.")],
    sl: Annotated[str, typer.Option("--sl", help="Stop-loss trigger price (required).")],
    price: Annotated[str | None, typer.Option("--price", help=_PRICE_HELP)] = None,
    tp: Annotated[list[str] | None, typer.Option("--tp", metavar="PRICE[:PCT%]", help=_TP_HELP)] = None,
    trail: Annotated[str | None, typer.Option("--trail", metavar="PCT", help=_TRAIL_HELP)] = None,
    activate: Annotated[str | None, typer.Option("--activate", metavar="PRICE", help=_ACTIVATE_HELP)] = None,
    position_side: Annotated[
        PositionSideArg | None, typer.Option("--position-side", case_sensitive=False, help=_PS_HELP)
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.0, help=_TIMEOUT_HELP)] = FOLLOW_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check an entry against the filters and the account's order limits, persist it, then place it.

    With no daemon, a market entry (a limit one with --wait) is followed until it is protected.

    Exit 0: placed (protected, or handed to `bot run`).

    Exit 1: refused or not placed; one line says why.

    Exit 3: no daemon, not protected within --timeout: start `bot run`.

    Exit 4: no daemon, a limit entry without --wait: nothing protects a fill until `bot run`.
    """
    import asyncio

    from bot_cli.ops.checks import Order

    obj: AppContext = ctx.obj
    levels, single = parse_take_profits(tp or [])
    order = Order(
        symbol.upper(), side.value, parse_decimal("quantity", quantity),
        None if price is None else parse_decimal("--price", price),
        parse_decimal("--sl", sl), single,
        None if position_side is None else position_side.value, tp_levels=levels,
        trail=parse_trail(trail, activate),
    )  # fmt: skip
    from bot_cli.ops import enter as entering

    entered = entering.enter(obj.config, obj.state_dir, order, wait=wait, timeout=timeout, ps_name="--position-side")
    _show(asyncio.run(entered), as_json)


def parse_take_profits(
    given: list[str],
) -> tuple[tuple[tuple[Decimal, Decimal | None], ...], Decimal | None]:
    """``--tp`` once: a take-profit price; repeated: levels ``PRICE:PCT%`` (the last ``PRICE``)."""
    if len(given) == 1 and ":" not in given[0]:
        return (), parse_decimal("--tp", given[0])
    levels = []
    for text in given:
        price_text, _, pct_text = text.partition(":")
        pct = None
        if pct_text:
            if not pct_text.endswith("%"):
                raise UsageError(f"--tp {text}: a level's share is a percent of the quantity, e.g. {price_text}:50%")
            pct = parse_decimal(f"--tp {text}'s percent", pct_text.removesuffix("%"))
        levels.append((parse_decimal("--tp", price_text), pct))
    if len(levels) == 1:
        raise UsageError(f"--tp {given[0]}: a single take-profit takes the whole quantity; give it without a percent")
    return tuple(levels), None


def parse_trail(trail: str | None, activate: str | None) -> Trail | None:
    if trail is None:
        if activate is not None:
            raise UsageError("--activate is the trailing stop's: give --trail PCT with it")
        return None
    return Trail(parse_decimal("--trail", trail), None if activate is None else parse_decimal("--activate", activate))


def parse_decimal(name: str, text: str) -> Decimal:
    from bot_cli.core.numbers import NotANumber, positive

    try:
        return positive(name, text)
    except NotANumber as err:
        raise UsageError(str(err)) from None


def _show(r: Result, as_json: bool) -> None:
    from bot_cli.core.ids import client_id
    from bot_cli.core.model import Leg

    p = r.pending
    cid = client_id(p.pending_id, Leg.ENTRY)
    if as_json:
        print_json({
            "id": p.pending_id, "entry_client_id": cid, "state": p.status.value, "reason": p.reason,
            "sent_by": r.sent_by, "filled_quantity": str(p.filled_qty), "note": r.note or None,
        })  # fmt: skip
    else:
        reason = f" - {p.reason}" if p.reason else ""
        typer.echo(f"entry {p.pending_id} ({cid}): {p.status.value}{reason} [sent by {r.sent_by}]")
    end(r.code, r.note)
