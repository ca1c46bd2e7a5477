"""`bot amend`: move an entry's stop-loss and take-profit, with the promise kept through the move.

Binance cannot modify an algo order: every move is a new leg and a cancel. The new levels are
checked first, as an entry's are (PRICE_FILTER; a share held now: the stop-loss below the mark
for a long, the take-profit above, so neither triggers at once; an entry order still working:
on their sides of its price); a refusal changes nothing. Then the move is an operator event of
the lifecycle (``core.events.OperatorAmend``), through the daemon or alone as `bot cancel` is
(``ops.exit``): the new levels are written to the journal before anything is sent, the new leg
is placed before the old one is cancelled (alone on its position; stacked, the old one goes
first, as two stops for one share could take another entry's), and a crash at any point
converges to exactly the new levels.

``--breakeven`` moves the stop-loss to the entry's average fill price plus the round trip's
fees, ``[protection] breakeven_fee_pct`` (default 0.1 %: Binance's 0.05 % taker fee on the
entry and on the stop's market exit), rounded to the tick away from a loss: a long's stop at
avg x 1.001 rounded up, a short's at avg x 0.999 rounded down.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from bot_cli.core.checks import Filters, check_levels
from bot_cli.core.events import OperatorAmend
from bot_cli.core.model import Pending, Side, Trail
from bot_cli.errors import BotError, UsageError
from bot_cli.ops import market
from bot_cli.ops.exit import AMEND, FOLLOW_S, Outcome, amend_refusal, exit_entries
from bot_cli.ops.journal import read_journal, why_not


if TYPE_CHECKING:
    from bot_cli.config import Config


@dataclass(frozen=True, slots=True)
class Amendment:
    stop_loss: Decimal | None = None
    take_profits: tuple[Decimal, ...] = ()  # one price, or one per take-profit level, in order
    breakeven: bool = False
    trail: Trail | None = None  # add a trailing stop, or change how it trails


def breakeven(p: Pending, fee_pct: Decimal, tick: Decimal) -> Decimal:
    """The entry's average fill price plus the round trip's fees, on the tick away from a loss."""
    if p.avg_price is None or p.filled_qty <= 0:
        raise BotError(f"entry {p.pending_id} has nothing filled: there is no average price to move its stop to")
    long = p.spec.side is Side.BUY
    price = p.avg_price * (1 + fee_pct / 100 if long else 1 - fee_pct / 100)
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if long else ROUND_FLOOR)
    return steps * tick


class LevelRefused(BotError):
    """A new level the checks refuse (``subject``: stop-loss, take-profit, take-profit level N)."""

    def __init__(self, message: str, subject: str) -> None:
        super().__init__(message)
        self.subject = subject


def decide(p: Pending, ask: Amendment, filters: Filters, mark: Decimal, fee_pct: Decimal) -> OperatorAmend:
    """The move, checked against the filters and the mark; LevelRefused (one line) or UsageError
    when refused: nothing changes."""
    levels, tps = p.spec.tp_levels, ask.take_profits
    if levels and tps and len(tps) != len(levels):
        raise UsageError(f"entry {p.pending_id} takes profit in {len(levels)} levels: give {len(levels)}"
                         " --tp prices, in order")  # fmt: skip
    if not levels and len(tps) > 1:
        raise UsageError(f"entry {p.pending_id} has one take-profit: give one --tp")
    stop = breakeven(p, fee_pct, filters.tick_size) if ask.breakeven else ask.stop_loss
    move = OperatorAmend(
        p.pending_id, stop_loss=stop, take_profit=tps[0] if tps and not levels else None,
        tp_levels=tps if levels else (), trail=ask.trail,
    )  # fmt: skip
    violation = check_levels(move.moved(p.spec), filters, mark, holding=p.share > 0, working=not p.entry_done)
    if violation is not None:
        raise LevelRefused(f"not amended: {violation.message}", violation.subject)
    return move


def _entry(state_dir: Path, pending_id: str) -> Pending:
    """The entry as the journal has it; BotError when there is none, or it cannot move now."""
    from bot_cli.state_store import PendingEntryStore

    if not state_dir.is_dir():
        raise BotError(f"no pending entry {pending_id} in {state_dir}: it has no journal yet")
    with PendingEntryStore(state_dir) as store:
        entries, _ = read_journal(store)
    p: Pending | None = entries.get(pending_id)  # type: ignore[call-overload]
    if p is None:
        raise BotError(why_not(state_dir, pending_id))
    if (refused := amend_refusal(p)) is not None:
        raise BotError(refused)
    return p


async def amend(cfg: Config, state_dir: Path, pending_id: str, ask: Amendment, *, timeout: float = FOLLOW_S,
                fee_pct: Decimal = Decimal("0.1")) -> Outcome:  # fmt: skip
    """Check the new levels against the filters and the mark, then move them; BotError (nothing
    changed) when refused."""
    from bot_cli.connect import connect
    from bot_cli.state_store import lock_holder

    if ask.breakeven and ask.stop_loss is not None:
        raise UsageError("--breakeven and --sl both move the stop-loss: give one")
    if not (ask.breakeven or ask.stop_loss is not None or ask.take_profits or ask.trail is not None):
        raise UsageError("nothing to amend: give --sl PRICE, --tp PRICE, --breakeven or --trail PCT")
    p = _entry(state_dir, pending_id)
    symbol = p.spec.symbol
    async with connect(cfg, state_dir, light=lock_holder(state_dir) is not None) as conn:
        info = await market.info_for(conn.rest, cfg.rest_url(), state_dir, symbol)
        filters = info.filters(symbol)
        if filters is None:
            raise BotError(f"{symbol} is not listed by the {conn.venue_name} venue's exchangeInfo")
        mark = await conn.rest.mark_price(symbol)
    market.keep_info(state_dir, info)
    levels = decide(p, ask, filters, mark, fee_pct)
    [outcome] = await exit_entries(cfg, state_dir, pending_id, verb=AMEND, timeout=timeout, levels=levels)
    return outcome
