"""`bot config check --online` proves the user data stream with a test order's event.

A stream on a wrong route is accepted and stays silent (Binance, and the paper venue imitating
it), so a listenKey and an open socket prove nothing: the check places a post-only BUY far from
the market, waits for its ORDER_TRADE_UPDATE, and always cancels it. Against `bot paper serve`
in its own process, as tests/cli/test_config.py does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot_cli.core.ids import BINANCE_ID, parse_client_id
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.ops.stream_probe import ID_PREFIX, new_client_id, plan_order
from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET
from tests.cli.test_config import binance_at, check, paper_serve


PAPER_KEYS = {"BOT_API_KEY": PAPER_API_KEY, "BOT_API_SECRET": PAPER_API_SECRET}


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`bot paper serve` on a free port (never 18765), prices standing still; yields the port."""
    with paper_serve(tmp_path_factory.mktemp("venue")) as port:
        yield port


def probe_orders(port: int) -> dict[str, tuple[str, bool]]:
    """Every test order the venue shows: client id -> (status, still open)."""
    state = httpx.get(f"http://127.0.0.1:{port}/paper/state", timeout=5).json()
    rows = [(o, True) for o in state["openOrders"]] + [(o, False) for o in state["recentOrders"]]
    return {o["clientOrderId"]: (o["status"], is_open) for o, is_open in rows
            if o["clientOrderId"].startswith(ID_PREFIX)}  # fmt: skip


def new_probe_orders(port: int, before: Mapping[str, object]) -> dict[str, tuple[str, bool]]:
    return {cid: seen for cid, seen in probe_orders(port).items() if cid not in before}


def live_at(port: int) -> str:
    """A live Binance account, as far as the config says, at the paper venue's URLs."""
    return binance_at(port).replace("kind = 'binance'", "kind = 'binance'\nnetwork = 'live'\nallow_live = true")


@pytest.mark.e2e
def test_the_stream_is_proven_by_the_test_orders_event(tmp_path: Path, venue: int) -> None:
    """The right route: the row is ok, saying how long the event took; the order is cancelled."""
    before = probe_orders(venue)
    code, checks, err = check(tmp_path, f"[paper]\nport = {venue}\n", "--online")
    assert (code, err) == (0, "")
    row = checks["user stream"]
    assert row["result"] == "ok", row
    assert row["detail"].startswith("delivered the test order's event in ")
    assert "BUY" in row["detail"]
    assert row["detail"].endswith(", cancelled)")
    placed = new_probe_orders(venue, before)
    assert list(placed.values()) == [("CANCELED", False)]
    assert next(iter(placed)) in row["detail"]


@pytest.mark.e2e
def test_a_silent_route_fails_and_the_test_order_is_cancelled(tmp_path: Path, venue: int) -> None:
    """venue.ws_url on /market: the socket is accepted and stays silent. FAIL, exit 1, one line
    on stderr, and no test order is left open on the venue."""
    before = probe_orders(venue)
    text = f"[venue]\nws_url = 'ws://127.0.0.1:{venue}/market'\n[paper]\nport = {venue}\n"
    code, checks, err = check(tmp_path, text, "--online")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "user stream" in err
    row = checks["user stream"]
    assert row["result"] == "fail"
    assert row["detail"] == (
        f"the stream at ws://127.0.0.1:{venue}/market/ws/<listenKey> accepted the connection but delivered "
        "no event for the test order within 10 s: check venue.ws_url (user data needs the /private route)"
    )
    assert list(new_probe_orders(venue, before).values()) == [("CANCELED", False)]


@pytest.mark.e2e
def test_a_live_account_needs_consent_for_the_test_order(tmp_path: Path, venue: int) -> None:
    """network live without --allow-order: the row warns "not proven" and nothing is placed;
    with --allow-order it is proven like any other."""
    before = probe_orders(venue)
    code, checks, _ = check(tmp_path, live_at(venue), "--online", **PAPER_KEYS)
    assert code == 0
    row = checks["user stream"]
    assert row["result"] == "warn"
    assert row["detail"].startswith("not proven: placing a test order on a live account needs --allow-order")
    assert new_probe_orders(venue, before) == {}
    code, checks, _ = check(tmp_path, live_at(venue), "--online", "--allow-order", **PAPER_KEYS)
    assert code == 0
    assert checks["user stream"]["result"] == "ok", checks["user stream"]
    assert list(new_probe_orders(venue, before).values()) == [("CANCELED", False)]


@pytest.mark.e2e
def test_a_lost_answer_to_the_test_order_is_still_cancelled_by_its_client_id(tmp_path: Path, venue: int) -> None:
    """The venue places the order and the answer is lost: the event proves the stream, and the
    order is cancelled by the client id chosen before it was sent."""
    admin = f"http://127.0.0.1:{venue}/paper/faults"
    before = probe_orders(venue)
    httpx.post(admin, json={"add": ["lost_response:order:once"]}, timeout=5).raise_for_status()
    try:
        code, checks, _ = check(tmp_path, f"[paper]\nport = {venue}\n", "--online")
    finally:
        httpx.post(admin, json={"clear": True}, timeout=5).raise_for_status()
    assert code == 0
    assert checks["user stream"]["result"] == "ok", checks["user stream"]
    assert list(new_probe_orders(venue, before).values()) == [("CANCELED", False)]


@pytest.mark.e2e
def test_nothing_secret_is_shown(tmp_path: Path, venue: int) -> None:
    """Neither the keys nor the listenKey appear in the rows."""
    listen_key = httpx.post(f"http://127.0.0.1:{venue}/fapi/v1/listenKey", timeout=5,
                            headers={"X-MBX-APIKEY": PAPER_API_KEY}).json()["listenKey"]  # fmt: skip
    text = binance_at(venue).replace("/private'", "/market'")
    code, checks, err = check(tmp_path, text, "--online", **PAPER_KEYS)
    assert code == 1
    shown = err + "".join(c["detail"] for c in checks.values())
    for secret in (PAPER_API_KEY, PAPER_API_SECRET, listen_key):
        assert secret not in shown


# --- the test order itself --------------------------------------------------------------------


class Market:
    """Binance's BTCUSDT filters (PERCENT_PRICE 0.95..1.05, MIN_NOTIONAL 100) at a mark."""

    def __init__(self, mark: str, min_notional: str = "100") -> None:
        self.mark = Decimal(mark)
        self.filters = SymbolFilters(
            "BTCUSDT", tick_size=Decimal("0.10"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
            max_qty=Decimal(1000), market_step_size=Decimal("0.001"), market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal(120), min_notional=Decimal(min_notional), min_price=Decimal("261.10"),
            max_price=Decimal(809484), multiplier_up=Decimal("1.05"), multiplier_down=Decimal("0.95"),
        )  # fmt: skip

    async def exchange_info(self) -> dict[str, SymbolFilters]:
        return {"ETHUSDT": self.filters, "BTCUSDT": self.filters}

    async def mark_price(self, symbol: str) -> Decimal:
        assert symbol == "BTCUSDT"
        return self.mark


@pytest.mark.parametrize(
    ("mark", "price", "quantity"),
    [("64000", "62400.0", "0.002"), ("64000.17", "62400.2", "0.002"), ("1000", "975.0", "0.103")],
)
def test_the_test_order_is_far_below_the_mark_and_inside_every_filter(mark: str, price: str, quantity: str) -> None:
    """Halfway between the mark and mark x multiplierDown, on the tick; the smallest quantity
    on the step whose notional reaches MIN_NOTIONAL."""
    market = Market(mark)
    order = asyncio.run(plan_order(market, new_client_id()))
    assert (order.symbol, order.price, order.quantity) == ("BTCUSDT", Decimal(price), Decimal(quantity))
    f = market.filters
    assert market.mark * f.multiplier_down <= order.price < market.mark
    assert f.check_price(order.price) is None
    assert f.check_quantity(order.quantity, market=False, price=order.price) is None


def test_the_test_orders_client_id_is_never_the_bots() -> None:
    """cfgcheck-<random>: valid on Binance, not of the bot's pattern, different every time."""
    ids = {new_client_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert cid.startswith("cfgcheck-")
        assert BINANCE_ID.fullmatch(cid)
        assert parse_client_id(cid) is None
