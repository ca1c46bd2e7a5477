"""DESIGN.md's invariants, checked through the exchange's own view and the state dir.

1 protected: per symbol, the live SL (and TP) quantities add up to the position, and no
  entry's live legs exceed what that entry holds; 2 never twice; 3 nothing lost;
4 converged; 5 no orphan; 7 no entry's orders executed more than it filled. The sixth
(every wait has a wake-up) is checked while the engine runs: ``check_liveness``.

Stacked entries (``stacked``) may hold a kind of leg in pieces: never twice then means the
pieces add up to no more than the share (``over_covered``, checked after every command too).
Where a scenario makes an entry's legs execute more than it filled (the missing OCO,
``over_executes``), the extra is taken from the other entries on the position by the share
rule (the newest first), and the journal's shares must add up to the position exactly.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from bot_cli.core.ids import parse_client_id
from bot_cli.core.model import AlgoStatus, Leg, Pending, PositionSide
from bot_cli.core.protect import at_rest
from bot_cli.ops.journal import decode_record
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeExchange


SETTLED = {"OPEN", "PARTIALLY_FILLED", "PROTECTED"}


def entry_shares(venue: FakeExchange, *, settle_overdraft: bool = False) -> dict[str, Decimal]:
    """Each entry's fills minus what its own legs and closes executed, from the venue alone;
    with ``settle_overdraft``, what an entry executed beyond its fills taken from the others
    (one symbol, one side: the newest first)."""
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for cid, order in venue.orders.items():
        parsed = parse_client_id(cid)
        if parsed is not None and parsed.leg is Leg.ENTRY:
            filled[parsed.pending_id] += order.filled_qty
    for cid, qty in venue.executed.items():
        parsed = parse_client_id(cid)
        if parsed is not None:
            filled[parsed.pending_id] -= qty
    if settle_overdraft:
        for pid in [p for p, q in filled.items() if q < 0]:
            debt = -filled[pid]
            filled[pid] = Decimal(0)
            for other in sorted((p for p in filled if p != pid), reverse=True):
                paid = min(debt, filled[other])
                filled[other] -= paid
                debt -= paid
    return dict(filled)


def over_covered(venue: FakeExchange) -> list[str]:
    """Entries whose live legs of a kind add up to more than their share (venue's view). The
    siblings of a leg that fired (placed no later than it) are the missing OCO's moment, not a
    resize's: they are left out until the bot has cancelled them."""
    shares = entry_shares(venue, settle_overdraft=True)
    fired: dict[str, int] = defaultdict(int)
    for cid, algo in venue.algos.items():
        parsed = parse_client_id(cid)
        if parsed is not None and algo.report.status.fired:
            fired[parsed.pending_id] = max(fired[parsed.pending_id], parsed.gen)
    live: dict[tuple[str, Leg], Decimal] = defaultdict(Decimal)
    for cid, algo in venue.algos.items():
        parsed = parse_client_id(cid)
        if parsed is not None and algo.report.status is AlgoStatus.NEW and parsed.gen > fired[parsed.pending_id]:
            live[(parsed.pending_id, parsed.leg)] += algo.report.quantity  # take-profit levels add up
    return [
        f"1: {pid} holds {shares.get(pid, Decimal(0))} but its live {leg.name} legs add up to {qty}"
        for (pid, leg), qty in live.items() if qty > shares.get(pid, Decimal(0))
    ]


def check_invariants(
    venue: FakeExchange, store: PendingEntryStore, created: set[str], legs: int, *, parked: bool = False,
    stacked: bool = False, over_executes: bool = False,
) -> list[str]:
    """Every broken invariant, in words; an empty list means all of them hold.

    parked: the scenario ends with an entry for the operator (NEEDS_ATTENTION); then it is
    allowed to rest there, but its entry order must not be left working."""
    problems: list[str] = []
    journal = store.load_all()
    archived = {a["id"] for a in store.archived()}
    shares = entry_shares(venue, settle_overdraft=over_executes)
    # A parked entry's stop was refused for good: unprotected by design, and said so loudly.
    found = _protected_and_no_orphan(venue, shares, legs, stacked)
    problems += [x for x in found if not (parked and x.startswith("1:"))]
    problems += _shares_add_up(venue, journal) if over_executes else []
    for cid, order in venue.orders.items():
        parsed = parse_client_id(cid)
        if parsed is None or parsed.leg is not Leg.ENTRY:
            continue
        if venue.entries_placed[cid] > 1:
            problems.append(f"2: entry {cid} sent {venue.entries_placed[cid]} times")
        if order.status.value in ("NEW", "PARTIALLY_FILLED") and parsed.pending_id not in journal:
            problems.append(f"3: {parsed.pending_id} may be live on the exchange but is not in the journal")
    for cid, algo in venue.algos.items():
        parsed = parse_client_id(cid)
        if parsed and algo.report.status is AlgoStatus.NEW and parsed.pending_id not in journal:
            problems.append(f"5: {cid} is live but its entry left the journal")
    for pid in created:
        if pid not in journal and pid not in archived:
            problems.append(f"3: {pid} is neither in the journal nor in the archive")
    for pid, record in journal.items():
        if record["status"] == "NEEDS_ATTENTION" and parked:
            order = venue.orders.get(f"{pid}-e")  # type: ignore[call-overload]
            if order is not None and order.status.value in ("NEW", "PARTIALLY_FILLED"):
                problems.append(f"4: {pid} needs attention but its entry order is still working")
        elif record["status"] not in SETTLED:
            problems.append(f"4: {pid} did not converge: {record['status']} {record['reason']}")
    problems += [f"7: {pid} executed {-qty} more than it filled" for pid, qty in shares.items() if qty < 0]
    problems += _at_levels(venue, journal)
    return problems


def _at_levels(venue: FakeExchange, journal: dict[str, dict[str, object]]) -> list[str]:
    """9: every live leg triggers where its entry's record asks (an operator may have moved it):
    a move converges to exactly the new levels, never to the old, never to both."""
    problems = []
    for cid, algo in venue.algos.items():
        parsed = parse_client_id(cid)
        if parsed is None or algo.report.status is not AlgoStatus.NEW or parsed.pending_id not in journal:
            continue
        p = decode_record(parsed.pending_id, journal[parsed.pending_id])
        if isinstance(p, Pending) and algo.report.trigger_price != p.spec.trigger(parsed.leg, parsed.level):
            want = p.spec.trigger(parsed.leg, parsed.level)
            problems.append(f"9: {cid} is live at {algo.report.trigger_price}, its entry asks {want}")
    return problems


def _shares_add_up(venue: FakeExchange, journal: dict[str, dict[str, object]]) -> list[str]:
    held: dict[tuple[str, PositionSide], Decimal] = defaultdict(Decimal)
    for key, record in journal.items():
        p = decode_record(key, record)
        if isinstance(p, Pending):
            held[p.key] += p.share
    return [
        f"8: the journal's shares of {key[0]} add up to {held[key]}, the position is {amount}"
        for key, amount in venue.position.items() if held[key] != abs(amount)
    ]


def _protected_and_no_orphan(
    venue: FakeExchange, shares: dict[str, Decimal], legs: int, stacked: bool
) -> list[str]:
    problems: list[str] = []
    live: dict[tuple[str, Leg, int], list[Decimal]] = defaultdict(list)
    by_symbol: dict[tuple[str, Leg], Decimal] = defaultdict(Decimal)
    for cid, algo in venue.algos.items():
        parsed = parse_client_id(cid)
        if parsed is None or algo.report.status is not AlgoStatus.NEW:
            continue
        live[(parsed.pending_id, parsed.leg, parsed.level)].append(algo.report.quantity)
        by_symbol[(algo.report.symbol, parsed.leg)] += algo.report.quantity
    for (pid, leg, _), qtys in live.items():
        if len(qtys) > 1 and not stacked:
            problems.append(f"2: {len(qtys)} live {leg.name} for {pid}: {[str(q) for q in qtys]}")
        if shares.get(pid, Decimal(0)) <= 0:
            problems.append(f"5: {pid} holds nothing but its {leg.name} {[str(q) for q in qtys]} is live")
        elif sum(qtys) > shares[pid]:
            problems.append(f"1: {pid} holds {shares[pid]} but its live {leg.name} is {sum(qtys)}")
    for (symbol, side), amount in venue.position.items():
        problems.extend(
            f"1: {symbol} position {amount}, live {leg.name} total {by_symbol[(symbol, leg)]}"
            for leg in (Leg.SL, Leg.TP, Leg.TRAIL)[:legs]
            if side is PositionSide.BOTH and by_symbol[(symbol, leg)] != abs(amount)
        )
    return problems


def check_liveness(engine: ExecutionEngine) -> list[str]:
    """6: every live entry that is not at rest has a pending wake-up."""
    return [
        f"6: {pid} is {p.status.name}, not at rest, and nothing will wake it"
        for pid, p in engine.state.items()
        if not at_rest(p) and not engine.timers.get(pid)
    ]


def total_live(venue: FakeExchange) -> Decimal:
    return sum((a.report.quantity for a in venue.algos.values() if a.report.status.value == "NEW"), Decimal(0))
