"""Time passing on the book: limit fills in parts, algo triggers, reduce-only clipping, catch-up."""

from __future__ import annotations

import time
from decimal import Decimal as D

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide
from bot_cli.paper.book import Book
from bot_cli.paper.matching import advance
from tests.paper import T0, new_book
from tests.paper.books import BTC, algo, flat_book, move, order, position, updates


def test_a_crossed_limit_fills_in_parts_on_consecutive_steps() -> None:
    """A BUY LIMIT crossed by the path fills 40%, 40%, 20% on three 100 ms steps, z cumulative."""
    # Arrange
    book = flat_book()
    order(book, price="96000.00", newClientOrderId="entry-1")
    book.drain()

    # Act
    move(book, D(95000), T0 + 1000)
    advance(book, T0 + 2000)
    trades = [e["o"] for e in updates(book.drain(), "ORDER_TRADE_UPDATE")]

    # Assert
    assert [(o["x"], o["X"], o["l"], o["z"], o["L"]) for o in trades] == [
        ("TRADE", "PARTIALLY_FILLED", "0.004", "0.004", "96000.00"),
        ("TRADE", "PARTIALLY_FILLED", "0.004", "0.008", "96000.00"),
        ("TRADE", "FILLED", "0.002", "0.010", "96000.00"),
    ]
    assert [o["T"] for o in trades] == [T0 + 1100, T0 + 1200, T0 + 1300]
    assert position(book) == D("0.010")
    assert book.query_order(BTC, None, "entry-1").status is OrderStatus.FILLED


def test_an_algo_trigger_spawns_a_market_child_linked_by_ai() -> None:
    """The SL fires: ALGO_UPDATE TRIGGERED (ai), child NEW, FILLED with i == ai, FINISHED."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    sl = algo(book, triggerPrice="96000.00", quantity="0.010", reduceOnly="true", clientAlgoId="e1-sl1")
    book.drain()

    # Act
    move(book, D(95990), T0 + 1000)
    advance(book, T0 + 1100)
    events = book.drain()

    # Assert
    assert [(e["e"], e["o"]["X"] if "o" in e else "") for e in events] == [
        ("ALGO_UPDATE", "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ORDER_TRADE_UPDATE", "FILLED"),
        ("ACCOUNT_UPDATE", ""),
        ("ALGO_UPDATE", "FINISHED"),
    ]
    triggered, child_fill = events[0]["o"], events[2]["o"]
    assert triggered["ai"] == str(child_fill["i"])  # a string, as Binance sends it
    assert (child_fill["o"], child_fill["ot"], child_fill["R"], child_fill["L"]) == (
        "MARKET", "STOP_MARKET", True, "95990.00",
    )  # fmt: skip
    final = book.query_algo(sl.algo_id, None)
    assert (final.status, final.actual_order_id, final.actual_qty) == (AlgoStatus.FINISHED, child_fill["i"], D("0.010"))
    assert position(book) == 0


def test_a_reduce_only_order_is_clipped_then_expired_never_flipping() -> None:
    """A reduce-only SELL larger than the long fills only the long and expires the rest."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")  # long 0.010
    order(book, side="SELL", price="98000.00", quantity="0.020", reduceOnly="true", newClientOrderId="ro")
    book.drain()

    # Act
    move(book, D(99000), T0 + 1000)
    advance(book, T0 + 2000)
    otu = [e["o"] for e in updates(book.drain(), "ORDER_TRADE_UPDATE")]

    # Assert
    assert [(o["x"], o["l"], o["z"]) for o in otu] == [
        ("TRADE", "0.008", "0.008"),
        ("TRADE", "0.002", "0.010"),
        ("EXPIRED", "0", "0.010"),
    ]
    assert position(book) == 0
    assert book.query_order(BTC, None, "ro").status is OrderStatus.EXPIRED


def test_close_position_closes_the_whole_position_including_later_fills() -> None:
    """closePosition follows the position: it closes what is there when it triggers."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    algo(book, triggerPrice="96000.00", closePosition="true", clientAlgoId="close-all")
    order(book, T0 + 500, type="MARKET", quantity="0.005")  # the position grows to 0.015
    book.drain()

    # Act
    move(book, D(95000), T0 + 1000)
    advance(book, T0 + 1100)
    fills = [e["o"] for e in updates(book.drain(), "ORDER_TRADE_UPDATE") if e["o"]["x"] == "TRADE"]

    # Assert
    assert [(f["c"], f["l"], f["cp"], f["R"]) for f in fills] == [("close-all", "0.015", True, True)]
    assert position(book) == 0


def test_close_position_with_no_position_expires_instead_of_opening_one() -> None:
    """Triggered on a flat position, a close-all order expires with a reason and opens nothing."""
    # Arrange
    book = flat_book()
    sl = algo(book, triggerPrice="96000.00", closePosition="true")
    book.drain()

    # Act
    move(book, D(95000), T0 + 1000)
    advance(book, T0 + 1100)
    events = book.drain()

    # Assert
    assert [(e["o"]["X"], e["o"].get("rm")) for e in events] == [("EXPIRED", "Reduce Only reject")]
    assert book.query_algo(sl.algo_id, None).status is AlgoStatus.EXPIRED
    assert position(book) == 0


def _scenario(book: Book) -> None:
    """An entry below the price and a close-all stop below it, on the default (walking) path."""
    order(book, price="96000.00", newClientOrderId="e")
    algo(book, triggerPrice="94000.00", closePosition="true", clientAlgoId="sl")


def test_catch_up_in_one_jump_equals_stepping_through_time() -> None:
    """advance(t+1h) at once gives exactly the fills and triggers of advancing 100 ms at a time."""
    # Arrange
    jump, steps = new_book(), new_book()
    _scenario(jump)
    _scenario(steps)

    # Act
    advance(jump, T0 + 3_600_000)
    for t in range(T0 + 100, T0 + 3_600_001, 100):
        advance(steps, t)
    jumped, stepped = jump.drain(), steps.drain()

    # Assert
    assert jumped == stepped
    statuses = [e["o"]["X"] for e in jumped if e["e"] == "ALGO_UPDATE"]
    assert statuses[-1] == "FINISHED"  # the scenario is not vacuous: the entry filled, the SL fired
    assert jump.query_order(BTC, None, "e").status is OrderStatus.FILLED
    assert jump.position(BTC, PositionSide.BOTH).amount == 0


def test_hours_of_downtime_with_resting_orders_catch_up_fast() -> None:
    """Six hours with orders resting on two symbols are processed in well under a second or two."""
    # Arrange
    book = new_book()
    order(book, price="80000.00")  # far below: never crossed
    order(book, symbol="ETHUSDT", side="SELL", quantity="0.100", price="3900.00")
    start = time.perf_counter()

    # Act
    advance(book, T0 + 6 * 3_600_000)

    # Assert
    assert time.perf_counter() - start < 3.0
    assert book.last_ms == T0 + 6 * 3_600_000
