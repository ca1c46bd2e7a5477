"""The venue's durability: state on disk before anything leaves, catch-up after downtime, lock."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from bot_cli.core.model import AlgoStatus, OrderStatus, PositionSide
from bot_cli.paper import persist
from bot_cli.paper.hub import Subscriber
from bot_cli.paper.persist import PaperLockHeld, PaperStateError
from bot_cli.paper.rules import parse_new_algo, parse_new_order
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.wal import durable_state
from tests.paper import CLOSE_ALL_SL, Clock
from tests.paper import ENTRY as SHARED_ENTRY


ENTRY = {**SHARED_ENTRY, "newClientOrderId": "e"}


def opened(tmp_path: Path, clock: Clock, **kwargs: Any) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, **kwargs)
    exchange.open()
    return exchange


def test_what_happened_while_down_is_there_after_restart(tmp_path: Path) -> None:
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
    assert book.events == []
    assert not book.dirty
    on_disk = durable_state(tmp_path)
    assert on_disk["last_ms"] == clock()
    second.close()


def test_the_state_is_on_disk_before_the_events_are_pushed(tmp_path: Path) -> None:
    """commit() makes the change durable first; only then do the subscribers' queues get the events."""
    # Arrange
    clock = Clock()
    exchange = opened(tmp_path, clock)
    seen_on_disk: list[list[str]] = []

    class Witness(Subscriber):
        """A socket that reads the state on disk as each event reaches it."""

        def offer(self, event: dict[str, Any]) -> None:
            seen_on_disk.append([o["status"] for o in durable_state(tmp_path)["orders"]])
            super().offer(event)

    sub = Witness(exchange.start_listen_key(), wrap=False)
    exchange.hub.subscribers.add(sub)
    market = {**ENTRY, "type": "MARKET", "price": "", "timeInForce": ""}

    # Act
    exchange.book.new_order(parse_new_order(market), clock())
    exchange.commit()

    # Assert
    assert seen_on_disk == [["FILLED"]] * 3  # NEW, TRADE, ACCOUNT_UPDATE: each pushed after the save
    assert sub.queue.qsize() == 3
    exchange.close()


def test_set_price_and_listen_key_survive_a_restart(tmp_path: Path) -> None:
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


def test_one_venue_per_state_dir(tmp_path: Path) -> None:
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


def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    """Unreadable JSON: one sentence naming the file and what to do; the lock is released."""
    # Arrange
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "exchange.json").write_text("{not json")

    # Act
    with pytest.raises(PaperStateError) as err:
        opened(tmp_path, Clock())

    # Assert
    assert "exchange.json" in str(err.value)
    assert "move it away" in str(err.value)
    lock = persist.PaperLock(tmp_path)
    lock.acquire()  # not left held
    lock.release()


def test_saves_are_atomic_replacements(tmp_path: Path) -> None:
    """save() leaves the new file complete and no temp file behind."""
    # Arrange
    target = persist.paper_dir(tmp_path) / "exchange.json"

    # Act
    persist.save(target, {"a": 1})
    persist.save(target, {"a": 2})

    # Assert
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["exchange.json"]


def _orders_of(exchange: PaperExchange) -> dict[str, str]:
    return {o.client_id: o.status.value for o in exchange.book.orders.values()}


def _commit_orders(exchange: PaperExchange, clock: Clock, ids: list[str]) -> None:
    for cid in ids:
        exchange.book.new_order(parse_new_order({**ENTRY, "newClientOrderId": cid}), clock())
        exchange.commit()


def test_each_change_is_one_logged_line_and_a_restart_replays_them(tmp_path: Path) -> None:
    """After the start snapshot, every commit appends one line; a restart rebuilds the same book."""
    # Arrange
    clock = Clock()
    exchange = opened(tmp_path, clock)
    _commit_orders(exchange, clock, ["a", "b", "c"])
    exchange.book.cancel_order("BTCUSDT", None, "b", clock())
    exchange.commit()
    before = _orders_of(exchange)
    exchange.close()

    # Act
    log_lines = (tmp_path / "paper" / "exchange.log").read_text().splitlines()
    again = opened(tmp_path, clock)

    # Assert
    assert len(log_lines) == 4
    assert _orders_of(again) == before == {"a": "NEW", "b": "CANCELED", "c": "NEW"}
    again.close()


def test_a_torn_last_log_line_is_ignored(tmp_path: Path) -> None:
    """A crash mid-append leaves a partial line: the restart keeps everything before it."""
    # Arrange
    clock = Clock()
    exchange = opened(tmp_path, clock)
    _commit_orders(exchange, clock, ["a", "b"])
    exchange.close()
    with (tmp_path / "paper" / "exchange.log").open("ab") as f:
        f.write(b'{"seq": 99, "o": [{"sym')

    # Act
    again = opened(tmp_path, clock)

    # Assert
    assert set(_orders_of(again)) == {"a", "b"}
    again.close()


def test_log_lines_already_in_the_snapshot_are_not_replayed(tmp_path: Path) -> None:
    """A crash after a new snapshot but before the log was emptied replays nothing twice."""
    # Arrange: "a" placed (logged), then canceled; a restart snapshots the canceled state
    clock = Clock()
    exchange = opened(tmp_path, clock)
    _commit_orders(exchange, clock, ["a"])
    log = tmp_path / "paper" / "exchange.log"
    stale = log.read_bytes()  # the line that says "a" is NEW
    exchange.book.cancel_order("BTCUSDT", None, "a", clock())
    exchange.commit()
    exchange.close()
    opened(tmp_path, clock).close()  # the start-up snapshot now holds "a" CANCELED
    log.write_bytes(stale)  # as if the crash came before the log was emptied

    # Act
    again = opened(tmp_path, clock)

    # Assert: the stale line (its seq is inside the snapshot) did not bring "a" back to NEW
    assert _orders_of(again) == {"a": "CANCELED"}
    again.close()
