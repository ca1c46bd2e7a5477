"""The book as a state machine, driven with explicit times (no clock, no I/O)."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from typing import Any

import pytest

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide
from bot_cli.paper import snapshot
from bot_cli.paper.book import RETENTION_MS, Book
from bot_cli.paper.rules import BookError, parse_new_algo, parse_new_order
from tests.paper import T0, new_book

BTC = "BTCUSDT"


def order(book: Book, now: int = T0, **params: str) -> Any:
    """Place a regular order from wire parameters; returns (accepted, final)."""
    base = {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
    }
    base.update(params)
    if base["type"] == "MARKET":
        base.pop("timeInForce")
    return book.new_order(parse_new_order(base), now)


def algo(book: Book, now: int = T0, **params: str) -> Any:
    base = {"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL", "type": "STOP_MARKET"}
    base.update(params)
    return book.new_algo(parse_new_algo(base), now)


def updates(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["e"] == kind]


def flat_book() -> Book:
    """Volatility 0: the price stays where set_price puts it, so crossings are exact."""
    return new_book(volatility=0.0)


def position(book: Book, ps: PositionSide = PositionSide.BOTH) -> D:
    return book.position(BTC, ps).amount


def test_a_crossed_limit_fills_in_parts_on_consecutive_steps():
    """A BUY LIMIT crossed by the path fills 40%, 40%, 20% on three 100 ms steps, z cumulative."""
    # Arrange
    book = flat_book()
    order(book, price="96000.00", newClientOrderId="entry-1")
    book.drain()

    # Act
    book.set_price(BTC, D(95000), T0 + 1000)
    book.advance(T0 + 2000)
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


def test_a_market_order_fills_at_once_and_its_ack_is_the_accepted_state():
    """MARKET: accepted NEW (the ACK answer), then filled completely at the current price."""
    # Arrange
    book = flat_book()

    # Act
    accepted, final = order(book, type="MARKET", newClientOrderId="m1")
    events = book.drain()

    # Assert
    assert (accepted.status, final.status, final.executed) == (
        OrderStatus.NEW,
        OrderStatus.FILLED,
        D("0.010"),
    )
    assert [e["e"] for e in events] == [
        "ORDER_TRADE_UPDATE",
        "ORDER_TRADE_UPDATE",
        "ACCOUNT_UPDATE",
    ]
    assert events[2]["a"]["P"][0]["pa"] == "0.010"
    assert final.avg_price == D("97000.00")


def test_an_algo_trigger_spawns_a_market_child_linked_by_ai():
    """The SL fires: ALGO_UPDATE TRIGGERED (ai), child NEW, FILLED with i == ai, FINISHED."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    sl = algo(
        book, triggerPrice="96000.00", quantity="0.010", reduceOnly="true", clientAlgoId="e1-sl1"
    )
    book.drain()

    # Act
    book.set_price(BTC, D(95990), T0 + 1000)
    book.advance(T0 + 1100)
    events = book.drain()

    # Assert
    kinds = [(e["e"], e["o"]["X"] if "o" in e else "") for e in events]
    assert kinds == [
        ("ALGO_UPDATE", "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ORDER_TRADE_UPDATE", "FILLED"),
        ("ACCOUNT_UPDATE", ""),
        ("ALGO_UPDATE", "FINISHED"),
    ]
    triggered, child_fill = events[0]["o"], events[2]["o"]
    assert isinstance(triggered["ai"], str) and triggered["ai"] == str(child_fill["i"])
    assert (child_fill["o"], child_fill["ot"], child_fill["R"], child_fill["L"]) == (
        "MARKET",
        "STOP_MARKET",
        True,
        "95990.00",
    )
    final = book.query_algo(sl.algo_id, None)
    assert (final.status, final.actual_order_id, final.actual_qty) == (
        AlgoStatus.FINISHED,
        child_fill["i"],
        D("0.010"),
    )
    assert position(book) == 0


def test_a_reduce_only_order_is_clipped_then_expired_never_flipping():
    """A reduce-only SELL larger than the long fills only the long and expires the rest."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")  # long 0.010
    order(
        book,
        side="SELL",
        price="98000.00",
        quantity="0.020",
        reduceOnly="true",
        newClientOrderId="ro",
    )
    book.drain()

    # Act
    book.set_price(BTC, D(99000), T0 + 1000)
    book.advance(T0 + 2000)
    otu = [e["o"] for e in updates(book.drain(), "ORDER_TRADE_UPDATE")]

    # Assert
    assert [(o["x"], o["l"], o["z"]) for o in otu] == [
        ("TRADE", "0.008", "0.008"),
        ("TRADE", "0.002", "0.010"),
        ("EXPIRED", "0", "0.010"),
    ]
    assert position(book) == 0
    assert book.query_order(BTC, None, "ro").status is OrderStatus.EXPIRED


def test_a_reduce_only_market_order_with_nothing_to_reduce_is_rejected():
    """-2022: a reduce-only MARKET on a flat position would open one."""
    # Arrange
    book = flat_book()

    # Act
    with pytest.raises(BookError) as err:
        order(book, type="MARKET", side="SELL", reduceOnly="true")

    # Assert
    assert err.value.code == -2022
    assert book.open_orders() == [] and position(book) == 0


def test_close_position_closes_the_whole_position_including_later_fills():
    """closePosition follows the position: it closes what is there when it triggers."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    algo(book, triggerPrice="96000.00", closePosition="true", clientAlgoId="close-all")
    order(book, T0 + 500, type="MARKET", quantity="0.005")  # the position grows to 0.015
    book.drain()

    # Act
    book.set_price(BTC, D(95000), T0 + 1000)
    book.advance(T0 + 1100)
    fills = [e["o"] for e in updates(book.drain(), "ORDER_TRADE_UPDATE") if e["o"]["x"] == "TRADE"]

    # Assert
    assert [(f["c"], f["l"], f["cp"], f["R"]) for f in fills] == [
        ("close-all", "0.015", True, True)
    ]
    assert position(book) == 0


def test_close_position_with_no_position_expires_instead_of_opening_one():
    """Triggered on a flat position, a close-all order expires with a reason and opens nothing."""
    # Arrange
    book = flat_book()
    sl = algo(book, triggerPrice="96000.00", closePosition="true")
    book.drain()

    # Act
    book.set_price(BTC, D(95000), T0 + 1000)
    book.advance(T0 + 1100)
    events = book.drain()

    # Assert
    assert [(e["o"]["X"], e["o"].get("rm")) for e in events] == [("EXPIRED", "Reduce Only reject")]
    assert book.query_algo(sl.algo_id, None).status is AlgoStatus.EXPIRED
    assert position(book) == 0


@pytest.mark.parametrize(
    ("side", "kind", "trigger"),
    [
        ("SELL", "STOP_MARKET", "97500.00"),  # a SELL stop above the price
        ("BUY", "STOP_MARKET", "96500.00"),  # a BUY stop below the price
        ("SELL", "TAKE_PROFIT_MARKET", "96500.00"),  # a SELL take-profit below the price
        ("BUY", "TAKE_PROFIT_MARKET", "97500.00"),
    ],
)
def test_a_trigger_already_crossed_is_refused_with_2021(side, kind, trigger):
    """-2021 "Order would immediately trigger." and nothing is placed."""
    # Arrange
    book = flat_book()  # price 97000.00

    # Act
    with pytest.raises(BookError) as err:
        algo(book, side=side, type=kind, triggerPrice=trigger, quantity="0.010")

    # Assert
    assert (err.value.code, err.value.msg) == (-2021, "Order would immediately trigger.")
    assert book.open_algos() == [] and book.events == []


def test_a_client_id_is_unique_among_open_orders_only():
    """-4116 while the first order is open; after it is terminal the id may be used again."""
    # Arrange
    book = flat_book()
    first, _ = order(book, price="90000.00", newClientOrderId="dup")

    # Act
    with pytest.raises(BookError) as err:
        order(book, price="90000.00", newClientOrderId="dup")
    book.cancel_order(BTC, first.order_id, None, T0 + 10)
    again, _ = order(book, T0 + 20, price="90000.00", newClientOrderId="dup")

    # Assert
    assert err.value.code == -4116
    assert again.order_id != first.order_id
    assert book.query_order(BTC, None, "dup").order_id == again.order_id  # the open one wins


def test_a_client_algo_id_is_unique_among_open_algo_orders_only():
    """-4116 for a second open algo order with one clientAlgoId; fine once the first is gone."""
    # Arrange
    book = flat_book()
    first = algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")

    # Act
    with pytest.raises(BookError) as err:
        algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")
    book.cancel_algo(None, "sl", T0 + 10)
    second = algo(book, T0 + 20, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")

    # Assert
    assert err.value.code == -4116
    assert second.algo_id != first.algo_id


def test_unknown_orders_give_2013_and_cancels_of_closed_ones_2011():
    """Query of an unknown id -2013; cancel of a filled order or a cancelled algo -2011."""
    # Arrange
    book = flat_book()
    filled, _ = order(book, type="MARKET", newClientOrderId="done")
    sl = algo(book, triggerPrice="90000.00", quantity="0.010", reduceOnly="true")
    book.cancel_algo(sl.algo_id, None, T0 + 1)

    # Act
    codes = []
    for call in (
        lambda: book.query_order(BTC, None, "nope"),
        lambda: book.query_order(BTC, 42, None),
        lambda: book.query_order("ETHUSDT", filled.order_id, None),
        lambda: book.query_algo(None, "nope"),
        lambda: book.cancel_order(BTC, filled.order_id, None, T0 + 2),
        lambda: book.cancel_algo(sl.algo_id, None, T0 + 3),
        lambda: book.cancel_order(BTC, None, "never", T0 + 4),
    ):
        with pytest.raises(BookError) as err:
            call()
        codes.append(err.value.code)

    # Assert
    assert codes == [-2013, -2013, -2013, -2013, -2011, -2011, -2011]
    assert (
        book.query_order(BTC, filled.order_id, None).status is OrderStatus.FILLED
    )  # terminal stays queryable


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
def test_filters_and_parameters_are_checked_with_binance_codes(params, code):
    """Each malformed or filter-breaking order is refused with Binance's code; nothing is placed."""
    # Arrange
    book = flat_book()
    defaults = {"price": "96000.00"}

    # Act
    with pytest.raises(BookError) as err:
        order(book, **{**defaults, **params})

    # Assert
    assert err.value.code == code
    assert book.open_orders() == [] and book.events == []


def test_min_notional_is_waived_for_reduce_only():
    """-4164 does not apply to a reduce-only order (Binance: "unless you choose reduce only")."""
    # Arrange
    book = flat_book()

    # Act
    accepted, _ = order(book, side="SELL", quantity="0.001", price="98000.00", reduceOnly="true")

    # Assert
    assert accepted.status is OrderStatus.NEW


def test_hedge_mode_needs_long_or_short_and_closes_by_position_side():
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
    assert position(book, PositionSide.LONG) == 0 and position(book, PositionSide.SHORT) == 0


def test_position_mode_cannot_change_with_open_orders():
    """POST positionSide/dual: -4059 no change, -4067 with open orders."""
    # Arrange
    book = flat_book()
    order(book, price="90000.00")

    # Act
    codes = []
    for value in (False, True):
        with pytest.raises(BookError) as err:
            book.set_dual(value, T0 + 1)
        codes.append(err.value.code)

    # Assert
    assert codes == [-4059, -4067]


def _scenario(book: Book) -> None:
    """An entry below the price and a close-all stop below it, on the default (walking) path."""
    order(book, price="96000.00", newClientOrderId="e")
    algo(book, triggerPrice="94000.00", closePosition="true", clientAlgoId="sl")


def test_catch_up_in_one_jump_equals_stepping_through_time():
    """advance(t+1h) at once gives exactly the fills and triggers of advancing 100 ms at a time."""
    # Arrange
    jump, steps = new_book(), new_book()
    _scenario(jump)
    _scenario(steps)

    # Act
    jump.advance(T0 + 3_600_000)
    for t in range(T0 + 100, T0 + 3_600_001, 100):
        steps.advance(t)
    jumped, stepped = jump.drain(), steps.drain()

    # Assert
    assert jumped == stepped
    statuses = [e["o"]["X"] for e in jumped if e["e"] == "ALGO_UPDATE"]
    assert statuses[-1] == "FINISHED"  # the scenario is not vacuous: the entry filled, the SL fired
    assert jump.query_order(BTC, None, "e").status is OrderStatus.FILLED
    assert jump.position(BTC, PositionSide.BOTH).amount == 0


def test_hours_of_downtime_with_resting_orders_catch_up_fast():
    """Six hours with orders resting on two symbols are processed in well under a second or two."""
    # Arrange
    book = new_book()
    order(book, price="80000.00")  # far below: never crossed
    book.new_order(
        parse_new_order(
            {
                "symbol": "ETHUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.100",
                "price": "3900.00",
            }
        ),
        T0,
    )
    start = time.perf_counter()

    # Act
    book.advance(T0 + 6 * 3_600_000)

    # Assert
    assert time.perf_counter() - start < 3.0
    assert book.last_ms == T0 + 6 * 3_600_000


def test_state_round_trips_through_the_snapshot_document():
    """dump/load keeps orders, algo orders, positions, trades, wallet, anchors and counters."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    order(book, price="90000.00", newClientOrderId="rest")
    algo(book, triggerPrice="90000.00", closePosition="true", clientAlgoId="sl")
    book.set_price(BTC, D(97100), T0 + 1000)
    snapshots = snapshot.Snapshotter()

    # Act
    text = snapshots.dump(book, {"listen_key": None})
    restored = snapshot.load(json.loads(text), 7, 0.0)

    # Assert
    assert json.loads(text) == {**snapshot.to_dict(book), "listen_key": None}
    assert snapshot.to_dict(restored) == snapshot.to_dict(book)
    assert restored.open_orders() == book.open_orders()
    assert restored.open_algos() == book.open_algos()
    assert restored.mark(BTC, T0 + 5000) == D("97100.00")


def test_the_snapshot_re_encodes_only_changed_records():
    """A second dump after one change reuses the text of every other record, and is still exact."""
    # Arrange
    book = flat_book()
    for k in range(50):
        order(book, price="90000.00", newClientOrderId=f"o{k}")
    snapshots = snapshot.Snapshotter()
    snapshots.dump(book, {})
    first = dict(snapshots._texts)

    # Act
    book.cancel_order(BTC, None, "o7", T0 + 10)
    text = snapshots.dump(book, {})

    # Assert
    changed = [k for k, (record, _) in snapshots._texts.items() if record is not first[k][0]]
    assert len(changed) == 1
    assert json.loads(text) == snapshot.to_dict(book)


def test_terminal_records_are_forgotten_after_three_days():
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
    assert list(book.orders) == [resting.order_id] and book.algos == {} and book.trades == []
    with pytest.raises(BookError) as err:
        book.query_order(BTC, filled.order_id, None)
    assert err.value.code == -2013 and book.dirty
