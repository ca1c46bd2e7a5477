"""countdownCancelAll on the book and through time: the deadline, renewal, off, what it cancels,
how it survives a restart and how a venue that was down catches up on it."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from bot_cli.core.model import AlgoStatus, OrderStatus
from bot_cli.paper.book import Book
from bot_cli.paper.funding import PERIOD_MS
from bot_cli.paper.market import PricePath
from bot_cli.paper.matching import advance
from bot_cli.paper.rules import BookError, parse_new_order
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.wal import durable_state
from tests.paper import ENTRY, T0, Clock
from tests.paper.books import BTC, algo, at, flat_book, order, updates


ETH = "ETHUSDT"
MINUTE = 60_000


def armed(book: Book, countdown_ms: int, now: int = T0) -> None:
    """POST countdownCancelAll for BTCUSDT at ``now`` (the book brought there first)."""
    book.set_countdown(BTC, countdown_ms, at(book, now))


def resting(book: Book, cid: str = "e1") -> int:
    """A BUY LIMIT far below the (flat) price: it rests until something cancels it."""
    accepted, _ = order(book, price="96000.00", newClientOrderId=cid)
    return accepted.order_id


# --- on the book ------------------------------------------------------------------------------


def test_the_countdown_cancels_at_its_deadline_and_not_before() -> None:
    """Armed for 5 s: open at +4999 ms, CANCELED at +5000 with x=CANCELED at that instant."""
    # Arrange
    book = flat_book()
    order_id = resting(book)
    armed(book, 5000)
    book.drain()

    # Act
    advance(book, T0 + 4999)
    before = book.orders[order_id].status
    advance(book, T0 + 5000)
    events = updates(book.drain(), "ORDER_TRADE_UPDATE")

    # Assert
    assert before is OrderStatus.NEW
    cancelled = book.orders[order_id]
    assert (cancelled.status, cancelled.update_time) == (OrderStatus.CANCELED, T0 + 5000)
    assert [(e["o"]["x"], e["o"]["X"], e["o"]["c"], e["T"]) for e in events] == [
        ("CANCELED", "CANCELED", "e1", T0 + 5000)
    ]
    assert book.countdowns == {}


def test_a_renewal_replaces_the_deadline() -> None:
    """Armed for 5 s, renewed at +3 s for 5 s: the order lives until +8 s, not +5 s."""
    # Arrange
    book = flat_book()
    order_id = resting(book)
    armed(book, 5000)

    # Act
    armed(book, 5000, T0 + 3000)
    advance(book, T0 + 7999)
    still_open = book.orders[order_id].is_open
    advance(book, T0 + 8000)

    # Assert
    assert still_open
    assert book.orders[order_id].status is OrderStatus.CANCELED
    assert book.orders[order_id].update_time == T0 + 8000


def test_zero_turns_the_countdown_off() -> None:
    """countdownTime=0 removes the countdown: an hour later the order still rests."""
    # Arrange
    book = flat_book()
    order_id = resting(book)
    armed(book, 5000)

    # Act
    armed(book, 0, T0 + 1000)
    advance(book, T0 + 3_600_000)

    # Assert
    assert book.countdowns == {}
    assert book.orders[order_id].is_open


def test_only_the_symbols_regular_orders_go_its_algo_orders_and_other_symbols_stay() -> None:
    """The documented behaviour: BTCUSDT's entries are cancelled; its stop and ETHUSDT's order rest."""
    # Arrange
    book = flat_book()
    first, second = resting(book, "e1"), resting(book, "e2")
    eth, _ = order(book, symbol=ETH, price="3000.00", quantity="0.100", newClientOrderId="eth")
    sl = algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")
    armed(book, 5000)
    book.drain()

    # Act
    advance(book, T0 + 5000)
    events = book.drain()

    # Assert
    assert [book.orders[i].status for i in (first, second)] == [OrderStatus.CANCELED] * 2
    assert book.orders[eth.order_id].is_open
    assert book.algos[sl.algo_id].status is AlgoStatus.NEW
    assert [e["o"]["c"] for e in updates(events, "ORDER_TRADE_UPDATE")] == ["e1", "e2"]
    assert updates(events, "ALGO_UPDATE") == []


def test_with_the_switch_on_the_algo_orders_go_too() -> None:
    """countdown_cancels_algo (set by the venue from its faults): ALGO_UPDATE X=CANCELED as well."""
    # Arrange
    book = flat_book()
    resting(book)
    sl = algo(book, triggerPrice="90000.00", quantity="0.010", clientAlgoId="sl")
    armed(book, 5000)
    book.countdown_cancels_algo = True
    book.drain()

    # Act
    advance(book, T0 + 5000)
    events = book.drain()

    # Assert
    assert [(e["e"], e["o"]["X"]) for e in events] == [
        ("ORDER_TRADE_UPDATE", "CANCELED"),
        ("ALGO_UPDATE", "CANCELED"),
    ]
    assert book.algos[sl.algo_id].status is AlgoStatus.CANCELED
    assert book.algos[sl.algo_id].update_time == T0 + 5000


def test_a_countdown_with_nothing_open_just_ends() -> None:
    """No open order at the deadline: no event, the countdown is gone, the change is to be saved."""
    # Arrange
    book = flat_book()
    armed(book, 5000)
    book.drain()

    # Act
    advance(book, T0 + 10_000)

    # Assert
    assert (book.countdowns, book.events, book.dirty) == ({}, [], True)


@pytest.mark.parametrize(
    ("symbol", "countdown_ms", "code"),
    [pytest.param("NOPEUSDT", 1000, -1121, id="unknown symbol"), pytest.param(BTC, -1, -1100, id="negative")],
)
def test_the_book_refuses_what_it_cannot_arm(symbol: str, countdown_ms: int, code: int) -> None:
    """Binance's codes, and nothing armed."""
    # Arrange
    book = flat_book()

    # Act
    with pytest.raises(BookError) as refused:
        book.set_countdown(symbol, countdown_ms, T0)

    # Assert
    assert refused.value.code == code
    assert book.countdowns == {}


class CountingBook(Book):
    """A book that counts the prices it looks up (the cost of walking time)."""

    looked = 0

    def mark(self, symbol: str, t_ms: int) -> D:
        self.looked += 1
        return super().mark(symbol, t_ms)


def test_a_countdown_alone_is_not_stepped_through() -> None:
    """A countdown 10 h out, nothing resting: advancing there looks up no price at all."""
    # Arrange
    book = CountingBook(PricePath.starting(7, 0.0005, T0), T0)
    armed(book, 10 * 3_600_000)

    # Act
    advance(book, T0 + 11 * 3_600_000)

    # Assert
    assert book.looked == 0
    assert book.countdowns == {}


def test_a_countdown_at_a_funding_time_ends_and_funding_is_paid_once() -> None:
    """Deadline == a funding time: the order is cancelled then, and the position pays once."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")  # a long that pays funding
    order_id = resting(book)
    funding_at = (T0 // PERIOD_MS + 1) * PERIOD_MS
    armed(book, funding_at - T0)

    # Act
    advance(book, funding_at + PERIOD_MS - 1)

    # Assert
    assert [f.time for f in book.funding] == [funding_at]
    assert (book.orders[order_id].status, book.orders[order_id].update_time) == (OrderStatus.CANCELED, funding_at)


# --- across a restart -------------------------------------------------------------------------


def opened(tmp_path: Path, clock: Clock, volatility: float = 0.0005) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, volatility=volatility)
    exchange.open()
    return exchange


def place_and_arm(ex: PaperExchange, params: dict[str, str], countdown_ms: int) -> int:
    """An entry and the symbol's countdown, committed; returns the order id."""
    now = ex.sync()
    accepted, _ = ex.book.new_order(parse_new_order(params), now)
    ex.book.set_countdown(BTC, countdown_ms, now)
    ex.commit()
    return accepted.order_id


def test_the_deadline_survives_restarts(tmp_path: Path) -> None:
    """Logged (WAL head), then snapshotted: after two restarts the deadline is the same and fires."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock, volatility=0.0)
    order_id = place_and_arm(first, ENTRY, MINUTE)
    first.close()
    clock.advance(10_000)
    opened(tmp_path, clock, volatility=0.0).close()  # reads the log; writes a new snapshot

    # Act
    clock.advance(10_000)
    third = opened(tmp_path, clock, volatility=0.0)
    kept = dict(third.book.countdowns)
    on_disk = durable_state(tmp_path)["countdowns"]
    clock.advance(MINUTE)
    third.sync()

    # Assert
    assert kept == on_disk == {BTC: T0 + MINUTE}
    assert third.book.orders[order_id].status is OrderStatus.CANCELED
    assert third.book.orders[order_id].update_time == T0 + MINUTE
    assert durable_state(tmp_path)["countdowns"] == {}
    third.close()


def lowest(path: PricePath, start: int, end: int) -> D:
    """The lowest step price of BTCUSDT in (start, end]."""
    return min(path.price_at(BTC, t) for t in range(start + 100, end + 1, 100))


def first_at_or_below(path: PricePath, price: D, start: int, end: int) -> int | None:
    return next((t for t in range(start + 100, end + 1, 100) if path.price_at(BTC, t) <= price), None)


def down_past_the_deadline(tmp_path: Path, countdown_ms: int) -> tuple[OrderStatus, int, int]:
    """A BUY LIMIT just below the path's low of the first minute, armed or not, venue down 1 h:
    (its status after the restart, its update time, when the path first reaches it)."""
    clock = Clock()
    path = PricePath.starting(7, 0.0005, T0)
    limit = lowest(path, T0, T0 + MINUTE) - D("0.10")
    first = opened(tmp_path, clock)  # seed 7, volatility 0.0005: the same path
    order_id = place_and_arm(first, {**ENTRY, "price": str(limit)}, countdown_ms)
    first.close()
    clock.advance(3_600_000)
    second = opened(tmp_path, clock)
    final = second.book.orders[order_id]
    second.close()
    crossed = first_at_or_below(path, limit, T0, T0 + 3_600_000)
    assert crossed is not None, "the path must reach the limit within the hour for the test to mean anything"
    return final.status, final.update_time, crossed


def test_a_venue_down_past_the_deadline_cancels_at_the_deadline_before_a_later_crossing(tmp_path: Path) -> None:
    """The path reaches the limit only after the deadline: the countdown wins, nothing fills."""
    # Act
    status, cancelled_at, crossed = down_past_the_deadline(tmp_path / "armed", MINUTE)
    control, filled_at, _ = down_past_the_deadline(tmp_path / "control", 0)

    # Assert
    assert crossed > T0 + MINUTE
    assert (status, cancelled_at) == (OrderStatus.CANCELED, T0 + MINUTE)
    assert control is OrderStatus.FILLED  # without the countdown the same order fills...
    assert filled_at >= crossed  # ...when the path reaches it, after the deadline
