"""The fault switch countdown_cancels_algo: its syntax, the config and CLI accepting it, and a
countdown that ends taking the symbol's algo orders while it is on (also while the venue is down)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot_cli.config import load_config
from bot_cli.core.model import AlgoStatus, OrderStatus
from bot_cli.errors import ConfigError
from bot_cli.paper.faults import FaultError, Faults, parse
from bot_cli.paper.rules import parse_new_algo, parse_new_order
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.wal import durable_state
from tests.paper import ENTRY, SL, T0, Clock
from tests.paper.test_cli import free_port, invoke


SWITCH = "countdown_cancels_algo"


def test_the_switch_parses_with_no_argument() -> None:
    """A plain switch: kept (not a one-shot action), matching no endpoint, on until cleared."""
    # Arrange
    faults = Faults()

    # Act
    fault = parse(SWITCH)
    faults.add(SWITCH)
    on = faults.countdown_cancels_algo
    faults.clear()

    # Assert
    assert (fault.kind, fault.immediate, fault.once, fault.methods) == (SWITCH, False, False, frozenset())
    assert on
    assert not faults.countdown_cancels_algo


def test_the_switch_changes_no_answer() -> None:
    """On, it is no response fault: every endpoint and method answers as usual."""
    # Arrange
    faults = Faults()
    faults.add(SWITCH)

    # Act
    hits = [faults.before("order", "POST"), faults.after("order", "POST"), faults.slow("algoOrder", "DELETE")]

    # Assert
    assert hits == [None, None, None]
    assert faults.specs() == [SWITCH]


@pytest.mark.parametrize("spec", [f"{SWITCH}:1", f"{SWITCH}:once", f"{SWITCH}:order:once"])
def test_an_argument_or_once_is_refused(spec: str) -> None:
    """A switch takes neither an argument nor ``:once``: the message says so."""
    # Act / Assert
    with pytest.raises(FaultError, match="no argument, no ':once'"):
        parse(spec)


def test_the_config_list_takes_it_through_the_same_parser(tmp_path: Path) -> None:
    """paper.faults accepts the switch and refuses it with ``:once``, naming the spec."""
    # Arrange
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(f'[paper]\nfaults = ["{SWITCH}"]\n', encoding="utf-8")
    bad.write_text(f'[paper]\nfaults = ["{SWITCH}:once"]\n', encoding="utf-8")

    # Act
    config = load_config(good)
    with pytest.raises(ConfigError) as refused:
        load_config(bad)

    # Assert
    assert config.paper.faults == (SWITCH,)
    assert f"{SWITCH}:once" in str(refused.value)


def test_bot_paper_faults_sets_it(tmp_path: Path) -> None:
    """`bot paper faults countdown_cancels_algo` (no venue running): on, and saved with the state."""
    # Arrange
    port = free_port()

    # Act
    code, _, _ = invoke(tmp_path, port, "faults", SWITCH)
    shown_code, shown, _ = invoke(tmp_path, port, "faults", "--json")

    # Assert
    assert (code, shown_code) == (0, 0)
    assert json.loads(shown)["faults"] == [SWITCH]
    assert durable_state(tmp_path / "state")["faults"] == [SWITCH]


def opened(tmp_path: Path, clock: Clock) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, volatility=0.0)
    exchange.open()
    return exchange


def entry_stop_and_countdown(ex: PaperExchange, countdown_ms: int) -> tuple[int, int]:
    """ENTRY resting, its SL in the Algo Service, BTCUSDT's countdown armed; committed."""
    now = ex.sync()
    entry, _ = ex.book.new_order(parse_new_order(ENTRY), now)
    sl = ex.book.new_algo(parse_new_algo(SL), now)
    ex.book.set_countdown("BTCUSDT", countdown_ms, now)
    ex.commit()
    return entry.order_id, sl.algo_id


def test_the_saved_switch_applies_to_a_deadline_passed_while_down(tmp_path: Path) -> None:
    """On when the venue stopped, the switch is back before the catch-up: the SL goes at the deadline."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    first.add_fault(SWITCH)
    order_id, algo_id = entry_stop_and_countdown(first, 30_000)
    first.close()

    # Act
    clock.advance(3_600_000)
    second = opened(tmp_path, clock)

    # Assert
    sl, entry = second.book.algos[algo_id], second.book.orders[order_id]
    assert (entry.status, entry.update_time) == (OrderStatus.CANCELED, T0 + 30_000)
    assert (sl.status, sl.update_time) == (AlgoStatus.CANCELED, T0 + 30_000)
    second.close()


def test_cleared_the_algo_orders_stay_again(tmp_path: Path) -> None:
    """Switched on, then cleared before the deadline: only the regular order is cancelled."""
    # Arrange
    clock = Clock()
    ex = opened(tmp_path, clock)
    ex.add_fault(SWITCH)
    order_id, algo_id = entry_stop_and_countdown(ex, 30_000)

    # Act
    ex.clear_faults()
    clock.advance(30_000)
    ex.sync()

    # Assert
    assert ex.book.orders[order_id].status is OrderStatus.CANCELED
    assert ex.book.algos[algo_id].status is AlgoStatus.NEW
    ex.close()
