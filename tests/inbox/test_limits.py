"""POST /signal at the account's limits: 422 naming ``limit``, with nothing written.

The account is full of conditional orders another tool placed (the market lists them), or of
the journal's own entries and the legs they will place; a limit entry needs room on its
symbol's book (MAX_NUM_ORDERS). The daemon's count of foreign conditional orders is taken from
its heartbeat when the lock holder wrote it; without one the inbox reads the book itself, once
a minute at most. A filter refusal a newer exchangeInfo could lift reads it once more.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.core.model import (
    AlgoReport,
    AlgoStatus,
    ClientId,
    EntrySpec,
    OrderReport,
    OrderStatus,
    OrderType,
    Side,
)
from bot_cli.inbox import app
from bot_cli.runtime import heartbeat
from bot_cli.state_store import DaemonLock, PendingEntryStore
from tests.inbox import SIGNAL, FakeMarket, claim_key, journal, keys_written, make_inbox, post_signal, untouched


FULL = (
    "the account's open conditional orders would exceed 200: {held} in use or reserved ({foreign} not"
    " the bot's), this entry needs 2 for its stop-loss and take-profit; close or cancel entries"
    " (`bot close ID`) or cancel conditional orders first; nothing written"
)
LIMIT = {**SIGNAL, "key": "limit-1", "price": "96000"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def foreign_algos(n: int) -> list[AlgoReport]:
    return [AlgoReport("ETHUSDT", ClientId(f"manual-{i}"), i, AlgoStatus.NEW, Decimal(3000), Decimal("0.1"))
            for i in range(n)]  # fmt: skip


def foreign_orders(n: int) -> list[OrderReport]:
    return [OrderReport("BTCUSDT", ClientId(f"manual-{i}"), i, OrderStatus.NEW, Decimal(0), None, Decimal("0.001"))
            for i in range(n)]  # fmt: skip


def test_an_account_full_of_foreign_conditional_orders_refuses_a_signal(tmp_path: Path) -> None:
    market = FakeMarket()
    market.algos = foreign_algos(199)

    answer = post_signal(make_inbox(tmp_path, market), SIGNAL)

    assert answer.status_code == 422, answer.text
    assert answer.json() == {"error": FULL.format(held=199, foreign=199), "field": "limit"}
    assert untouched(tmp_path)


def test_the_journals_entries_count_with_the_legs_they_will_place(tmp_path: Path) -> None:
    """99 entries requested, 2 legs each: a 100th fits (200), a 101st does not."""
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, None, Decimal(90000), Decimal(99000))
    with PendingEntryStore(tmp_path) as store:
        for i in range(99):
            claim_key(store, f"old-{i}", spec, now_ms())
    inbox = make_inbox(tmp_path, stacking=True)  # 99 entries on one position, knowingly

    fits = post_signal(inbox, SIGNAL)
    before = journal(tmp_path)
    over = post_signal(inbox, {**SIGNAL, "key": "one-too-many"})

    assert fits.status_code == 202, fits.text
    assert over.status_code == 422, over.text
    assert over.json() == {"error": FULL.format(held=200, foreign=0), "field": "limit"}
    assert journal(tmp_path) == before
    assert "one-too-many" not in {line["key"] for line in keys_written(tmp_path)}


def test_a_limit_signal_needs_room_on_its_symbols_book(tmp_path: Path) -> None:
    """200 open orders on BTCUSDT (MAX_NUM_ORDERS 200): a limit entry is refused, a market one
    (it never rests on the book) is not."""
    market = FakeMarket()
    market.orders = foreign_orders(200)
    inbox = make_inbox(tmp_path, market)

    limit = post_signal(inbox, LIMIT)
    at_market = post_signal(inbox, SIGNAL)

    assert limit.status_code == 422, limit.text
    assert limit.json()["field"] == "limit"
    assert limit.json()["error"] == (
        "BTCUSDT would exceed MAX_NUM_ORDERS 200 open orders: 200 open (200 not the bot's); cancel some"
        " first; nothing written")  # fmt: skip
    assert at_market.status_code == 202, at_market.text


def test_the_daemons_count_is_used_when_its_heartbeat_is_the_lock_holders(tmp_path: Path) -> None:
    """The heartbeat says 199 foreign conditional orders: refused without reading the book."""
    market = FakeMarket()
    account = {"hedge_mode": False, "foreign_conditional": 199, "counted_at": now_ms()}
    (tmp_path / heartbeat.NAME).write_text(json.dumps({"pid": os.getpid(), "account": account}))

    with DaemonLock(tmp_path):
        answer = post_signal(make_inbox(tmp_path, market), SIGNAL)

    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "limit"
    assert market.book_reads == 0


def test_without_the_daemons_count_the_book_is_read_once_a_minute(tmp_path: Path) -> None:
    market = FakeMarket()
    inbox = make_inbox(tmp_path, market, stacking=True)

    answers = [post_signal(inbox, {**SIGNAL, "key": f"k{i}"}) for i in range(3)]

    assert [a.status_code for a in answers] == [202] * 3
    assert market.book_reads == 1


def test_a_filter_refusal_reads_exchange_info_once_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The venue lowered LOT_SIZE... then raised it again: the signal refused by the old list
    passes once the list is read again; one confirmed by the venue's list stays refused."""
    monkeypatch.setattr(app, "MISSING_RETRY_S", -1.0)  # every refusal may read the list again
    market = FakeMarket()
    real = market.filters["BTCUSDT"]
    market.filters["BTCUSDT"] = replace(real, max_qty=Decimal("0.005"))
    inbox = make_inbox(tmp_path, market)

    confirmed = post_signal(inbox, LIMIT)
    market.filters["BTCUSDT"] = real
    lifted = post_signal(inbox, LIMIT)

    assert confirmed.status_code == 422, confirmed.text
    assert confirmed.json()["field"] == "quantity"
    assert lifted.status_code == 202, lifted.text
    assert market.info_reads == 3  # the first read, once more to confirm, once more to lift
