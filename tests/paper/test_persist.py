"""The venue's durability: state on disk before anything leaves, catch-up after downtime, lock."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide
from bot_cli.paper import persist
from bot_cli.paper.persist import PaperLockHeld, PaperStateError
from bot_cli.paper.rules import parse_new_algo, parse_new_order
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.stream import Subscriber
from tests.paper import Clock

ENTRY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "96000.00",
    "newClientOrderId": "e",
}
CLOSE_ALL_SL = {
    "algoType": "CONDITIONAL",
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "STOP_MARKET",
    "triggerPrice": "94000.00",
    "closePosition": "true",
    "clientAlgoId": "sl",
}


def opened(tmp_path, clock: Clock, **kwargs) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, **kwargs)
    exchange.open()
    return exchange


def test_what_happened_while_down_is_there_after_restart(tmp_path):
    """Stop, let an hour pass, start: the entry filled and the SL fired meanwhile; no replay."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    first.book.new_order(parse_new_order(ENTRY), clock())
    first.book.new_algo(parse_new_algo(CLOSE_ALL_SL), clock())
    first.commit()
    first.close()

    # Act
    clock.advance(3_600_000)
    second = opened(tmp_path, clock)

    # Assert
    book = second.book
    assert book.query_order("BTCUSDT", None, "e").status is OrderStatus.FILLED
    assert book.query_algo(None, "sl").status is AlgoStatus.FINISHED
    assert book.position("BTCUSDT", PositionSide.BOTH).amount == 0
    assert book.events == [] and not book.dirty  # events of the downtime are not replayed
    on_disk = json.loads((tmp_path / "paper" / "exchange.json").read_text())
    assert on_disk["last_ms"] == clock()
    second.close()


def test_the_state_is_on_disk_before_the_events_are_pushed(tmp_path):
    """commit() writes exchange.json first; only then do the subscribers' queues get the events."""
    # Arrange
    clock = Clock()
    exchange = opened(tmp_path, clock)
    key = exchange.start_listen_key()
    sub = Subscriber(key, wrap=False)
    exchange.hub.subscribers.add(sub)
    seen_at_save: list[int] = []
    real_save = persist.save

    def spying_save(path, data):
        seen_at_save.append(sub.queue.qsize())
        real_save(path, data)

    # Act
    persist.save = spying_save
    try:
        exchange.book.new_order(
            parse_new_order({**ENTRY, "type": "MARKET", "price": "", "timeInForce": ""}), clock()
        )
        exchange.commit()
    finally:
        persist.save = real_save

    # Assert
    assert seen_at_save == [0]
    assert sub.queue.qsize() == 3  # NEW, TRADE, ACCOUNT_UPDATE
    on_disk = json.loads((tmp_path / "paper" / "exchange.json").read_text())
    assert [o["status"] for o in on_disk["orders"]] == ["FILLED"]
    exchange.close()


def test_set_price_and_listen_key_survive_a_restart(tmp_path):
    """The re-anchored price and the active listenKey are part of the saved state."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock, volatility=0.0)
    first.set_price("ETHUSDT", D("2500.123"))
    key = first.start_listen_key()
    first.close()

    # Act
    second = opened(tmp_path, clock, volatility=0.0)

    # Assert
    assert second.book.mark("ETHUSDT", clock()) == D("2500.12")
    assert second.valid_listen_key(key)
    second.close()


def test_one_venue_per_state_dir(tmp_path):
    """A second venue on the same state dir is refused (naming the holder); free after close."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)

    # Act
    with pytest.raises(PaperLockHeld) as err:
        opened(tmp_path, clock)
    first.close()
    again = opened(tmp_path, clock)

    # Assert
    assert "already serves" in str(err.value)
    again.close()


def test_a_corrupt_state_file_is_a_clear_error(tmp_path):
    """Unreadable JSON: one sentence naming the file and what to do; the lock is released."""
    # Arrange
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "exchange.json").write_text("{not json")

    # Act
    with pytest.raises(PaperStateError) as err:
        opened(tmp_path, Clock())

    # Assert
    assert "exchange.json" in str(err.value) and "move it away" in str(err.value)
    lock = persist.PaperLock(tmp_path)
    lock.acquire()  # not left held
    lock.release()


def test_saves_are_atomic_replacements(tmp_path):
    """save() leaves the new file complete and no temp file behind."""
    # Arrange
    target = persist.paper_dir(tmp_path) / "exchange.json"

    # Act
    persist.save(target, {"a": 1})
    persist.save(target, {"a": 2})

    # Assert
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["exchange.json"]
