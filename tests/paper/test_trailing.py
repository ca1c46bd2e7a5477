"""TRAILING_STOP_MARKET in the paper venue's Algo Service: parameters and refusals, activation,
following the extreme, firing on the pull-back, catch-up in skipped seconds, persistence."""

from __future__ import annotations

import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.model import AlgoStatus, OrderStatus, Side
from bot_cli.paper import shapes
from bot_cli.paper.book import Book
from bot_cli.paper.market import PricePath
from bot_cli.paper.matching import STEP_MS, advance
from bot_cli.paper.records import Algo, from_json, to_json
from bot_cli.paper.rules import BookError, parse_new_algo, parse_new_order
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.wal import durable_state
from tests.paper import T0, Clock, new_book
from tests.paper.books import BTC, algo, flat_book, move, order, position, updates


HOUR_MS = 3_600_000
CLOSE_ALL_REFUSED = "Target strategy invalid for orderType TRAILING_STOP_MARKET,closePosition true"


def trailing(book: Book, now: int = T0, /, **params: str) -> Algo:
    """A trailing stop (SELL 0.010, callbackRate 1) from wire parameters at ``now``."""
    base = {"type": "TRAILING_STOP_MARKET", "quantity": "0.010", "callbackRate": "1"}
    return algo(book, now, **{**base, **params})


def refused(book: Book, **params: str) -> BookError:
    with pytest.raises(BookError) as err:
        trailing(book, **params)
    return err.value


def algo_updates(book: Book) -> list[dict[str, Any]]:
    return [e["o"] for e in updates(book.drain(), "ALGO_UPDATE")]


def first_fire(path: PricePath, side: Side, rate: D, start: int, end: int,
               activate: D | None = None) -> tuple[int, D] | None:  # fmt: skip
    """The oracle: step the path 100 ms at a time from ``start`` as Binance's rule says (reference
    §4.2) and return the first (time, price) at which the trailing stop fires."""
    sell = side is Side.SELL
    extreme = path.price_at(BTC, start) if activate is None else None
    for t in range(start + STEP_MS, end + 1, STEP_MS):
        price = path.price_at(BTC, t)
        if extreme is None:
            assert activate is not None
            if (price >= activate) if sell else (price <= activate):
                extreme = price
            continue
        extreme = max(extreme, price) if sell else min(extreme, price)
        if (price <= extreme * (1 - rate / 100)) if sell else (price >= extreme * (1 + rate / 100)):
            return t, price
    return None


def fired_at(book: Book, placed: Algo) -> tuple[int, D]:
    """(trigger time, fill price) of a trailing stop that fired."""
    done = book.query_algo(placed.algo_id, None)
    assert done.status is AlgoStatus.FINISHED, done
    return done.trigger_time, done.actual_price


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "shown"), [("0.1", "0.1"), ("20", "20.0"), ("1.0", "1.0"), ("5.5", "5.5")])
def test_callback_rates_from_0_1_to_20_are_accepted(rate: str, shown: str) -> None:
    """0.1 and 20 (the 2026-10-23 maximum) are inside; the POST answer echoes it with one decimal."""
    # Act
    placed = trailing(flat_book(), callbackRate=rate)

    # Assert
    assert placed.callback_rate == D(rate)
    assert shapes.algo_response(placed, "new")["callbackRate"] == shown


@pytest.mark.parametrize(
    ("rate", "code"),
    [
        ("0.09", -1130),  # below 0.1
        ("20.1", -1130),  # above 20
        ("0", -1130),
        ("0.15", -1130),  # not a step of 0.1
        ("-1", -1100),  # not a decimal Binance reads
        ("", -1102),  # callbackRate is mandatory for this type
    ],
)
def test_callback_rates_outside_the_range_are_refused(rate: str, code: int) -> None:
    """Out of [0.1, 20], off the 0.1 step, malformed or missing: refused, nothing placed."""
    # Arrange
    book = flat_book()

    # Act
    err = refused(book, callbackRate=rate)

    # Assert
    assert err.code == code
    if code == -1130:
        assert "callbackRate" in err.msg
    assert book.open_algos() == []


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"triggerPrice": "96000.00"}, -1106, "Parameter 'triggerPrice' sent when not required."),
        ({"closePosition": "true", "quantity": ""}, -4136, CLOSE_ALL_REFUSED),
        ({"activatePrice": "98000.05"}, -4014, "Price not increased by tick size."),
        ({"activatePrice": "0"}, -4135, "Invalid activation price."),
    ],
)
def test_a_trailing_stop_takes_no_trigger_price_no_close_position_and_an_activate_price_on_the_tick(
    params: dict[str, str], code: int, msg: str
) -> None:
    """triggerPrice is not this type's (-1106); closePosition neither (-4136); activatePrice on
    the symbol's tick (-4014) and its price range (-4135)."""
    # Act
    err = refused(flat_book(), **params)

    # Assert
    assert (err.code, err.msg) == (code, msg)


@pytest.mark.parametrize(
    ("side", "activate"),
    [
        ("SELL", "97000.00"),  # the price itself: not above it
        ("SELL", "96000.00"),
        ("BUY", "97000.00"),  # not below it
        ("BUY", "98000.00"),
    ],
)
def test_an_activate_price_on_the_wrong_side_would_trigger_at_once(side: str, activate: str) -> None:
    """-2021 "Order would immediately trigger.": a SELL's activatePrice not above the price (97000),
    a BUY's not below it (reference §4.2)."""
    # Act
    err = refused(flat_book(), side=side, activatePrice=activate)

    # Assert
    assert (err.code, err.msg) == (-2021, "Order would immediately trigger.")


def test_the_answers_carry_the_trailing_fields_the_sdk_models_have() -> None:
    """POST: activatePrice and callbackRate (the price at placement when none was sent); the query
    and list models have no such keys; triggerPrice is "0"; other types keep "" for both."""
    # Arrange
    book = flat_book()

    # Act
    sent = trailing(book, activatePrice="98000.00", callbackRate="2.5")
    default = trailing(book, side="BUY")
    stop = algo(book, triggerPrice="96000.00", quantity="0.010")

    # Assert
    new = shapes.algo_response(sent, "new")
    assert (new["orderType"], new["activatePrice"], new["callbackRate"], new["triggerPrice"]) == (
        "TRAILING_STOP_MARKET", "98000.00", "2.5", "0",
    )  # fmt: skip
    assert shapes.algo_response(default, "new")["activatePrice"] == "97000.00"
    assert {k: shapes.algo_response(stop, "new")[k] for k in ("activatePrice", "callbackRate")} == {
        "activatePrice": "", "callbackRate": "",
    }  # fmt: skip
    for kind in ("query", "open", "all"):
        assert "activatePrice" not in shapes.algo_response(sent, kind)


# --- trailing -----------------------------------------------------------------------------------


def test_a_sell_follows_the_price_up_and_fires_on_the_pull_back_at_the_first_step_past_the_rate() -> None:
    """Highest 99000, rate 1 %: 98020 is not enough; 98010 (= 99000 x 0.99) fires, at that price,
    on the next step; the child fills reduce-only and the long is closed."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")  # long 0.010 at 97000
    placed = trailing(book, reduceOnly="true", clientAlgoId="tr-1")
    move(book, D(98000), T0 + 1000)
    move(book, D(99000), T0 + 2000)
    move(book, D("98020.00"), T0 + 3000)
    advance(book, T0 + 4000)
    followed = book.query_algo(placed.algo_id, None)
    book.drain()

    # Act
    move(book, D("98010.00"), T0 + 4000)
    advance(book, T0 + 4200)
    events = book.drain()

    # Assert
    assert (followed.status, followed.extreme) == (AlgoStatus.NEW, D(99000))  # not before
    fills = [e["o"] for e in updates(events, "ORDER_TRADE_UPDATE") if e["o"]["x"] == "TRADE"]
    assert [(f["c"], f["o"], f["ot"], f["R"], f["L"], f["T"]) for f in fills] == [
        ("tr-1", "MARKET", "TRAILING_STOP_MARKET", True, "98010.00", T0 + 4100),
    ]
    assert D(fills[0]["L"]) <= D(99000) * (1 - D(1) / 100) < D("98020.00")
    assert [(e["o"]["X"], e["o"]["ia"]) for e in updates(events, "ALGO_UPDATE")] == [
        ("TRIGGERED", True), ("FINISHED", True),
    ]  # fmt: skip
    assert fired_at(book, placed) == (T0 + 4100, D("98010.00"))
    assert position(book) == 0


def test_prices_set_between_two_steps_count_for_the_extreme() -> None:
    """Prices set by hand within one 100 ms step are each seen: the high of 99500, set and
    replaced before the next step, is the extreme; 98600 is not 1 % off it, 98400 is."""
    # Arrange
    book = flat_book()
    placed = trailing(book, activatePrice="97500.00")
    for price in ("97500", "98500", "99500", "98600"):
        move(book, D(price), T0 + 1050)
    advance(book, T0 + 1100)
    kept = book.query_algo(placed.algo_id, None)

    # Act
    move(book, D(98400), T0 + 1150)
    advance(book, T0 + 1200)

    # Assert
    assert (kept.status, kept.activated, kept.extreme) == (AlgoStatus.NEW, True, D(99500))
    assert fired_at(book, placed) == (T0 + 1200, D("98400.00"))


def test_a_buy_mirrors_it_following_the_low_and_firing_on_the_bounce() -> None:
    """Lowest 95000, rate 2 %: 96850 is not enough; 96900 (= 95000 x 1.02) fires."""
    # Arrange
    book = flat_book()
    placed = trailing(book, side="BUY", callbackRate="2")
    move(book, D(96000), T0 + 1000)
    move(book, D(95000), T0 + 2000)
    move(book, D("96850.00"), T0 + 3000)
    advance(book, T0 + 4000)
    assert book.query_algo(placed.algo_id, None).status is AlgoStatus.NEW

    # Act
    move(book, D("96900.00"), T0 + 4000)
    advance(book, T0 + 4100)

    # Assert
    assert fired_at(book, placed) == (T0 + 4100, D("96900.00"))
    assert position(book) == D("0.010")  # not reduce-only: the BUY opened a long


def test_with_an_activate_price_it_does_nothing_until_the_price_gets_there() -> None:
    """A SELL with activatePrice 99000: a rise to 98500 and a fall of more than the rate do
    nothing; at 99000 it activates (NEW, ia true) and trails from there."""
    # Arrange
    book = flat_book()
    placed = trailing(book, activatePrice="99000.00")
    placement = algo_updates(book)
    move(book, D(98500), T0 + 1000)
    move(book, D(90000), T0 + 2000)  # 8.6 % below the high so far: would fire if it trailed
    advance(book, T0 + 3000)
    idle = book.query_algo(placed.algo_id, None)
    quiet = algo_updates(book)

    # Act
    move(book, D(99500), T0 + 3000)
    advance(book, T0 + 3100)
    activation = algo_updates(book)
    move(book, D("98505.00"), T0 + 4000)  # 99500 x 0.99
    advance(book, T0 + 4100)

    # Assert
    assert [(a["X"], a["ia"]) for a in placement] == [("NEW", False)]
    assert (idle.status, idle.activated, quiet) == (AlgoStatus.NEW, False, [])
    assert [(a["X"], a["ia"]) for a in activation] == [("NEW", True)]
    assert fired_at(book, placed) == (T0 + 4100, D("98505.00"))


def test_without_an_activate_price_it_activates_at_placement_with_two_new_events() -> None:
    """NEW ia false, then NEW ia true, both at placement; a stop-loss's events carry no ``ia``."""
    # Arrange
    book = flat_book()

    # Act
    placed = trailing(book)
    events = algo_updates(book)
    algo(book, triggerPrice="96000.00", quantity="0.010")
    stop_events = algo_updates(book)

    # Assert
    assert [(a["X"], a["ia"], a["o"]) for a in events] == [
        ("NEW", False, "TRAILING_STOP_MARKET"), ("NEW", True, "TRAILING_STOP_MARKET"),
    ]  # fmt: skip
    assert (placed.activated, placed.extreme) == (True, D(97000))
    assert ["ia" in a for a in stop_events] == [False]


def test_a_reduce_only_trailing_stop_with_nothing_to_reduce_expires() -> None:
    """As the other algo orders: fired on a flat position, it expires with a reason, opens nothing."""
    # Arrange
    book = flat_book()
    placed = trailing(book, reduceOnly="true")
    book.drain()

    # Act
    move(book, D(95000), T0 + 1000)
    advance(book, T0 + 1100)

    # Assert
    assert [(a["X"], a.get("rm"), a["ia"]) for a in algo_updates(book)] == [("EXPIRED", "Reduce Only reject", True)]
    assert book.query_algo(placed.algo_id, None).status is AlgoStatus.EXPIRED
    assert position(book) == 0


def test_a_trailing_stop_expired_by_a_fill_in_the_same_step_stays_expired() -> None:
    """A close-all TP fires and the symbol goes flat: the GTE_GTC trailing stop expires in that
    step and is not brought back by following the new high of the same step."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    algo(book, type="TAKE_PROFIT_MARKET", triggerPrice="98000.00", closePosition="true", timeInForce="GTE_GTC")
    placed = trailing(book, callbackRate="5", reduceOnly="true", timeInForce="GTE_GTC")
    book.drain()

    # Act
    move(book, D(99000), T0 + 1000)
    advance(book, T0 + 2000)

    # Assert
    assert [(a["o"], a["X"]) for a in algo_updates(book)] == [
        ("TAKE_PROFIT_MARKET", "TRIGGERED"), ("TRAILING_STOP_MARKET", "EXPIRED"), ("TAKE_PROFIT_MARKET", "FINISHED"),
    ]  # fmt: skip
    assert book.query_algo(placed.algo_id, None).status is AlgoStatus.EXPIRED
    assert book.open_algos() == []


def test_an_algo_row_saved_before_trailing_stops_existed_still_loads() -> None:
    """The four trailing fields are new in the records: absent in an older state, they default."""
    # Arrange
    row = to_json(algo(flat_book(), triggerPrice="96000.00", quantity="0.010"))
    for name in ("activate_price", "callback_rate", "activated", "extreme"):
        del row[name]

    # Act
    loaded = from_json(Algo, row)

    # Assert
    assert (loaded.activate_price, loaded.callback_rate, loaded.activated, loaded.extreme) == (D(0), D(0), False, D(0))


# --- catch-up: skipped seconds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "rate", "offset"),
    [
        ("SELL", "0.3", None),  # fires within minutes
        ("BUY", "0.3", None),
        ("SELL", "0.2", D("1.001")),  # activates once the path is 0.1 % up
        ("BUY", "0.2", D("0.999")),
        ("SELL", "2", None),  # fires after about 20 minutes of new highs and small pull-backs
        ("SELL", "1.5", D("1.003")),  # about 14 minutes
        ("BUY", "1", D("0.997")),  # about 11 minutes
    ],
)
def test_an_hour_in_one_jump_fires_at_the_step_the_rule_says(side: str, rate: str, offset: D | None) -> None:
    """On the walking path, advance(+1 h) at once fires at exactly the (time, price) of stepping the
    path every 100 ms by Binance's rule: no skipped second hides an activation or a pull-back."""
    # Arrange
    book = new_book()
    activate = None if offset is None else book.path.anchors[BTC].p0 * offset
    extra = {} if activate is None else {"activatePrice": str(activate.quantize(D("0.10")))}
    placed = trailing(book, side=side, callbackRate=rate, **extra)
    expected = first_fire(book.path, Side(side), D(rate), T0, T0 + HOUR_MS,
                          None if activate is None else placed.activate_price)  # fmt: skip

    # Act
    advance(book, T0 + HOUR_MS)

    # Assert
    assert expected is not None  # not vacuous: it fires within the hour
    assert fired_at(book, placed) == expected


def _trailing_scenario(book: Book) -> None:
    """An entry, a trailing stop with an activatePrice and one without, on the walking path."""
    order(book, price="96900.00", newClientOrderId="e")
    trailing(book, callbackRate="2", activatePrice="97300.00", clientAlgoId="tr-a")
    trailing(book, side="BUY", callbackRate="1", clientAlgoId="tr-b")


def test_catch_up_in_one_jump_equals_stepping_through_time() -> None:
    """advance(+1 h) at once gives exactly the events and records of advancing 100 ms at a time."""
    # Arrange
    jump, steps = new_book(), new_book()
    _trailing_scenario(jump)
    _trailing_scenario(steps)

    # Act
    advance(jump, T0 + HOUR_MS)
    for t in range(T0 + STEP_MS, T0 + HOUR_MS + 1, STEP_MS):
        advance(steps, t)

    # Assert
    assert jump.drain() == steps.drain()
    assert jump.algos == steps.algos
    assert [jump.query_algo(None, c).status for c in ("tr-a", "tr-b")] == [AlgoStatus.FINISHED] * 2


def test_an_hour_of_downtime_with_trailing_stops_catches_up_fast_and_keeps_the_extremes() -> None:
    """Four trailing stops far from firing (rate 20 %, or an activatePrice out of reach) on two
    symbols: an hour is processed well under a second, and each extreme is the hour's high or low."""
    # Arrange
    book = new_book()
    sell = trailing(book, callbackRate="20")
    buy = trailing(book, side="BUY", callbackRate="20")
    trailing(book, callbackRate="20", activatePrice="190000.00")
    trailing(book, symbol="ETHUSDT", side="BUY", quantity="0.100", callbackRate="20", activatePrice="1000.00")
    start = time.perf_counter()

    # Act
    advance(book, T0 + HOUR_MS)

    # Assert
    assert time.perf_counter() - start < 1.0
    prices = [book.mark(BTC, t) for t in range(T0, T0 + HOUR_MS + 1, STEP_MS)]
    assert book.query_algo(sell.algo_id, None).extreme == max(prices)
    assert book.query_algo(buy.algo_id, None).extreme == min(prices)
    assert [a.status for a in book.open_algos()] == [AlgoStatus.NEW] * 4


# --- persistence --------------------------------------------------------------------------------


def opened(tmp_path: Path, clock: Clock, **kwargs: Any) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, **kwargs)
    exchange.open()
    return exchange


TRAIL = {"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL", "type": "TRAILING_STOP_MARKET",
         "quantity": "0.010", "callbackRate": "1", "clientAlgoId": "tr"}  # fmt: skip


def test_the_extreme_is_persisted_and_trailing_goes_on_after_a_restart(tmp_path: Path) -> None:
    """The high of 99000 is on disk (and in the logged change); after a restart a pull-back to
    98010 (1 % off 99000, far above 1 % off the 97000 at placement) fires."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock, volatility=0.0)
    first.book.new_order(parse_new_order({"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.010"}),
                         clock())  # fmt: skip
    first.book.new_algo(parse_new_algo({**TRAIL, "reduceOnly": "true"}), clock())
    first.commit()
    clock.advance(1000)
    first.set_price(BTC, D(99000))
    clock.advance(1000)
    first.sync()
    first.close()
    (row,) = durable_state(tmp_path)["algos"]

    # Act
    second = opened(tmp_path, clock, volatility=0.0)
    kept = second.book.query_algo(None, "tr")
    clock.advance(1000)
    second.set_price(BTC, D("98010.00"))
    clock.advance(STEP_MS)
    second.sync()

    # Assert
    assert (row["activated"], row["extreme"], row["callback_rate"]) == (True, "99000.00", "1")
    assert (kept.activated, kept.extreme, kept.status) == (True, D(99000), AlgoStatus.NEW)
    done = second.book.query_algo(None, "tr")
    assert (done.status, done.actual_price) == (AlgoStatus.FINISHED, D("98010.00"))
    assert second.book.position(BTC, kept.position_side).amount == 0
    second.close()


def test_catch_up_after_downtime_fires_at_the_step_the_path_says(tmp_path: Path) -> None:
    """Trailing for 20 s while up (the extreme moves and is saved), down for an hour: on restart
    the stop has fired at the (time, price) of stepping the whole path by the rule."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    placed = first.book.new_algo(parse_new_algo({**TRAIL, "callbackRate": "0.5"}), clock())
    first.commit()
    clock.advance(20_000)
    first.sync()
    before = first.book.query_algo(None, "tr")
    first.close()
    expected = first_fire(first.book.path, Side.SELL, D("0.5"), T0, T0 + HOUR_MS)

    # Act
    clock.advance(HOUR_MS)
    second = opened(tmp_path, clock)

    # Assert
    assert expected is not None
    assert expected[0] > T0 + 20_000  # it fired while the venue was down
    assert (before.status, before.extreme > placed.extreme) == (AlgoStatus.NEW, True)
    assert fired_at(second.book, placed) == expected
    assert second.book.events == []  # what happened while down is not replayed
    child = second.book.orders[second.book.query_algo(None, "tr").actual_order_id]
    assert (child.status, child.orig_type, child.avg_price) == (OrderStatus.FILLED, "TRAILING_STOP_MARKET", expected[1])
    second.close()
