"""The four invariants of DESIGN.md, checked through the exchange's own view and the state dir."""

from __future__ import annotations

from decimal import Decimal

from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import Leg, PositionSide, Status
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeExchange


SETTLED = {Status.OPEN.value, Status.PARTIALLY_FILLED.value}


def check_invariants(venue: FakeExchange, store: PendingEntryStore, created: set[str], legs: int) -> list[str]:
    """Every broken invariant, in words; an empty list means all four hold."""
    problems: list[str] = []
    journal = store.load_all()
    archived = {a["id"] for a in store.archived()}
    for cid, order in venue.orders.items():
        parsed = parse_client_id(cid)
        if parsed is None or parsed.leg is not Leg.ENTRY:
            continue
        pid = parsed.pending_id
        if venue.entries_placed[cid] > 1:
            problems.append(f"2: entry {cid} sent {venue.entries_placed[cid]} times")
        held = venue.position[(order.symbol, PositionSide.BOTH)]
        for leg in (Leg.SL, Leg.TP)[:legs]:
            live = venue.live_protections(pid, leg)
            if len(live) > 1:
                problems.append(f"2: {len(live)} live {leg.name} for {pid}")
            if order.filled_qty > 0 and held != 0:
                if len(live) != 1 or live[0].quantity != order.filled_qty:
                    qty = [str(x.quantity) for x in live]
                    problems.append(f"1: {pid} filled {order.filled_qty}, live {leg.name} {qty}")
            elif held == 0 and live:
                problems.append(f"1: {pid} is flat but {leg.name} is still live")
        if order.status.value in ("NEW", "PARTIALLY_FILLED") and pid not in journal:
            problems.append(f"3: {pid} may be live on the exchange but is not in the journal")
    for pid in created:
        if pid not in journal and pid not in archived:
            problems.append(f"3: {pid} is neither in the journal nor in the archive")
    for pid, record in journal.items():
        if record["status"] not in SETTLED:
            problems.append(f"4: {pid} did not converge: {record['status']} {record['reason']}")
    return problems


def total_live(venue: FakeExchange) -> Decimal:
    return sum((a.report.quantity for a in venue.algos.values() if a.report.status.value == "NEW"), Decimal(0))
