"""Operator operations as plain functions over explicit dependencies; they return results.

The CLI renders what these return; the daemon and tests call them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from bot_cli.errors import BotError, UsageError
from bot_cli.state_store import JOURNAL_NAME, PendingEntryStore, UnknownEntry
from bot_cli.store.listing import listing


if TYPE_CHECKING:
    from bot_cli.core.commands import ArchivePending, Command
    from bot_cli.core.model import EntrySpec, Pending, PendingId
    from bot_cli.core.reconcile import Plan
    from bot_cli.runtime.engine import ExecutionEngine, Recovery

UNREADABLE = "UNREADABLE"  # the state shown for a journal record the bot cannot decode


# -- the journal as the operator sees it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A journal record the bot cannot decode: the daemon skips it and follows none of its orders."""

    key: str
    reason: str

    @property
    def advice(self) -> str:
        return f"inspect it in {JOURNAL_NAME}, then `bot pending drop --force {self.key}`"


def decode_record(key: str, record: dict[str, Any]) -> Pending | Unreadable:
    """The entry a record holds, or why the bot cannot read it (what `bot run` skips)."""
    from bot_cli.store.codec import CorruptRecord, decode

    if "rv" not in record:
        return Unreadable(key, "no record version 'rv': a plain context, not an entry record bot_cli wrote")
    try:
        return decode(record)
    except (CorruptRecord, ArithmeticError, RecursionError) as err:  # codec lets a few slip out
        return Unreadable(key, str(err) or type(err).__name__)


def read_journal(store: PendingEntryStore) -> tuple[dict[PendingId, Pending], dict[str, Unreadable]]:
    """Every journal record: the entries decoded, and the records the bot cannot read."""
    from bot_cli.core.model import PendingId

    entries: dict[PendingId, Pending] = {}
    unreadable: dict[str, Unreadable] = {}
    for key, record in store.load_all().items():
        found = decode_record(key, record)
        if isinstance(found, Unreadable):
            unreadable[key] = found
        else:
            entries[PendingId(key)] = found
    return entries, unreadable


def find_unreadable(store: PendingEntryStore) -> list[Unreadable]:
    """The records the bot cannot decode; decodes only those the quick check is unsure of."""
    found = (decode_record(k, r) for k, r in store.load_all().items() if listing(r) is None)
    return [u for u in found if isinstance(u, Unreadable)]


class PendingRow(NamedTuple):
    """One line of `bot pending list`; values as the journal holds them (decimal strings).

    A NamedTuple, not a frozen dataclass: 10,000 of them build in a third of the time."""

    pending_id: str
    symbol: str
    side: str
    quantity: str
    filled: str
    status: str
    stop_loss: str
    take_profit: str | None
    created_at: int | None
    reason: str

    @classmethod
    def of(cls, p: Pending) -> PendingRow:
        s, tp = p.spec, p.spec.take_profit
        return cls(p.pending_id, s.symbol, s.side.value, str(s.quantity), str(p.filled_qty), p.status.value,
                   str(s.stop_loss), None if tp is None else str(tp), p.created_at, p.reason)

    @classmethod
    def unreadable(cls, u: Unreadable, record: dict[str, Any]) -> PendingRow:
        """What a person can still make out of the record; "?" for the rest."""
        def text(key: str) -> str:
            value = record.get(key)
            return value if isinstance(value, str) else "?"

        created, tp = record.get("created_at"), record.get("take_profit")
        return cls(u.key, text("symbol"), text("side"), text("quantity"), text("filled_qty"), UNREADABLE,
                   text("stop_loss"), tp if isinstance(tp, str) else None,
                   created if type(created) is int else None, u.reason)

    @property
    def entry_client_id(self) -> str | None:
        return None if self.status == UNREADABLE else f"{self.pending_id}-e"  # core.ids.client_id(pid, Leg.ENTRY)

    def age_s(self, now_ms: int) -> float | None:
        return None if self.created_at is None else max(0.0, (now_ms - self.created_at) / 1000)

    def as_json(self, now_ms: int) -> dict[str, Any]:
        age = self.age_s(now_ms)
        return {
            "id": self.pending_id, "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
            "filled_quantity": self.filled, "state": self.status, "entry_client_id": self.entry_client_id,
            "stop_loss": self.stop_loss, "take_profit": self.take_profit,
            "age_seconds": None if age is None else round(age, 1), "reason": self.reason,
        }


def list_pending(store: PendingEntryStore) -> tuple[list[PendingRow], list[str]]:
    """The journal's entries as display rows by id, unreadable ones included, and warnings."""
    rows: list[PendingRow] = []
    problems = []
    for key, record in store.load_all().items():
        fields = listing(record)  # quick, and sure; otherwise decode to know
        if fields is not None:
            rows.append(PendingRow(*fields))
            continue
        found = decode_record(key, record)
        if isinstance(found, Unreadable):
            rows.append(PendingRow.unreadable(found, record))
            problems.append(f"journal record {key} cannot be read: {found.reason}; {found.advice}")
        else:
            rows.append(PendingRow.of(found))
    rows.sort(key=lambda r: r.pending_id)
    return rows, [*store.warnings, *problems]


# -- bot pending drop ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DropPlan:
    """The named journal records, decoded or not, and why forgetting each may be unsafe."""

    entries: dict[PendingId, Pending]
    unreadable: dict[str, Unreadable]

    @property
    def ids(self) -> list[str]:
        return [*self.entries, *self.unreadable]

    def blockers(self) -> list[str]:
        from bot_cli.core.drop import drop_blocker

        found = [b for p in self.entries.values() if (b := drop_blocker(p)) is not None]
        found += [f"{u.key}: its record cannot be read ({u.reason}), so what it left on the exchange "
                  "is unknown" for u in self.unreadable.values()]
        return found


class DropRefused(BotError):
    """Dropping would leave orders working on the exchange with nothing following them."""

    def __init__(self, blockers: list[str]) -> None:
        super().__init__(f"refusing to drop: {'; '.join(blockers)} (use --force to drop anyway)")


@dataclass(frozen=True, slots=True)
class DropResult:
    dropped: list[str]
    left_live: dict[str, str]  # id -> what may still work on the exchange, in words
    gone: list[str]  # archived meanwhile by another process


def plan_drop(store: PendingEntryStore, ids: list[str]) -> DropPlan:
    """The named records, or a UsageError naming the unknown ids (nothing changed)."""
    entries, unreadable = read_journal(store)
    unknown = [i for i in ids if i not in entries and i not in unreadable]
    if unknown:
        raise UsageError(
            f"no pending entry {', '.join(unknown)} in {store.path}: see `bot pending list` for the ids"
        )
    return DropPlan({p: e for p, e in entries.items() if p in ids}, {k: u for k, u in unreadable.items() if k in ids})


def drop_pending(
    store: PendingEntryStore, ids: list[str], *, now_ms: int, reason: str = "dropped", force: bool = False
) -> DropResult:
    """Archive the entries through the core's OperatorDrop; refuses unsafe ones unless forced.

    Reads the journal afresh, so what was checked is what is dropped; every entry is stepped
    before anything is written. An unreadable record is archived as it is (only when forced).
    """
    from bot_cli.core.drop import still_live

    plan = plan_drop(store, ids)
    if not force and (blockers := plan.blockers()):
        raise DropRefused(blockers)
    archives = [_drop_command(p, now_ms, reason) for p in plan.entries.values()]
    gone: list[str] = [
        c.pending.pending_id for c in archives if not _archive(store, c.pending.pending_id, c.reason, c.pending)
    ]
    gone += [key for key in plan.unreadable if not _archive(store, key, reason, None)]
    left: dict[str, str] = {pid: ", ".join(live) for pid, p in plan.entries.items() if (live := still_live(p))}
    left.update(dict.fromkeys(plan.unreadable, "the orders of its unreadable record, if any (never checked)"))
    dropped = [i for i in plan.ids if i not in gone]
    return DropResult(dropped, {i: left[i] for i in dropped if i in left}, gone)


def _drop_command(p: Pending, now_ms: int, reason: str) -> ArchivePending:
    """The ArchivePending the lifecycle answers OperatorDrop with; anything else is refused."""
    from bot_cli.core.commands import ArchivePending
    from bot_cli.core.engine import step
    from bot_cli.core.errors import InvalidTransition
    from bot_cli.core.events import OperatorDrop

    try:
        _, cmds = step(p, OperatorDrop(p.pending_id, reason), now_ms)
    except InvalidTransition as err:
        raise BotError(f"{err}: nothing was dropped") from None
    archives = [c for c in cmds if isinstance(c, ArchivePending)]
    others = [type(c).__name__ for c in cmds if not isinstance(c, ArchivePending)]
    if others or len(archives) != 1:
        raise BotError(f"{p.pending_id}: a drop asks for {', '.join(others) or 'no archive'}, which "
                       "`bot pending drop` cannot carry out: nothing was dropped")
    return archives[0]


def _archive(store: PendingEntryStore, key: str, reason: str, p: Pending | None) -> bool:
    """Execute one ArchivePending (or archive a raw record); False if it had left already."""
    from bot_cli.store.codec import encode

    try:
        store.remove(key, reason, record=None if p is None else encode(p))
    except UnknownEntry:
        return False
    return True


# -- bot recover --------------------------------------------------------------------------


def plan_key(plan: Plan) -> tuple[Any, ...]:
    """What a plan does, without the times in it: equal for two looks at an unchanged exchange."""
    return tuple(
        (r.pending_id, r.local, r.exchange, r.result, tuple(_timeless(c) for c in r.commands))
        for r in plan.rows
    )


def _timeless(cmd: Command) -> object:
    from bot_cli.core import commands as cm

    if isinstance(cmd, cm.PersistPending):
        return ("persist", cmd.pending.status, cmd.new)
    if isinstance(cmd, cm.ArchivePending):
        return ("archive", cmd.pending.status, cmd.reason)
    if isinstance(cmd, cm.ScheduleCheck):
        return ("check", cmd.pending_id)
    return cmd  # sends, queries and alerts carry no time


async def confirm_fresh(
    engine: ExecutionEngine, shown: Recovery, *, yes: bool,
    ask: Callable[[bool], bool], show: Callable[[Recovery], None],
) -> tuple[Recovery, bool] | None:
    """The plan to execute and whether it was re-planned; None if the operator said no.

    After every yes the exchange is read again: a plan that changed meanwhile is shown and
    asked about again (ask(True)); with `yes` it is taken at once.
    """
    replanned = False
    while True:
        if not yes and not ask(replanned):
            return None
        fresh = await engine.recover(execute=False)
        if plan_key(fresh.plan) == plan_key(shown.plan):
            return fresh, replanned
        replanned = True
        show(fresh)
        if yes or not fresh.plan.has_work:
            return fresh, replanned
        shown = fresh


class CommandLog:
    """The commands an engine executed, by entry, in order (pass as its on_command hook)."""

    def __init__(self) -> None:
        self.by_entry: dict[PendingId, list[Command]] = {}

    def __call__(self, cmd: Command) -> None:
        pid = getattr(cmd, "pending_id", None) or cmd.pending.pending_id  # type: ignore[union-attr]
        self.by_entry.setdefault(pid, []).append(cmd)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where one entry ended up: its status and reason (or UNREADABLE) and what was executed."""

    pending_id: str
    status: str
    reason: str
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True)
class RecoverReport:
    executed: tuple[Outcome, ...]  # entries something was executed for
    attention: tuple[Outcome, ...]  # entries (and unreadable records) an operator must look at
    waiting: tuple[str, ...]  # entries with a check still scheduled
    pending: int  # entries left in the journal


def recover_report(
    state: Mapping[PendingId, Pending], log: CommandLog, unreadable: Iterable[Unreadable],
    waiting: Iterable[PendingId] = (),
) -> RecoverReport:
    """What a recover left behind, from the engine's state and the commands it executed."""
    from bot_cli.core.model import Status

    executed = tuple(_outcome(pid, state.get(pid), cmds) for pid, cmds in log.by_entry.items())
    attention = [Outcome(pid, p.status.value, p.reason) for pid, p in sorted(state.items())
                 if p.status is Status.NEEDS_ATTENTION]
    attention += [Outcome(u.key, UNREADABLE, f"{u.reason}; cannot be reconciled: {u.advice}") for u in unreadable]
    return RecoverReport(executed, tuple(attention), tuple(sorted(waiting)), len(state))


def _outcome(pid: PendingId, p: Pending | None, cmds: list[Command]) -> Outcome:
    from bot_cli.core.commands import ArchivePending

    if p is not None:
        return Outcome(pid, p.status.value, p.reason, tuple(cmds))
    last = next((c for c in reversed(cmds) if isinstance(c, ArchivePending)), None)
    if last is None:
        return Outcome(pid, "GONE", "left the journal through another process", tuple(cmds))
    return Outcome(pid, last.pending.status.value, last.reason, tuple(cmds))


# -- bot enter -------------------------------------------------------------------------


def parse_decimal(name: str, text: str) -> Decimal:
    from decimal import InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"{name} {text!r} is not a number: give it as digits, e.g. 0.01") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{name} {text} must be a positive number")
    return value


def build_spec(  # noqa: PLR0917 -- the paper venue's demo calls it positionally (next pass)
    filters: Any, symbol: str, side: str, quantity: Decimal, price: Decimal | None,
    stop_loss: Decimal, take_profit: Decimal | None, position_side: Any,
) -> EntrySpec:
    """A validated entry: every problem is a UsageError naming the value; nothing is sent."""
    from bot_cli.core.model import EntrySpec, OrderType, Side

    s = Side(side.upper())
    market = price is None
    for name, value in (("price", price), ("stop-loss", stop_loss), ("take-profit", take_profit)):
        if value is not None and (problem := filters.check_price(value)):
            raise UsageError(f"{name}: {problem}; use a multiple of {filters.tick_size}")
    reference = price if price is not None else stop_loss
    if problem := filters.check_quantity(quantity, market=market, price=reference if not market else None):
        raise UsageError(f"quantity: {problem}")
    _check_sides(s, price, stop_loss, take_profit)
    return EntrySpec(
        symbol, s, quantity, OrderType.MARKET if market else OrderType.LIMIT, price, stop_loss, take_profit,
        position_side,
    )


def _check_sides(side: Any, price: Decimal | None, sl: Decimal, tp: Decimal | None) -> None:
    buy = side.value == "BUY"
    word, sl_rel, tp_rel = ("buy", "below", "above") if buy else ("sell", "above", "below")
    if tp is not None and (sl >= tp if buy else sl <= tp):
        raise UsageError(f"for a {word} the stop-loss {sl} must be {sl_rel} the take-profit {tp}")
    if price is not None and (sl >= price if buy else sl <= price):
        raise UsageError(f"for a {word} the stop-loss {sl} must be {sl_rel} the entry price {price}")
    if price is not None and tp is not None and (tp <= price if buy else tp >= price):
        raise UsageError(f"for a {word} the take-profit {tp} must be {tp_rel} the entry price {price}")
