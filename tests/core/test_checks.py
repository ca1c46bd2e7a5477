"""core.checks: every order an entry needs, against the symbol's filters and the mark (pure).

One case per rule and side of it: the first violation names the filter, its field, the limit
and what to do, in one line. The filters are the paper venue's BTCUSDT (Binance's values).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest

from bot_cli.core.checks import Violation, check_entry, violations
from bot_cli.core.model import EntrySpec, OrderType, PositionSide, Side
from bot_cli.exchange.filters import SymbolFilters


BTC = SymbolFilters(
    symbol="BTCUSDT",
    tick_size=D("0.10"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D(1000),
    market_step_size=D("0.001"),
    market_min_qty=D("0.001"),
    market_max_qty=D(120),
    min_notional=D(100),
    min_price=D("261.10"),
    max_price=D(809484),
    multiplier_up=D("1.1500"),
    multiplier_down=D("0.8500"),
)
MARK = D("97000.00")


def entry(
    side: str = "BUY",
    qty: str = "0.010",
    price: str | None = "96900",
    sl: str = "90000",
    tp: str | None = "99000",
    position_side: PositionSide = PositionSide.BOTH,
) -> EntrySpec:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return EntrySpec(
        "BTCUSDT", Side(side), D(qty), kind, None if price is None else D(price), D(sl),
        None if tp is None else D(tp), position_side,
    )  # fmt: skip


def market(side: str = "BUY", **kw: str) -> EntrySpec:
    return entry(side, price=None, **kw)  # type: ignore[arg-type]


SELL: dict[str, Any] = {"sl": "104000", "tp": "95000"}  # a sell's stop-loss above, take-profit below


@pytest.mark.parametrize(
    "spec",
    [
        entry(),
        entry("SELL", price="97100", **SELL),
        market(),
        market("SELL", **SELL),
        entry(tp=None),
        market(qty="120"),
        entry(qty="120"),
        entry(price="97100", sl="96900"),  # fills at once: the stop is below the mark too
        entry(position_side=PositionSide.LONG),
    ],
    ids=["limit buy", "limit sell", "market buy", "market sell", "no take-profit",
         "market at MARKET_LOT_SIZE max", "limit at MARKET_LOT_SIZE max",
         "marketable limit", "hedge mode"],
)
def test_a_valid_entry_has_no_violation(spec: EntrySpec) -> None:
    """Inside every filter, triggers on their sides: nothing to refuse."""
    assert check_entry(spec, BTC, MARK) is None


CASES = [
    # (id, spec, filter, field, subject, limit, the one line)
    ("LOT_SIZE minQty", entry(qty="0.0005"), "LOT_SIZE", "minQty", "quantity", "0.001",
     "quantity 0.0005 is below LOT_SIZE minQty 0.001 for BTCUSDT; use at least 0.001"),
    ("LOT_SIZE maxQty", entry(qty="1001"), "LOT_SIZE", "maxQty", "quantity", "1000",
     "quantity 1001 exceeds LOT_SIZE maxQty 1000 for BTCUSDT; use at most 1000"),
    ("LOT_SIZE stepSize", entry(qty="0.0105"), "LOT_SIZE", "stepSize", "quantity", "0.001",
     ("quantity 0.0105 is not a multiple of LOT_SIZE stepSize 0.001 for BTCUSDT;"
     " use 0.010 or 0.011")),
    ("MARKET_LOT_SIZE minQty", market(qty="0.0005"), "MARKET_LOT_SIZE", "minQty", "quantity",
     "0.001", ("quantity 0.0005 is below MARKET_LOT_SIZE minQty 0.001 for BTCUSDT;"
     " use at least 0.001")),
    ("MARKET_LOT_SIZE maxQty", market(qty="121"), "MARKET_LOT_SIZE", "maxQty", "quantity", "120",
     "quantity 121 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT; use at most 120"),
    ("MARKET_LOT_SIZE stepSize", market(qty="0.0105"), "MARKET_LOT_SIZE", "stepSize", "quantity",
     "0.001", ("quantity 0.0105 is not a multiple of MARKET_LOT_SIZE stepSize 0.001 for BTCUSDT;"
     " use 0.010 or 0.011")),
    ("price tickSize", entry(price="96900.05"), "PRICE_FILTER", "tickSize", "price", "0.10",
     ("price 96900.05 is not a multiple of PRICE_FILTER tickSize 0.10 for BTCUSDT;"
     " use 96900.00 or 96900.10")),
    ("stop-loss minPrice", entry(sl="200"), "PRICE_FILTER", "minPrice", "stop-loss", "261.10",
     "stop-loss 200 is below PRICE_FILTER minPrice 261.10 for BTCUSDT; use at least 261.10"),
    ("take-profit maxPrice", market(tp="900000"), "PRICE_FILTER", "maxPrice", "take-profit",
     "809484", ("take-profit 900000 exceeds PRICE_FILTER maxPrice 809484 for BTCUSDT;"
     " use at most 809484")),
    ("stop-loss tickSize", market(sl="90000.01"), "PRICE_FILTER", "tickSize", "stop-loss", "0.10",
     ("stop-loss 90000.01 is not a multiple of PRICE_FILTER tickSize 0.10 for BTCUSDT;"
     " use 90000.00 or 90000.10")),
    ("PERCENT_PRICE up", entry(price="112000", tp="120000"), "PERCENT_PRICE", "multiplierUp",
     "price", "111550.00", ("price 112000 exceeds PERCENT_PRICE multiplierUp 1.1500 x mark price"
     " 97000.00 for BTCUSDT; use a limit price of at most 111550.00")),
    ("PERCENT_PRICE down", entry("SELL", price="82000", sl="90000", tp="80000"), "PERCENT_PRICE",
     "multiplierDown", "price", "82450.00", ("price 82000 is below PERCENT_PRICE multiplierDown"
     " 0.8500 x mark price 97000.00 for BTCUSDT; use a limit price of at least 82450.00")),
    ("MIN_NOTIONAL limit", entry(qty="0.001", price="96900"), "MIN_NOTIONAL", "notional",
     "notional", "100", ("notional 96.9 (quantity 0.001 x 96900) is below MIN_NOTIONAL notional"
     " 100 for BTCUSDT; use a quantity of at least 0.002")),
    ("MIN_NOTIONAL market", market(qty="0.001"), "MIN_NOTIONAL", "notional", "notional", "100",
     ("notional 97 (quantity 0.001 x mark price 97000.00) is below MIN_NOTIONAL notional 100"
     " for BTCUSDT; use a quantity of at least 0.002")),
    ("buy stop-loss above entry", entry(sl="97000"), "ENTRY_PRICE", "price", "stop-loss", "96900",
     ("stop-loss 97000 is not below the entry price 96900 (ENTRY_PRICE): for a buy it would"
     " trigger as soon as the entry fills (-2021); use a stop-loss below 96900")),
    ("sell take-profit above entry", entry("SELL", price="97100", sl="104000", tp="98000"),
     "ENTRY_PRICE", "price", "take-profit", "97100", ("take-profit 98000 is not below the entry"
     " price 97100 (ENTRY_PRICE): for a sell it would trigger as soon as the entry fills (-2021);"
     " use a take-profit below 97100")),
    ("market buy stop-loss crossed", market(sl="97000.00"), "MARK_PRICE", "markPrice", "stop-loss",
     "97000.00", ("stop-loss 97000.00 is not below BTCUSDT's mark price 97000.00 (MARK_PRICE):"
     " for a buy it would trigger as soon as the entry fills (-2021);"
     " use a stop-loss below 97000.00")),
    ("market buy take-profit crossed", market(tp="96000"), "MARK_PRICE", "markPrice",
     "take-profit", "97000.00", ("take-profit 96000 is not above BTCUSDT's mark price 97000.00"
     " (MARK_PRICE): for a buy it would trigger as soon as the entry fills (-2021);"
     " use a take-profit above 97000.00")),
    ("market sell stop-loss crossed", market("SELL", sl="96000", tp="95000"), "MARK_PRICE",
     "markPrice", "stop-loss", "97000.00", ("stop-loss 96000 is not above BTCUSDT's mark price"
     " 97000.00 (MARK_PRICE): for a sell it would trigger as soon as the entry fills (-2021);"
     " use a stop-loss above 97000.00")),
    ("market sell take-profit crossed", market("SELL", sl="104000", tp="98000"), "MARK_PRICE",
     "markPrice", "take-profit", "97000.00", ("take-profit 98000 is not below BTCUSDT's mark price"
     " 97000.00 (MARK_PRICE): for a sell it would trigger as soon as the entry fills (-2021);"
     " use a take-profit below 97000.00")),
    ("marketable limit stop-loss crossed", entry(price="97100", sl="97050"), "MARK_PRICE",
     "markPrice", "stop-loss", "97000.00", ("stop-loss 97050 is not below BTCUSDT's mark price"
     " 97000.00 (MARK_PRICE): for a buy it would trigger as soon as the entry fills (-2021);"
     " use a stop-loss below 97000.00")),
    ("protective MARKET_LOT_SIZE maxQty", entry(qty="130"), "MARKET_LOT_SIZE", "maxQty",
     "quantity", "120", ("quantity 130 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT: the"
     " stop-loss is a market order and could not be placed; use at most 120")),
    ("hedge protective MIN_NOTIONAL", entry(qty="0.002", sl="40000", position_side=PositionSide.LONG),
     "MIN_NOTIONAL", "notional", "notional", "100", ("notional 80 (quantity 0.002 x stop-loss"
     " 40000) is below MIN_NOTIONAL notional 100 for BTCUSDT: hedge mode cannot send it"
     " reduce-only, so it could not be placed; use a quantity of at least 0.003")),
]


@pytest.mark.parametrize(
    ("spec", "filter_", "field", "subject", "limit", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_refusal_is_one_line_naming_filter_limit_and_remedy(
    spec: EntrySpec, filter_: str, field: str, subject: str, limit: str, message: str
) -> None:
    """The first violation is data: filter, field, what, limit; its message says what to do."""
    found = check_entry(spec, BTC, MARK)
    assert found is not None
    assert (found.filter, found.field, found.subject, found.limit) == (
        filter_, field, subject, D(limit)
    )
    assert found.message == message
    assert str(found) == message
    assert "\n" not in found.message


def test_the_130_btc_limit_entry_is_refused_for_its_stop() -> None:
    """LOT_SIZE allows 130 for the limit entry; the stop (MARKET_LOT_SIZE max 120) would not."""
    spec = entry(qty="130")
    assert spec.quantity <= BTC.max_qty
    found = check_entry(spec, BTC, MARK)
    assert found == Violation(
        "MARKET_LOT_SIZE", "maxQty", "quantity", D(130), D(120),
        "quantity 130 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT: the stop-loss is a market"
        " order and could not be placed; use at most 120",
    )  # fmt: skip


def test_the_entry_rules_come_before_the_protective_ones() -> None:
    """Several problems: each is listed, the entry's own first."""
    spec = entry(qty="1001", price="96900.05")
    found = [v.filter for v in violations(spec, BTC, MARK)]
    assert found == ["LOT_SIZE", "PRICE_FILTER", "MARKET_LOT_SIZE"]


def test_a_limit_below_the_mark_is_not_checked_against_the_mark() -> None:
    """A resting buy limit fills at its own price, so its stop only has to be below that."""
    assert check_entry(entry(price="90000", sl="89000", tp="91000"), BTC, MARK) is None


def test_percent_price_bounds_are_inclusive() -> None:
    """Exactly mark x multiplier is allowed (the exchange refuses only beyond it)."""
    assert check_entry(entry(price="111550.00", tp="120000"), BTC, MARK) is None
    assert check_entry(entry("SELL", price="82450.00", sl="98000", tp="80000"), BTC, MARK) is None


def test_one_way_mode_waives_the_protective_notional() -> None:
    """Reduce-only protection (one-way mode) is exempt from MIN_NOTIONAL, as on Binance."""
    assert check_entry(entry(qty="0.002", sl="40000"), BTC, MARK) is None


def test_zero_limits_mean_no_limit() -> None:
    """Filters without bounds (zero) refuse nothing but non-positive values."""
    free = replace(BTC, max_qty=D(0), market_max_qty=D(0), min_notional=D(0), max_price=D(0),
                   multiplier_up=D(0), multiplier_down=D(0), min_price=D(0))  # fmt: skip
    assert check_entry(entry(qty="5000", price="1000000", tp="2000000"), free, D(1000000)) is None
    found = check_entry(entry(qty="0"), free, MARK)
    assert found is not None
    assert found.field == "minQty"


def test_a_step_that_is_not_a_power_of_ten() -> None:
    """A 0.5 tick: 101.7 suggests 101.5 or 102.0."""
    half = replace(BTC, tick_size=D("0.5"), min_price=D("0.5"), min_notional=D(0))
    found = check_entry(entry(price="101.7", sl="90", tp="110"), half, D("101.7"))
    assert found is not None
    assert found.message.endswith("use 101.5 or 102.0")
