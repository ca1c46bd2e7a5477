"""Specification of core.admission: an entry is accepted only if every order it needs fits the
account's limits (200 open conditional orders on every symbol; MAX_NUM_ORDERS per symbol)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot_cli.core.admission import MAX_CONDITIONAL, conditional_held, foreign, refusal, regular_held
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import AlgoReport, AlgoStatus, ClientId, Leg, LegState, Pending, Status
from tests.core.helpers import T0, D, leg, legs, pending, spec


def _protected(n: int) -> Pending:
    pid = make_pending_id(T0 + n, n)
    return pending(Status.PROTECTED, pid=pid, protections=legs(1, "1.0", LegState.LIVE, pid=pid))


@pytest.mark.parametrize(
    ("why", "p", "held"),
    [
        pytest.param("protected: its two live legs", pending(Status.PROTECTED), 2, id="protected"),
        pytest.param("requested, nothing placed yet: the legs it will place",
                     pending(Status.REQUESTED), 2, id="requested"),
        pytest.param("open, nothing filled: the legs it will place", pending(Status.OPEN), 2, id="open"),
        pytest.param("a resize in flight: old and new legs", pending(Status.PARTIALLY_FILLED, protections=(
            *legs(1, "0.4", LegState.LIVE), *legs(2, "0.7", LegState.SENDING))), 4, id="resize"),
        pytest.param("a fired leg is on the matching engine now, not the algo book",
                     pending(Status.EXITING, protections=(leg(Leg.SL, 1, "1.0", LegState.FIRED),)), 0, id="fired"),
        pytest.param("archived: nothing", pending(Status.CLOSED), 0, id="archived"),
        pytest.param("an SL-only entry that may still fill keeps one slot for its resize",
                     pending(Status.OPEN, spec=spec(take_profit=None)), 2, id="sl-only reserve"),
    ],
)
def test_what_an_entry_holds_of_the_algo_book(why: str, p: Pending, held: int) -> None:
    assert conditional_held(p) == held, why


def test_the_entry_that_would_pass_the_limit_is_refused_and_the_one_before_fits() -> None:
    """99 protected entries hold 198 slots: one more with SL and TP fits (200), a second does not."""
    # Arrange
    entries = [_protected(n) for n in range(99)]

    # Act
    fits = refusal(spec(), entries)
    full = refusal(spec(), [*entries, _protected(99)])

    # Assert
    assert fits is None
    assert full is not None
    assert full.limit == "conditional"
    assert str(full).startswith(f"the account's open conditional orders would exceed {MAX_CONDITIONAL}: 200")


def test_conditional_orders_that_are_not_the_bot_s_count_too() -> None:
    assert refusal(spec(), [], foreign_conditional=199) is not None
    assert refusal(spec(), [], foreign_conditional=198) is None


def test_a_limit_entry_needs_room_among_the_symbol_s_open_orders() -> None:
    """MAX_NUM_ORDERS counts open regular orders: the bot's working limit entries and others'."""
    working = replace(pending(Status.OPEN), pending_id=make_pending_id(T0, 7))
    assert regular_held(working, "BTCUSDT") == 1
    assert regular_held(working, "ETHUSDT") == 0
    refused = refusal(spec(), [working], foreign_open=199, max_open_orders=200)  # 200 open: no room
    assert refused is not None
    assert refused.limit == "open_orders"
    assert refusal(spec(), [working], foreign_open=198, max_open_orders=200) is None
    assert refusal(spec(price=None), [working], foreign_open=199, max_open_orders=200) is None  # market


def test_an_order_is_foreign_unless_an_entry_of_the_journal_holds_it() -> None:
    orders = [AlgoReport("BTCUSDT", ClientId(cid), 1, AlgoStatus.NEW, D(90000), D(1))
              for cid in ("manual-1", "bc0aaaaaaaaaaaaa-sl1", "bc0bbbbbbbbbbbbb-tp1")]
    assert foreign(orders, {"bc0aaaaaaaaaaaaa"}) == 2
