"""The book's requests at an instant: accepted, refused with Binance's codes, looked up, cancelled."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from bot_cli.core.model import OrderStatus, PositionSide
from bot_cli.paper.book import RETENTION_MS
from bot_cli.paper.rules import BookError
from tests.paper import T0
from tests.paper.books import BTC, algo, at, flat_book, order, position


def test_a_market_order_fills_at_once_and_its_ack_is_the_accepted_state() -> None:
    """MARKET: accepted NEW (the ACK answer), then filled completely at the current price."""
    # Arrange
    book = flat_book()

    # Act
    accepted, final = order(book, type="MARKET", newClientOrderId="m1")
    events = book.drain()

    # Assert
    assert (accepted.status, final.status, final.executed) == (OrderStatus.NEW, OrderStatus.FILLED, D("0.010"))
    assert [e["e"] for e in events] == ["ORDER_TRADE_UPDATE", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]
    assert events[2]["a"]["P"][0]["pa"] == "0.010"
    assert final.avg_price == D("97000.00")


def test_a_request_ahead_of_the_book_is_a_callers_bug() -> None:
    """The book never moves time itself: a request for a later instant raises, nothing changes."""
    # Arrange
    book = flat_book()

    # Act
    with pytest.raises(RuntimeError, match=r"matching\.advance"):
        book.cancel_order(BTC, None, "x", T0 + 1)

    # Assert
    assert book.events == []
    assert book.last_ms == T0


def test_a_reduce_only_market_order_with_nothing_to_reduce_is_rejected() -> None:
    """-2022: a reduce-only MARKET on a flat position would open one."""
    # Arrange
    book = flat_book()

    # Act
    with pytest.raises(BookError) as err:
        order(book, type="MARKET", side="SELL", reduceOnly="true")

    # Assert
    assert err.value.code == -2022
    assert book.open_orders() == []
    assert position(book) == 0


@pytest.mark.parametrize(
    ("side", "kind", "trigger"),
    [
        ("SELL", "STOP_MARKET", "97500.00"),  # a SELL stop above the price
        ("BUY", "STOP_MARKET", "96500.00"),  # a BUY stop below the price
        ("SELL", "TAKE_PROFIT_MARKET", "96500.00"),  # a SELL take-profit below the price
        ("BUY", "TAKE_PROFIT_MARKET", "97500.00"),  # a BUY take-profit above the price
    ],
)
def test_a_trigger_already_crossed_is_refused_with_2021(side: str, kind: str, trigger: str) -> None:
    """-2021 "Order would immediately trigger." and nothing is placed."""
    # Arrange
    book = flat_book()  # price 97000.00

    # Act
    with pytest.raises(BookError) as err:
        algo(book, side=side, type=kind, triggerPrice=trigger, quantity="0.010")

    # Assert
    assert (err.value.code, err.value.msg) == (-2021, "Order would immediately trigger.")
    assert book.open_algos() == []
    assert book.events == []


def test_a_client_id_is_unique_among_open_orders_only() -> None:
    """-4116 while the first order is open; after it is terminal the id may be used again."""
    # Arrange
    book = flat_book()
    first, _ = order(book, price="90000.00", newClientOrderId="dup")

    # Act
    with pytest.raises(BookError) as err:
        order(book, price="90000.00", newClientOrderId="dup")
    book.cancel_order(BTC, first.order_id, None, at(book, T0 + 10))
    again, _ = order(book, T0 + 20, price="90000.00", newClientOrderId="dup")

    # Assert
    assert err.value.code == -4116
    assert again.order_id != first.order_id
    assert book.query_order(BTC, None, "dup").order_id == again.order_id  # the open one wins


def test_a_client_algo_id_is_unique_among_open_algo_orders_only() -> None:
    """-4116 for a second open algo order with one clientAlgoId; fine once the first is gone."""
    # Arrange
    book = flat_book()
    first = algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")

    # Act
    with pytest.raises(BookError) as err:
        algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")
    book.cancel_algo(None, "sl", at(book, T0 + 10))
    second = algo(book, T0 + 20, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")

    # Assert
    assert err.value.code == -4116
    assert second.algo_id != first.algo_id


def test_unknown_orders_give_2013_and_cancels_of_closed_ones_2011() -> None:
    """Query of an unknown id -2013; cancel of a filled order or a cancelled algo -2011."""
    # Arrange
    book = flat_book()
    filled, _ = order(book, type="MARKET", newClientOrderId="done")
    sl = algo(book, triggerPrice="90000.00", quantity="0.010", reduceOnly="true")
    book.cancel_algo(sl.algo_id, None, T0)
    calls: list[Callable[[], Any]] = [
        lambda: book.query_order(BTC, None, "nope"),
        lambda: book.query_order(BTC, 42, None),
        lambda: book.query_order("ETHUSDT", filled.order_id, None),
        lambda: book.query_algo(None, "nope"),
        lambda: book.cancel_order(BTC, filled.order_id, None, T0),
        lambda: book.cancel_algo(sl.algo_id, None, T0),
        lambda: book.cancel_order(BTC, None, "never", T0),
    ]

    # Act
    codes = []
    for call in calls:
        with pytest.raises(BookError) as err:
            call()
        codes.append(err.value.code)

    # Assert
    assert codes == [-2013, -2013, -2013, -2013, -2011, -2011, -2011]
    assert book.query_order(BTC, filled.order_id, None).status is OrderStatus.FILLED  # terminal stays queryable


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"type": "STOP_MARKET", "stopPrice": "90000"}, -4120),
        ({"type": "TAKE_PROFIT_MARKET"}, -4120),
        ({"price": "96000.05"}, -4014),
        ({"quantity": "0.0105"}, -4023),
        ({"quantity": "0.001", "price": "96000.00"}, -4164),
        ({"quantity": ""}, -1102),
        ({"price": ""}, -1102),
        ({"newClientOrderId": "has space"}, -4015),
        ({"newClientOrderId": "x" * 37}, -4015),
        ({"positionSide": "LONG"}, -4061),
        ({"symbol": "ADAUSDT"}, -1121),
        ({"side": "UP"}, -1117),
        ({"quantity": "1e-3"}, -1100),
        ({"price": "200000.00"}, -4016),  # PERCENT_PRICE: far above the mark
    ],
)
def test_filters_and_parameters_are_checked_with_binance_codes(params: dict[str, str], code: int) -> None:
    """Each malformed or filter-breaking order is refused with Binance's code; nothing is placed."""
    # Arrange
    book = flat_book()
    defaults = {"price": "96000.00"}

    # Act
    with pytest.raises(BookError) as err:
        order(book, **{**defaults, **params})

    # Assert
    assert err.value.code == code
    assert book.open_orders() == []
    assert book.events == []


def test_min_notional_is_waived_for_reduce_only() -> None:
    """-4164 does not apply to a reduce-only order (Binance: "unless you choose reduce only")."""
    # Arrange
    book = flat_book()

    # Act
    accepted, _ = order(book, side="SELL", quantity="0.001", price="98000.00", reduceOnly="true")

    # Assert
    assert accepted.status is OrderStatus.NEW


def test_hedge_mode_needs_long_or_short_and_closes_by_position_side() -> None:
    """In hedge mode BOTH is -4061; SELL/LONG only reduces the long, never opens a short."""
    # Arrange
    book = flat_book()
    book.set_dual(True, T0)

    # Act
    with pytest.raises(BookError) as err:
        order(book, type="MARKET")
    order(book, type="MARKET", positionSide="LONG")
    _, closing = order(book, type="MARKET", side="SELL", positionSide="LONG", quantity="0.020")

    # Assert
    assert err.value.code == -4061
    assert (closing.executed, closing.status) == (D("0.010"), OrderStatus.EXPIRED)
    assert position(book, PositionSide.LONG) == 0
    assert position(book, PositionSide.SHORT) == 0


def test_position_mode_cannot_change_with_open_orders() -> None:
    """POST positionSide/dual: -4059 no change, -4067 with open orders."""
    # Arrange
    book = flat_book()
    order(book, price="90000.00")

    # Act
    codes = []
    for value in (False, True):
        with pytest.raises(BookError) as err:
            book.set_dual(value, T0)
        codes.append(err.value.code)

    # Assert
    assert codes == [-4059, -4067]


def test_terminal_records_are_forgotten_after_three_days() -> None:
    """prune(): terminal orders, algo orders and trades older than 3 days go; open ones stay."""
    # Arrange
    book = flat_book()
    filled, _ = order(book, type="MARKET")
    resting, _ = order(book, price="90000.00")
    sl = algo(book, triggerPrice="90000.00", quantity="0.010", reduceOnly="true")
    book.cancel_algo(sl.algo_id, None, T0)
    book.drain()

    # Act
    book.prune(T0 + RETENTION_MS)  # not older than 3 days yet
    kept = (len(book.orders), len(book.algos), len(book.trades))
    book.prune(T0 + RETENTION_MS + 1)

    # Assert
    assert kept == (2, 1, 1)
    assert list(book.orders) == [resting.order_id]
    assert book.algos == {}
    assert book.trades == []
    with pytest.raises(BookError) as err:
        book.query_order(BTC, filled.order_id, None)
    assert err.value.code == -2013
    assert book.dirty

