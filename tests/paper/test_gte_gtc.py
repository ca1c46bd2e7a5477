"""timeInForce=GTE_GTC on algo orders: accepted and echoed, and EXPIRED when a fill leaves every
position of the symbol flat (Binance's ALGO_UPDATE docs), never while one side still holds."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.core.model import AlgoStatus, PositionSide
from bot_cli.paper import shapes
from bot_cli.paper.book import Book
from bot_cli.paper.matching import advance
from bot_cli.paper.rules import BookError, parse_new_algo, parse_new_order
from bot_cli.paper.service import PaperExchange
from tests.paper import SL, T0, Clock, signed
from tests.paper.books import BTC, algo, at, flat_book, move, order, position, updates
from tests.paper.test_countdown_api import call


GTE = {"timeInForce": "GTE_GTC"}
STOP = {"algoType": "CONDITIONAL", "symbol": BTC, "side": "SELL", "type": "STOP_MARKET"}
CLOSE_SL = {"triggerPrice": "94000.00", "closePosition": "true", **GTE}
CLOSE_TP = {"type": "TAKE_PROFIT_MARKET", "triggerPrice": "99000.00", "closePosition": "true", **GTE}


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tif", ["GTC", "IOC", "FOK", "GTX", "GTD", "RPI", "GTE_GTC"])
def test_every_known_time_in_force_is_kept_and_echoed(tif: str) -> None:
    """The SDK's enum and GTE_GTC: stored, in the POST answer and in ALGO_UPDATE ``f``."""
    # Arrange
    book = flat_book()

    # Act
    placed = algo(book, triggerPrice="90000.00", quantity="0.010", timeInForce=tif)

    # Assert
    assert placed.time_in_force == tif
    assert shapes.algo_response(placed, "new")["timeInForce"] == tif
    assert [e["o"]["f"] for e in updates(book.drain(), "ALGO_UPDATE")] == [tif]


def test_no_time_in_force_is_gtc() -> None:
    """Absent (or empty), timeInForce defaults to GTC, as before."""
    # Act
    placed = algo(flat_book(), triggerPrice="90000.00", quantity="0.010", timeInForce="")

    # Assert
    assert placed.time_in_force == "GTC"


@pytest.mark.parametrize("tif", ["GTE", "gte_gtc", "DAY", "GTC "])
def test_an_unknown_time_in_force_is_refused_with_1115(tif: str) -> None:
    """-1115 "Invalid timeInForce." for anything else."""
    # Arrange
    params = {**SL, "timeInForce": tif}

    # Act
    with pytest.raises(BookError) as refused:
        parse_new_algo(params)

    # Assert
    assert (refused.value.code, refused.value.msg) == (-1115, "Invalid timeInForce.")


def test_over_http_the_answer_echoes_it_and_an_unknown_one_is_400(tmp_path: Path) -> None:
    """POST /fapi/v1/algoOrder: GTE_GTC accepted with no position; "DAY" answers 400 -1115."""

    # Arrange
    async def steps(client: httpx.AsyncClient, ex: PaperExchange, clock: Clock) -> list[Any]:
        good = await client.post(f"/fapi/v1/algoOrder?{signed({**SL, **GTE}, clock())}")
        day = {**SL, "timeInForce": "DAY", "clientAlgoId": "x"}
        bad = await client.post(f"/fapi/v1/algoOrder?{signed(day, clock())}")
        return [good, bad]

    # Act
    good, bad = call(tmp_path, steps)

    # Assert
    assert (good.status_code, good.json()["timeInForce"], good.json()["algoStatus"]) == (200, "GTE_GTC", "NEW")
    assert (bad.status_code, bad.json()["code"]) == (400, -1115)


# --- expired when the symbol goes flat ----------------------------------------------------------


def long_with_brackets(book: Book) -> tuple[int, int, int]:
    """A long 0.010, a GTE_GTC close-all SL and TP, and a plain GTC reduce-only SL below them."""
    order(book, type="MARKET")
    sl = algo(book, clientAlgoId="sl", **CLOSE_SL)
    tp = algo(book, side="SELL", clientAlgoId="tp", **CLOSE_TP)
    plain = algo(book, triggerPrice="93000.00", quantity="0.010", reduceOnly="true", clientAlgoId="plain")
    book.drain()
    return sl.algo_id, tp.algo_id, plain.algo_id


def test_the_tp_closing_the_position_expires_the_gte_sl() -> None:
    """TP fires and flattens: the SL expires at the fill's time (ALGO_UPDATE X=EXPIRED, f=GTE_GTC);
    the plain GTC stop stays."""
    # Arrange
    book = flat_book()
    sl, tp, plain = long_with_brackets(book)

    # Act
    move(book, D(99500), T0 + 1000)
    advance(book, T0 + 1100)
    events = book.drain()

    # Assert
    algo_updates = [(e["o"]["caid"], e["o"]["X"], e["o"]["f"], e["T"]) for e in updates(events, "ALGO_UPDATE")]
    assert algo_updates == [
        ("tp", "TRIGGERED", "GTE_GTC", T0 + 1100),
        ("sl", "EXPIRED", "GTE_GTC", T0 + 1100),
        ("tp", "FINISHED", "GTE_GTC", T0 + 1100),
    ]
    assert (book.algos[sl].status, book.algos[sl].update_time) == (AlgoStatus.EXPIRED, T0 + 1100)
    assert book.algos[tp].status is AlgoStatus.FINISHED
    assert book.algos[plain].status is AlgoStatus.NEW
    assert position(book) == 0


def test_a_client_close_expires_both_legs() -> None:
    """A MARKET SELL of the whole long: both GTE_GTC legs expire, at the order's time."""
    # Arrange
    book = flat_book()
    sl, tp, plain = long_with_brackets(book)

    # Act
    order(book, T0 + 500, side="SELL", type="MARKET")

    # Assert
    assert [(book.algos[i].status, book.algos[i].update_time) for i in (sl, tp)] == [(AlgoStatus.EXPIRED, T0 + 500)] * 2
    assert book.algos[plain].status is AlgoStatus.NEW


def test_a_partial_close_leaves_them() -> None:
    """Half of the long sold: a position remains, nothing expires."""
    # Arrange
    book = flat_book()
    sl, tp, _ = long_with_brackets(book)

    # Act
    order(book, T0 + 500, side="SELL", type="MARKET", quantity="0.005")

    # Assert
    assert position(book) == D("0.005")
    assert [book.algos[i].status for i in (sl, tp)] == [AlgoStatus.NEW] * 2


def test_placed_with_no_position_it_rests_until_a_fill_leaves_the_symbol_flat() -> None:
    """Accepted while flat (undocumented on Binance); the opening fill keeps it, the closing one
    expires it."""
    # Arrange
    book = flat_book()
    placed = algo(book, side="SELL", clientAlgoId="tp", **CLOSE_TP)

    # Act
    order(book, T0 + 100, type="MARKET")
    after_open = book.algos[placed.algo_id].status
    order(book, T0 + 200, side="SELL", type="MARKET")

    # Assert
    assert after_open is AlgoStatus.NEW
    assert book.algos[placed.algo_id].status is AlgoStatus.EXPIRED


def test_another_symbols_gte_order_stays() -> None:
    """BTCUSDT going flat expires BTCUSDT's GTE_GTC orders only."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    eth = algo(book, symbol="ETHUSDT", triggerPrice="3000.00", quantity="0.100", **GTE)

    # Act
    order(book, T0 + 100, side="SELL", type="MARKET")

    # Assert
    assert book.algos[eth.algo_id].status is AlgoStatus.NEW


def hedged(book: Book) -> int:
    """Hedge mode, long and short 0.010 each, a GTE_GTC close-all stop on the long."""
    book.set_dual(True, at(book, T0))
    order(book, type="MARKET", positionSide="LONG")
    order(book, side="SELL", type="MARKET", positionSide="SHORT")
    return algo(book, positionSide="LONG", clientAlgoId="long-sl", **CLOSE_SL).algo_id


def test_in_hedge_mode_one_side_left_keeps_it() -> None:
    """The long closed while the short remains: the symbol is not flat, the stop stays NEW."""
    # Arrange
    book = flat_book()
    stop = hedged(book)

    # Act
    order(book, T0 + 100, side="SELL", type="MARKET", positionSide="LONG")

    # Assert
    assert (position(book, PositionSide.LONG), position(book, PositionSide.SHORT)) == (D(0), D("-0.010"))
    assert book.algos[stop].status is AlgoStatus.NEW


def test_in_hedge_mode_both_sides_closed_expires_it() -> None:
    """Then the short closed too: both sides flat, the stop expires."""
    # Arrange
    book = flat_book()
    stop = hedged(book)
    order(book, T0 + 100, side="SELL", type="MARKET", positionSide="LONG")

    # Act
    order(book, T0 + 200, type="MARKET", positionSide="SHORT")

    # Assert
    assert (book.algos[stop].status, book.algos[stop].update_time) == (AlgoStatus.EXPIRED, T0 + 200)


def test_the_sl_firing_while_the_venue_is_down_expires_the_tp(tmp_path: Path) -> None:
    """The nautilus #4043 case: the stop closes the position during downtime; after the restart
    the GTE_GTC TP is EXPIRED on disk, not left to fire as a stale exit."""
    # Arrange
    clock = Clock()
    first = PaperExchange(tmp_path, clock=clock, volatility=0.0)
    first.open()
    now = first.sync()
    first.book.new_order(parse_new_order({"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.010"}), now)
    first.book.new_algo(parse_new_algo({**STOP, **CLOSE_SL, "clientAlgoId": "sl"}), now)
    tp = first.book.new_algo(parse_new_algo({**STOP, **CLOSE_TP, "clientAlgoId": "tp"}), now)
    first.commit()
    first.set_price(BTC, D(93000))  # the stop will trigger on the next step: the venue stops first
    first.close()

    # Act
    clock.advance(60_000)
    second = PaperExchange(tmp_path, clock=clock, volatility=0.0)
    second.open()

    # Assert
    assert second.book.query_algo(None, "sl").status is AlgoStatus.FINISHED
    assert second.book.algos[tp.algo_id].status is AlgoStatus.EXPIRED
    assert second.book.position(BTC, PositionSide.BOTH).amount == 0
    second.close()
