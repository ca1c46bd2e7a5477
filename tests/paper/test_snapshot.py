"""The book as one JSON document (what ``exchange.json`` holds), and back."""

from __future__ import annotations

import json
from decimal import Decimal as D

from bot_cli.paper import snapshot
from tests.paper import T0
from tests.paper.books import BTC, algo, at, flat_book, move, order


def test_state_round_trips_through_the_snapshot_document() -> None:
    """dump/load keeps orders, algo orders, positions, trades, wallet, anchors and counters."""
    # Arrange
    book = flat_book()
    order(book, type="MARKET")
    order(book, price="90000.00", newClientOrderId="rest")
    algo(book, triggerPrice="90000.00", closePosition="true", clientAlgoId="sl")
    move(book, D(97100), T0 + 1000)
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


def test_the_snapshot_re_encodes_only_changed_records() -> None:
    """A second dump after one change reuses the text of every other record, and is still exact."""
    # Arrange
    book = flat_book()
    for k in range(50):
        order(book, price="90000.00", newClientOrderId=f"o{k}")
    snapshots = snapshot.Snapshotter()
    snapshots.dump(book, {})
    first = dict(snapshots._texts)

    # Act
    book.cancel_order(BTC, None, "o7", at(book, T0 + 10))
    text = snapshots.dump(book, {})

    # Assert
    changed = [k for k, (record, _) in snapshots._texts.items() if record is not first[k][0]]
    assert len(changed) == 1
    assert json.loads(text) == snapshot.to_dict(book)
