"""`bot recover`: re-planning after the confirmation, what it reports, and its exit codes.

The confirmation logic (ops.confirm_fresh, ops.recover_report) runs on an engine over the
in-memory FakeExchange, where the test moves the market while the operator reads the plan.
The command itself runs against the paper venue, started inside the test process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot_cli.cli import app
from bot_cli.core import commands as cm
from bot_cli.core.engine import request_entry
from bot_cli.core.ids import client_id, make_pending_id
from bot_cli.core.model import EntrySpec, Leg, OrderType, PendingId, Side, Status
from bot_cli.ops import recover as ops
from bot_cli.ops.journal import UNREADABLE, Unreadable
from bot_cli.runtime.engine import ExecutionEngine, Recovery
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode
from tests.fakes import FakeClock, FakeExchange


D = Decimal
SPEC = EntrySpec("BTCUSDT", Side.BUY, D("1.0"), OrderType.LIMIT, D("100"), D("95"), D("110"))
PLAIN = {"symbol": "ETHUSDT", "side": "SELL", "quantity": "1"}  # what the seed's save() accepts


# -- re-planning after the confirmation (ops, over the FakeExchange) ------------------------


class World:
    """An engine over a fake exchange with one entry that filled 0.4 of 1.0 while nobody looked."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.venue = FakeExchange(self.clock)
        self.log = ops.CommandLog()
        self.engine = ExecutionEngine(PendingEntryStore(tmp_path), self.venue, clock=self.clock, on_command=self.log)
        self.asked: list[bool] = []
        self.shown: list[Recovery] = []

    async def entry_filled_while_down(self) -> PendingId:
        p = await self.engine.execute_entry(SPEC)
        self.venue.fill(client_id(p.pending_id, Leg.ENTRY), D("0.4"))
        self.clock.advance(1_000)
        return p.pending_id

    def asking(self, *answers: bool, meanwhile: Any = None) -> Any:
        """An operator who answers in turn; `meanwhile` runs while the first plan is read."""
        def ask(replanned: bool) -> bool:
            if not self.asked and meanwhile is not None:
                meanwhile()
            self.asked.append(replanned)
            return answers[len(self.asked) - 1]
        return ask

    def stop_loss_quantities(self, pid: PendingId) -> list[Decimal]:
        return [a.quantity for a in self.venue.live_protections(pid, Leg.SL)]


def test_an_unchanged_exchange_executes_the_plan_shown(tmp_path: Path) -> None:
    """One question; the re-read finds the same plan (times aside): not re-planned."""
    async def scenario() -> tuple[World, Any]:
        w = World(tmp_path)
        await w.entry_filled_while_down()
        shown = await w.engine.recover(execute=False)
        w.clock.advance(5_000)  # the operator takes a while: only times differ
        chosen = await ops.confirm_fresh(w.engine, shown, yes=False, ask=w.asking(True), show=w.shown.append)
        assert chosen is not None
        assert chosen[0].plan.rows != shown.plan.rows
        return w, chosen

    w, (fresh, replanned) = asyncio.run(scenario())
    assert (w.asked, w.shown, replanned) == ([False], [], False)
    assert fresh.plan.has_work


def test_a_change_during_the_prompt_is_shown_and_asked_again(tmp_path: Path) -> None:
    """The entry fills completely while the operator reads: the new plan is shown, asked about
    again, and the stop-loss placed covers 1.0, not the 0.4 of the first plan."""
    async def scenario() -> tuple[World, PendingId, Any]:
        w = World(tmp_path)
        pid = await w.entry_filled_while_down()
        shown = await w.engine.recover(execute=False)
        fill = lambda: w.venue.fill(client_id(pid, Leg.ENTRY), D("1.0"))  # noqa: E731
        chosen = await ops.confirm_fresh(w.engine, shown, yes=False, ask=w.asking(True, True, meanwhile=fill),
                                         show=w.shown.append)
        assert chosen is not None
        await w.engine.execute_plan(chosen[0].plan)
        return w, pid, chosen

    w, pid, (fresh, replanned) = asyncio.run(scenario())
    assert w.asked == [False, True]
    assert w.shown == [fresh]
    assert replanned
    assert w.stop_loss_quantities(pid) == [D("1.0")]


def test_with_yes_a_changed_plan_is_executed_and_flagged(tmp_path: Path) -> None:
    """--yes: no question; the fresh plan is taken and said to be re-planned."""
    async def scenario() -> tuple[World, PendingId, Any]:
        w = World(tmp_path)
        pid = await w.entry_filled_while_down()
        shown = await w.engine.recover(execute=False)
        w.venue.fill(client_id(pid, Leg.ENTRY), D("1.0"))
        chosen = await ops.confirm_fresh(w.engine, shown, yes=True, ask=w.asking(), show=w.shown.append)
        assert chosen is not None
        await w.engine.execute_plan(chosen[0].plan)
        return w, pid, chosen

    w, pid, (fresh, replanned) = asyncio.run(scenario())
    assert w.asked == []
    assert w.shown == [fresh]
    assert replanned
    assert w.stop_loss_quantities(pid) == [D("1.0")]


def test_a_no_executes_nothing(tmp_path: Path) -> None:
    async def scenario() -> tuple[World, Any]:
        w = World(tmp_path)
        await w.entry_filled_while_down()
        shown = await w.engine.recover(execute=False)
        return w, await ops.confirm_fresh(w.engine, shown, yes=False, ask=w.asking(False), show=w.shown.append)

    w, chosen = asyncio.run(scenario())
    assert chosen is None
    assert w.venue.algos == {}


def test_the_report_says_what_was_executed_and_what_is_left(tmp_path: Path) -> None:
    """Per entry the commands executed and where it ended; unreadable records need attention."""
    async def scenario() -> tuple[World, PendingId, ops.RecoverReport]:
        w = World(tmp_path)
        pid = await w.entry_filled_while_down()
        w.log.by_entry.clear()  # only what the recovery executes
        await w.engine.recover()
        unreadable = [Unreadable("seed-1", "no record version 'rv'")]
        return w, pid, ops.recover_report(w.engine.state, w.log, unreadable, w.engine.timers)

    w, pid, report = asyncio.run(scenario())
    (outcome,) = report.executed
    assert outcome.pending_id == pid
    assert outcome.status == w.engine.state[pid].status.value
    placed = [c for c in outcome.commands if isinstance(c, cm.PlaceProtection)]
    assert {c.leg for c in placed} == {Leg.SL, Leg.TP}
    assert {c.quantity for c in placed} == {D("0.4")}
    assert [(a.pending_id, a.status) for a in report.attention] == [("seed-1", UNREADABLE)]
    assert "bot pending drop --force seed-1" in report.attention[0].reason
    assert report.pending == 1


def test_an_entry_needing_attention_is_left_for_the_operator(tmp_path: Path) -> None:
    w = World(tmp_path)
    pid = asyncio.run(w.entry_filled_while_down())
    p = w.engine.state[pid]
    state = {pid: replace(p, status=Status.NEEDS_ATTENTION, reason="evidence contradicts itself")}
    report = ops.recover_report(state, ops.CommandLog(), [])
    assert [(a.pending_id, a.status, a.reason) for a in report.attention] == [
        (pid, "NEEDS_ATTENTION", "evidence contradicts itself")
    ]


# -- the command, against the paper venue --------------------------------------------------


runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def here(tmp_path: Path) -> Path:
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {free_port()}\nvolatility = 0.0\n")
    return tmp_path


def bot(here: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--state-dir", str(here / "state"), "--config", str(here / "bot.toml"), *args],
                           input=input)
    return result.exit_code, result.stdout, result.stderr


def requested(here: Path) -> PendingId:
    """An entry `bot enter` wrote for a daemon that never took it: recover sends it."""
    now = time.time_ns() // 1_000_000
    pid = make_pending_id(now, 3)
    p, _ = request_entry(pid, EntrySpec("BTCUSDT", Side.BUY, D("0.010"), OrderType.LIMIT, D("60000.0"),
                                        D("59000.0"), D("66000.0")), now, 5000)
    with PendingEntryStore(here / "state") as store:
        store.save(pid, encode(p))
    return pid


def both(first: Callable[[Path], object], second: Callable[[Path], object], here: Path) -> None:
    first(here)
    second(here)


def plain_context(here: Path) -> None:
    with PendingEntryStore(here / "state") as store:
        store.save("seed-1", PLAIN)


def test_json_without_yes_is_refused_before_anything(here: Path) -> None:
    """A program cannot answer the prompt: one line on stderr, nothing on stdout, nothing started."""
    code, out, err = bot(here, "recover", "--json")
    assert code == 1
    assert out == ""
    assert "--yes" in err
    assert len(err.strip().splitlines()) == 1
    assert not (here / "state" / "paper").exists()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [(lambda h: None, 0), (requested, 2), (plain_context, 3), (lambda h: both(requested, plain_context, h), 3)],
    ids=["nothing", "work", "unreadable", "work-and-unreadable"],
)
def test_dry_run_exit_codes(here: Path, setup: Any, expected: int) -> None:
    """0 nothing to do, 2 work to do, 3 an operator must look (even with work besides)."""
    setup(here)
    code, _, err = bot(here, "recover", "--dry-run")
    assert code == expected, err


def test_dry_run_lists_an_unreadable_record_with_what_to_do(here: Path) -> None:
    plain_context(here)
    _, out, _ = bot(here, "recover", "--dry-run")
    line = next(x for x in out.splitlines() if x.startswith("seed-1"))
    assert "UNREADABLE" in line
    assert "cannot be reconciled" in line
    assert "bot pending drop --force seed-1" in line
    _, out, _ = bot(here, "recover", "--dry-run", "--json")
    doc = json.loads(out)
    (row,) = [r for r in doc["plan"] if r["id"] == "seed-1"]
    assert doc["needs_attention"]
    assert row["local"] == "UNREADABLE"
    assert "drop --force seed-1" in row["attention"]


def test_yes_json_reports_what_was_executed_and_what_is_left(here: Path) -> None:
    """One JSON document: the plan, per entry the calls made and its status now, and what is
    left for the operator; exit 3 for the unreadable record."""
    pid = requested(here)
    plain_context(here)
    code, out, err = bot(here, "recover", "--yes", "--json")
    assert code == 3, err
    doc = json.loads(out)
    (done,) = doc["executed"]
    assert done["id"] == pid
    assert done["status"] == "OPEN"
    assert any(c.startswith("POST /fapi/v1/order") and f"newClientOrderId={pid}-e" in c for c in done["calls"])
    assert doc["replanned"] is False
    assert doc["left"]["pending"] == 1
    assert [(a["id"], a["status"]) for a in doc["left"]["attention"]] == [("seed-1", "UNREADABLE")]
    with PendingEntryStore(here / "state") as store:
        assert store.load_all()[pid]["status"] == "OPEN"


def test_a_declined_prompt_changes_nothing(here: Path) -> None:
    pid = requested(here)
    code, out, _ = bot(here, "recover", input="n\n")
    assert code == 1
    assert "Execute this plan?" in out
    with PendingEntryStore(here / "state") as store:
        assert store.load_all()[pid]["status"] == "REQUESTED"


def test_an_accepted_prompt_executes_and_exits_0(here: Path) -> None:
    """What it sent, entry by entry, and where each stands now; then what is left."""
    pid = requested(here)
    code, out, err = bot(here, "recover", input="y\n")
    assert code == 0, err
    assert f"{pid}: now OPEN" in out
    assert "  sent POST /fapi/v1/order symbol=BTCUSDT" in out
    assert f"newClientOrderId={pid}-e" in out
    assert "done; 1 entries remain pending" in out
    assert "re-planned" not in out
    with PendingEntryStore(here / "state") as store:
        assert store.load_all()[pid]["status"] == "OPEN"


def _venue_orders(here: Path) -> dict[str, dict[str, Any]]:
    """Every order the paper venue holds (regular and algo), by client id, from its own view."""
    code, out, err = bot(here, "paper", "orders", "--json")
    assert code == 0, err
    doc = json.loads(out)
    regular = [*doc["openOrders"], *doc["recentOrders"]]
    algos = [*doc["openAlgoOrders"], *doc["recentAlgoOrders"]]
    return {**{o["clientOrderId"]: o for o in regular}, **{a["clientAlgoId"]: a for a in algos}}


# The venue's name for each parameter a new order or algo order is sent with.
_AS_STORED = {"quantity": ("origQty", "quantity"), "type": ("origType", "orderType")}
_IDS = ("newClientOrderId", "clientAlgoId")
_NOT_STORED = frozenset({"newOrderRespType", "algoType", *_IDS})


def test_the_calls_recover_shows_are_what_the_venue_receives(here: Path) -> None:
    """Each POST recover reports is, parameter by parameter, an order the venue then holds.

    One entry a daemon never took (its entry order is sent) and one that filled while nobody
    watched (its stop-loss and take-profit are sent); checked from the venue's side. The
    dry-run's lines come from the same request builder (tests/exchange/test_requests.py)."""
    from urllib.parse import parse_qsl

    # Arrange: two entries on one position, as [protection] stacking allows
    with (here / "bot.toml").open("a") as config:
        config.write("[protection]\nstacking = true\n")
    requested(here)
    assert bot(here, "paper", "price", "BTCUSDT", "70000")[0] == 0
    # a limit above the market fills as it arrives; with no daemon nothing protects it yet
    code, _, err = bot(here, "enter", "BTCUSDT", "buy", "0.010", "--price", "71000", "--sl", "68000",
                       "--tp", "75000")
    assert code == 4, err

    # Act
    code, out, err = bot(here, "recover", "--yes", "--json")
    shown = [c for row in json.loads(out)["executed"] for c in row["calls"] if c.startswith("POST ")]
    held = _venue_orders(here)

    # Assert
    assert code == 0, err
    assert {c.split(" ")[1] for c in shown} == {"/fapi/v1/algoOrder", "/fapi/v1/order"}  # both kinds
    for call in shown:
        params = dict(parse_qsl(call.split(" ", 2)[2]))
        order = held[next(params[k] for k in _IDS if k in params)]
        for name, value in params.items():
            if name in _NOT_STORED:
                continue
            stored = next(order[k] for k in _AS_STORED.get(name, (name,)) if k in order)
            same = str(stored).lower() == value if value in ("true", "false") else str(stored) == value
            numeric = value[:1].isdigit() and Decimal(str(stored)) == Decimal(value)
            assert same or numeric, f"{call}: {name} sent as {value}, the venue holds {stored}"
