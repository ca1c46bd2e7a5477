"""Is it safe for an operator to make the bot forget an entry? Pure: decided from the entry alone.

Dropping archives the entry: nothing follows its orders any more. So a drop is unsafe while
anything the entry sent may still be working on the exchange: the entry order, a protective
leg (live, being sent, or being canceled), or a market close whose outcome is not known.
The exchange itself is checked elsewhere (ops.drop); this is what the journal knows.
"""

from __future__ import annotations

from bot_cli.core.ids import client_id
from bot_cli.core.model import ENTRY_WORKING, Leg, LegState, Pending


__all__ = ["drop_blocker", "still_live"]

_LEG_NAMES = {Leg.SL: "stop-loss", Leg.TP: "take-profit"}


def still_live(p: Pending) -> tuple[str, ...]:
    """What of this entry may still be working on the exchange, in words; empty when nothing."""
    live: list[str] = []
    if p.status in ENTRY_WORKING:
        live.append(f"entry order {client_id(p.pending_id, Leg.ENTRY)} ({p.status.value})")
    live.extend(
        f"{_LEG_NAMES.get(x.leg, x.leg.name)} {x.client_id} ({x.state.value})" for x in p.protections
    )
    if p.close is not None and p.close.state is not LegState.LIVE:
        live.append(f"market close {p.close.client_id} ({p.close.state.value})")
    return tuple(live)


def drop_blocker(p: Pending) -> str | None:
    """None if dropping `p` leaves nothing working on the exchange; otherwise why not, one line."""
    live = still_live(p)
    if not live:
        return None
    them = "them" if len(live) > 1 else "it"
    return (
        f"{p.pending_id}: {', '.join(live)} may still be working on the exchange and nothing "
        f"would follow {them} once dropped"
    )
