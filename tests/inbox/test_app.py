"""POST /signal in memory: what is answered, and what is (and is not) written.

202 only once the entry is in the journal as REQUESTED; 409 with the first entry's id for a
key used before; every refusal answers its status with one line naming the field, and leaves
the state dir without a record or a key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot_cli.api.keys import Keys
from bot_cli.core.ids import is_pending_id
from bot_cli.core.model import PendingId, Status
from bot_cli.inbox import Inbox
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import decode
from tests.inbox import (
    SECRET,
    SIGNAL,
    FakeMarket,
    body_of,
    journal,
    keys_written,
    make_inbox,
    post,
    post_signal,
    run,
    signed,
    untouched,
)


def accepted_spec(state: Path, pid: str) -> Any:
    p = decode(journal(state)[pid])
    assert p.status is Status.REQUESTED
    return p.spec


# -- accepted ------------------------------------------------------------------------------


def test_a_signal_is_answered_202_once_its_entry_is_in_the_journal(tmp_path: Path) -> None:
    """The answer's id is a REQUESTED entry a fresh reader of the journal already sees."""
    answer = post_signal(make_inbox(tmp_path), SIGNAL)

    assert answer.status_code == 202, answer.text
    pid = answer.json()["id"]
    assert is_pending_id(pid)
    assert answer.json() == {
        "id": pid, "entry_client_id": f"{pid}-e", "status": "REQUESTED"}
    spec = accepted_spec(tmp_path, pid)
    assert (spec.symbol, spec.side.value, spec.quantity) == ("BTCUSDT", "BUY", Decimal("0.010"))
    assert (spec.price, spec.stop_loss, spec.take_profit) == (None, Decimal(90000), Decimal(99000))


@pytest.mark.parametrize(
    ("auth", "extra"),
    [
        pytest.param("hmac", {}, id="X-Bot-Signature: HMAC-SHA256 of the body"),
        pytest.param("header", {}, id="X-Bot-Secret header"),
        pytest.param("none", {"secret": SECRET}, id="secret in the body (charting alerts)"),
    ],
)
def test_each_way_to_authenticate_is_accepted(
    tmp_path: Path, auth: str, extra: dict[str, str]
) -> None:
    body = body_of({**SIGNAL, **extra})
    headers = {"hmac": signed(body), "header": {"X-Bot-Secret": SECRET}, "none": {}}[auth]

    answer = run(post(make_inbox(tmp_path), body, headers))

    assert answer.status_code == 202, answer.text
    assert SECRET not in json.dumps(journal(tmp_path))  # the body's secret is not kept


def test_percentages_and_risk_become_prices_and_a_quantity_on_tick_and_step(tmp_path: Path) -> None:
    """A buy limit: the stop rounds down, the target up (away from the entry); risk sizes down."""
    signal = {"key": "k", "symbol": "BTCUSDT", "side": "buy", "price": "96900.3",
              "sl_pct": "1", "tp_pct": 2, "risk": "50"}  # fmt: skip

    answer = post_signal(make_inbox(tmp_path), signal)

    assert answer.status_code == 202, answer.text
    spec = accepted_spec(tmp_path, answer.json()["id"])
    assert spec.stop_loss == Decimal("95931.2")  # 96900.3 x 0.99 = 95931.297
    assert spec.take_profit == Decimal("98838.4")  # 96900.3 x 1.02 = 98838.306
    assert spec.quantity == Decimal("0.051")  # 50 / (96900.3 - 95931.2) = 0.05159...


def test_a_sell_at_market_takes_percentages_from_the_mark(tmp_path: Path) -> None:
    market = FakeMarket(mark=Decimal("97000.05"))
    signal = {"key": "k", "symbol": "btcusdt", "side": "SELL", "price": "market",
              "quantity": 0.01, "sl_pct": "1", "tp_pct": "1"}  # fmt: skip

    answer = post_signal(make_inbox(tmp_path, market), signal)

    assert answer.status_code == 202, answer.text
    spec = accepted_spec(tmp_path, answer.json()["id"])
    assert (spec.side.value, spec.price, spec.quantity) == ("SELL", None, Decimal("0.01"))
    assert spec.stop_loss == Decimal("97970.1")  # 97970.0505 rounded up
    assert spec.take_profit == Decimal("96030.0")  # 96030.0495 rounded down


# -- one key, one entry --------------------------------------------------------------------


def test_the_same_key_twice_is_one_entry_and_409_names_it(tmp_path: Path) -> None:
    inbox = make_inbox(tmp_path)
    first = post_signal(inbox, SIGNAL)

    again = post_signal(inbox, {**SIGNAL, "quantity": "0.020"})  # even with other values

    assert again.status_code == 409
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["field"] == "key"
    assert "nothing new" in again.json()["error"]
    assert list(journal(tmp_path)) == [first.json()["id"]]


def test_concurrent_posts_of_one_key_make_one_entry(tmp_path: Path) -> None:
    """Twenty posts in flight at once: one 202, nineteen 409 naming the same entry."""
    inbox = make_inbox(tmp_path)
    body = body_of(SIGNAL)

    async def storm() -> list[Any]:
        return await asyncio.gather(*(post(inbox, body, signed(body)) for _ in range(20)))

    answers = run(storm())

    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * 19
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(journal(tmp_path)) == 1
    assert len(keys_written(tmp_path)) == 1


def test_a_key_stays_used_after_its_entry_is_archived(tmp_path: Path) -> None:
    """Forever: the entry left the journal (closed), the key still names it."""
    inbox = make_inbox(tmp_path)
    pid = post_signal(inbox, SIGNAL).json()["id"]
    with PendingEntryStore(tmp_path) as store:
        store.remove(pid, "closed")

    again = post_signal(inbox, SIGNAL)

    assert (again.status_code, again.json()["id"]) == (409, pid)
    assert journal(tmp_path) == {}


def test_a_key_written_before_a_crash_gets_its_entry_under_the_same_id(tmp_path: Path) -> None:
    """A crash between the key file and the journal save: the retry saves the entry under the
    id the key already names (nothing could have been sent under it), once."""
    left = Keys(tmp_path)
    left._append(SIGNAL["key"], PendingId("bc00000000000001"), 1)  # what the crash left
    left.close()
    inbox = make_inbox(tmp_path)

    retry = post_signal(inbox, SIGNAL)
    again = post_signal(inbox, SIGNAL)

    assert (retry.status_code, retry.json()["id"]) == (202, "bc00000000000001")
    assert (again.status_code, again.json()["id"]) == (409, "bc00000000000001")
    assert list(journal(tmp_path)) == ["bc00000000000001"]


# -- refusals: their status, one line naming the field, nothing written -------------------------


def B(**changes: Any) -> bytes:
    """The good signal with some fields changed (None removes one)."""
    return body_of({k: v for k, v in {**SIGNAL, **changes}.items() if v is not None})


REFUSALS = [
    pytest.param(B(), {"X-Bot-Secret": "wrong"}, 401, None, id="wrong secret header"),
    pytest.param(B(), "other-secret", 401, None, id="HMAC with another secret"),
    pytest.param(B(), {}, 401, None, id="no auth at all"),
    pytest.param(B(secret="wrong"), {}, 401, None, id="wrong secret in the body"),
    pytest.param(b'{"key": "k", "symbol": ', "sign", 400, None, id="truncated JSON"),
    pytest.param(b"\xff\xfe", "sign", 400, None, id="not UTF-8"),
    pytest.param(b'["a", "list"]', "sign", 400, None, id="JSON but not an object"),
    pytest.param(b'{"key": "a", "key": "b"}', "sign", 400, None, id="a field twice"),
    pytest.param(b'{"quantity": NaN}', "sign", 400, None, id="NaN"),
    pytest.param(B(symbol="NOPEUSDT"), "sign", 422, "symbol", id="unknown symbol"),
    pytest.param(B(quantity="121"), "sign", 422, "quantity", id="MARKET_LOT_SIZE maxQty"),
    pytest.param(B(quantity="0.0105", price="96900"), "sign", 422, "quantity", id="LOT_SIZE step"),
    pytest.param(B(quantity="0.001"), "sign", 422, "quantity", id="MIN_NOTIONAL"),
    pytest.param(B(sl="97500"), "sign", 422, "sl", id="market buy: stop above the mark"),
    pytest.param(B(tp="900000"), "sign", 422, "tp", id="PRICE_FILTER maxPrice"),
    pytest.param(B(price="112000", tp="120000"), "sign", 422, "price", id="PERCENT_PRICE"),
    pytest.param(B(sl=None, sl_pct="99.9", price="96000"), "sign", 422, "sl_pct",
                 id="a percentage giving a price below minPrice"),
    pytest.param(B(quantity=None, risk="0.5"), "sign", 422, "risk", id="risk sizes below a step"),
    pytest.param(B(tp_pc="2"), "sign", 422, "tp_pc", id="misspelt field"),
    pytest.param(B(sl=None), "sign", 422, "sl", id="no stop-loss"),
    pytest.param(B(sl_pct="1"), "sign", 422, "sl_pct", id="sl and sl_pct"),
    pytest.param(B(side="long"), "sign", 422, "side", id="side"),
    pytest.param(B(quantity="Infinity"), "sign", 422, "quantity", id="infinite"),
    pytest.param(B(quantity="-1"), "sign", 422, "quantity", id="negative"),
    pytest.param(B(quantity=True), "sign", 422, "quantity", id="a boolean"),
    pytest.param(B(key=""), "sign", 422, "key", id="empty key"),
    pytest.param(B(key="k" * 129), "sign", 422, "key", id="key too long"),
    pytest.param(B(position_side="LONG"), "sign", 422, "position_side", id="hedge-only field"),
]


@pytest.mark.parametrize(("body", "auth", "status", "field"), REFUSALS)
def test_a_refused_signal_answers_one_line_and_writes_nothing(
    tmp_path: Path, body: bytes, auth: Any, status: int, field: str | None
) -> None:
    headers = {"sign": signed(body), "other-secret": signed(body, "another-secret-0123456789")}
    market = FakeMarket()

    chosen = headers[auth] if isinstance(auth, str) else auth

    answer = run(post(make_inbox(tmp_path, market), body, chosen))

    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert isinstance(error, str)
    assert error
    assert "\n" not in error
    assert answer.json().get("field") == field
    assert untouched(tmp_path)


def test_a_signal_that_would_net_against_an_entry_is_422_and_writes_nothing(tmp_path: Path) -> None:
    """A BUY was accepted (REQUESTED); a SELL on BTCUSDT (one-way) would net against it."""
    inbox = make_inbox(tmp_path)
    buy = post_signal(inbox, SIGNAL).json()["id"]
    before = journal(tmp_path)

    answer = post_signal(inbox, {**SIGNAL, "key": "other", "side": "sell", "sl": "99000", "tp": "90000"})

    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "side"
    assert answer.json()["error"].startswith(f"BTCUSDT already has a BUY entry {buy} (REQUESTED)")
    assert journal(tmp_path) == before
    assert [line["key"] for line in keys_written(tmp_path)] == [SIGNAL["key"]]  # "other" not spent


def test_the_messages_name_the_filter_and_what_was_computed(tmp_path: Path) -> None:
    """As `bot enter` words it; a computed value says where it came from."""
    inbox = make_inbox(tmp_path)

    plain = post_signal(inbox, {**SIGNAL, "sl": "200"}).json()["error"]
    computed = post_signal(inbox, {**SIGNAL, "sl": None, "sl_pct": "99.9"}).json()["error"]

    assert plain == ("stop-loss 200 is below PRICE_FILTER minPrice 261.10 for BTCUSDT;"
                     " use at least 261.10")  # fmt: skip
    assert computed == ("sl_pct 99.9 gives stop_loss 97.00: stop-loss 97.00 is below PRICE_FILTER"
                        " minPrice 261.10 for BTCUSDT; use at least 261.10")  # fmt: skip


def test_an_oversized_body_is_413_before_it_is_read(tmp_path: Path) -> None:
    inbox = make_inbox(tmp_path, max_body_bytes=64)
    body = body_of({**SIGNAL, "key": "k" * 100})

    answer = run(post(inbox, body, signed(body)))

    assert answer.status_code == 413
    assert "at most 64" in answer.json()["error"]
    assert untouched(tmp_path)


def test_beyond_the_rate_limit_signals_are_429(tmp_path: Path) -> None:
    """max_per_minute 3: the fourth signed signal at once is refused."""
    inbox = make_inbox(tmp_path, max_per_minute=3, stacking=True)  # three entries on one position

    codes = [post_signal(inbox, {**SIGNAL, "key": f"k{i}"}).status_code for i in range(4)]

    assert codes == [202, 202, 202, 429]
    assert len(journal(tmp_path)) == 3


def test_requests_without_the_secret_never_use_up_the_signals_budget(tmp_path: Path) -> None:
    """30 posts with a wrong secret are 401 (then 429 for their source, on a budget of their
    own); a correctly signed signal after them is accepted."""
    inbox = make_inbox(tmp_path, max_per_minute=3)
    wrong = {"X-Bot-Signature": "sha256=" + "0" * 64}

    codes = [post_signal(inbox, {**SIGNAL, "key": f"bad{i}"}, wrong).status_code for i in range(30)]
    good = post_signal(inbox, SIGNAL)

    assert codes[:3] == [401] * 3
    assert set(codes[3:]) == {429}
    assert good.status_code == 202, good.text
    assert list(journal(tmp_path)) == [good.json()["id"]]


def test_a_daemon_not_connected_to_the_exchange_refuses_with_503(tmp_path: Path) -> None:
    connected = False
    inbox = make_inbox(tmp_path, connected=lambda: connected)

    refused = post_signal(inbox, SIGNAL)
    connected = True
    later = post_signal(inbox, SIGNAL)

    assert refused.status_code == 503
    assert refused.json()["error"].startswith("the daemon is not connected to the exchange")
    assert later.status_code == 202


def test_without_a_daemon_the_heartbeat_says_so(tmp_path: Path) -> None:
    """The default check reads the state dir: no daemon holds it, no heartbeat: 503."""
    inbox = Inbox(tmp_path, FakeMarket(), SECRET.encode(), venue_name="paper")

    answer = post_signal(inbox, SIGNAL)

    assert answer.status_code == 503
    assert "no daemon (`bot run`) is running" in answer.json()["error"]
    assert untouched(tmp_path)


def test_the_secret_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    inbox = make_inbox(tmp_path)

    post_signal(inbox, {**SIGNAL, "secret": SECRET}, headers={})
    post_signal(inbox, {**SIGNAL, "key": "2", "secret": SECRET + "x"}, headers={})

    assert caplog.records
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_each_accepted_entry_is_announced_once(tmp_path: Path) -> None:
    """on_accepted (a wake-up for the daemon) hears of each 202, not of a 409 or a refusal."""
    heard: list[str] = []
    inbox = make_inbox(tmp_path, on_accepted=heard.append)

    posted = (SIGNAL, SIGNAL, {**SIGNAL, "key": "2", "sl": "200"})

    ids = [post_signal(inbox, s).json().get("id") for s in posted]

    assert heard == [ids[0]]


def test_filters_are_read_once_for_many_signals(tmp_path: Path) -> None:
    market = FakeMarket()
    inbox = make_inbox(tmp_path, market)

    for i in range(5):
        post_signal(inbox, {**SIGNAL, "key": f"k{i}"})

    assert market.info_reads == 1


def test_by_default_a_signal_on_a_position_another_entry_holds_is_422_and_writes_nothing(tmp_path: Path) -> None:
    """One entry per position unless [protection] stacking: the second signal names the first."""
    inbox = make_inbox(tmp_path)
    first = post_signal(inbox, {**SIGNAL, "key": "k1"})

    second = post_signal(inbox, {**SIGNAL, "key": "k2"})
    again = post_signal(inbox, {**SIGNAL, "key": "k1"})

    assert first.status_code == 202
    assert second.status_code == 422
    assert second.json()["field"] == "side"
    assert f"entry {first.json()['id']} (REQUESTED)" in second.json()["error"]
    assert "stacking = true" in second.json()["error"]
    assert again.status_code == 409  # the first signal sent again is its entry, not a refusal
    assert list(journal(tmp_path)) == [first.json()["id"]]
