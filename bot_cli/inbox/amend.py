"""An amend signal: the JSON body of ``POST /amend``, moving an entry's levels as `bot amend` does.

    {"id": "bc0mi3k2x7a1b2c",
     "sl": "95000" | "breakeven": true,          at most one; with "tp", at least one of the three
     "tp": "99000"}

Checked as `bot amend` checks (the tick; for a share held now, each level on its side of the
mark; an entry order still working, on its side of the entry price), then left for the daemon
as an amend request (``store.requests``): 202 once it is durable. The daemon writes the new
levels to the journal before it sends anything, and the new leg is live before the old one goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot_cli.core.checks import Filters
from bot_cli.core.events import OperatorAmend
from bot_cli.core.model import Pending
from bot_cli.errors import BotError
from bot_cli.inbox.signals import Refused, _number
from bot_cli.ops.amend import Amendment, LevelRefused, decide


FIELDS = frozenset({"id", "sl", "tp", "breakeven", "secret"})


@dataclass(frozen=True, slots=True)
class AmendSignal:
    pending_id: str
    sl: Decimal | None
    tp: Decimal | None
    breakeven: bool


def parse_amend(obj: dict[str, Any]) -> AmendSignal:
    """Every field checked for type and presence; 422 naming the first one at fault."""
    unknown = sorted(set(obj) - FIELDS)
    if unknown:
        raise Refused(422, f"unknown field {unknown[0]!r}; known: {', '.join(sorted(FIELDS))}", unknown[0])
    pid = obj.get("id")
    if not isinstance(pid, str) or not pid:
        raise Refused(422, "id must be the entry's id, a string (see `bot pending list`)", "id")
    even = obj.get("breakeven", False)
    if not isinstance(even, bool):
        raise Refused(422, f"breakeven must be true or false, not {even!r}", "breakeven")
    sl, tp = _number(obj, "sl"), _number(obj, "tp")
    if even and sl is not None:
        raise Refused(422, "sl and breakeven both move the stop-loss: give one", "sl")
    if sl is None and tp is None and not even:
        raise Refused(422, "nothing to amend: give sl, tp or breakeven", "sl")
    return AmendSignal(pid, sl, tp, even)


def levels_for(s: AmendSignal, p: Pending, filters: Filters, mark: Decimal, fee_pct: Decimal) -> OperatorAmend:
    """The new levels, checked as `bot amend` checks them; 422 with its line when refused."""
    ask = Amendment(s.sl, () if s.tp is None else (s.tp,), s.breakeven)
    try:
        return decide(p, ask, filters, mark, fee_pct)
    except LevelRefused as err:
        raise Refused(422, str(err), "tp" if err.subject.startswith("take-profit") else "sl") from None
    except BotError as err:  # nothing filled to break even on; a take-profit count that does not fit
        raise Refused(422, str(err), "breakeven" if s.breakeven else "tp") from None
