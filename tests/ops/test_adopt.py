"""Adopting a part of a position no entry holds, decided without a venue (``bot_cli.ops.adopt``).

``auto_spec`` (the daemon's "protect" policy): the stop-loss on the losing side of the part,
the take-profit on the other, each rounded to the tick away from the mark; None when a filter
would refuse it. ``decide`` (`bot adopt`, ``Client.adopt``): what is unclaimed, how much is
adopted, and every refusal, each one line naming the field. The ``[protection]`` keys.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.config import ProtectionConfig, load_config
from bot_cli.core.model import EntrySpec, OrderType, Pending, PendingId, PositionKey, PositionSide, Side, Status
from bot_cli.core.summary import Unclaimed
from bot_cli.errors import ConfigError
from bot_cli.exchange.filters import SymbolFilters
from bot_cli.exchange.wire import parse_symbol_filters
from bot_cli.ops import market
from bot_cli.ops.adopt import Adoption, Names, Seen, auto_spec, decide
from bot_cli.ops.checks import Account, EntryRefused
from bot_cli.paper.info import symbol_info
from bot_cli.paper.market import SYMBOLS


BTC: SymbolFilters = parse_symbol_filters(symbol_info(SYMBOLS["BTCUSDT"]))  # type: ignore[arg-type]
MARK = Decimal("97000.37")  # off the tick (0.10), as a mark price is
ONE_WAY = PositionSide.BOTH


def part(side: Side, qty: str, position_side: PositionSide = ONE_WAY) -> Unclaimed:
    signed = Decimal(qty) if side is Side.BUY else -Decimal(qty)
    return Unclaimed("BTCUSDT", position_side, side, Decimal(qty), signed)


def distances(stop: float = 2.0, take: float = 0.0) -> ProtectionConfig:
    return ProtectionConfig(unclaimed="protect", unclaimed_stop_pct=stop, unclaimed_take_pct=take)


# -- auto_spec: the "protect" policy ------------------------------------------------------------


def test_a_long_part_gets_its_stop_below_the_mark_rounded_down_to_the_tick() -> None:
    spec = auto_spec(part(Side.BUY, "0.020"), MARK, BTC, distances(2.0))

    # 97000.37 x 0.98 = 95060.3626: down to the tick, away from the mark
    assert spec == EntrySpec(
        "BTCUSDT", Side.BUY, Decimal("0.020"), OrderType.ADOPTED, None, Decimal("95060.3"), None, ONE_WAY
    )


def test_a_short_part_gets_its_stop_above_the_mark_rounded_up_to_the_tick() -> None:
    spec = auto_spec(part(Side.SELL, "0.020"), MARK, BTC, distances(2.0))

    assert spec is not None
    assert (spec.side, spec.stop_loss, spec.take_profit) == (Side.SELL, Decimal("98940.4"), None)  # 98940.3774 up


@pytest.mark.parametrize(
    ("side", "stop", "take"),
    [
        (Side.BUY, "95060.3", "98455.4"),  # TP: 97000.37 x 1.015 = 98455.37555, up
        (Side.SELL, "98940.4", "95545.3"),  # TP: 97000.37 x 0.985 = 95545.36445, down
    ],
    ids=["long", "short"],
)
def test_a_take_profit_is_placed_on_the_winning_side_when_asked(side: Side, stop: str, take: str) -> None:
    spec = auto_spec(part(side, "0.020"), MARK, BTC, distances(2.0, 1.5))

    assert spec is not None
    assert (spec.stop_loss, spec.take_profit) == (Decimal(stop), Decimal(take))


def test_a_tiny_distance_still_rounds_off_the_mark_never_onto_it() -> None:
    mark = Decimal("97000.05")
    long_spec = auto_spec(part(Side.BUY, "0.020"), mark, BTC, distances(0.0001, 0.0001))
    short_spec = auto_spec(part(Side.SELL, "0.020"), mark, BTC, distances(0.0001, 0.0001))

    assert long_spec is not None
    assert short_spec is not None
    assert (long_spec.stop_loss, long_spec.take_profit) == (Decimal("96999.9"), Decimal("97000.2"))
    assert (short_spec.stop_loss, short_spec.take_profit) == (Decimal("97000.2"), Decimal("96999.9"))


def test_the_part_keeps_its_position_side_in_hedge_mode() -> None:
    spec = auto_spec(part(Side.SELL, "0.020", PositionSide.SHORT), MARK, BTC, distances())

    assert spec is not None
    assert spec.position_side is PositionSide.SHORT


@pytest.mark.parametrize(
    ("unclaimed", "mark"),
    [
        (part(Side.BUY, "150"), MARK),  # above MARKET_LOT_SIZE maxQty 120: no stop could be placed
        (part(Side.BUY, "0.0105"), MARK),  # off the step size
        (part(Side.BUY, "0.020"), Decimal(265)),  # the stop 259.7 is below PRICE_FILTER minPrice 261.10
        (part(Side.SELL, "0.001", PositionSide.SHORT), MARK),  # hedge: the legs' MIN_NOTIONAL (98.94 < 100)
    ],
    ids=["market max qty", "step size", "min price", "hedge min notional"],
)
def test_none_when_a_filter_would_refuse_the_adoption(unclaimed: Unclaimed, mark: Decimal) -> None:
    assert auto_spec(unclaimed, mark, BTC, distances()) is None


def test_one_way_legs_are_reduce_only_so_min_notional_does_not_apply() -> None:
    assert auto_spec(part(Side.SELL, "0.001"), MARK, BTC, distances()) is not None


# -- decide: `bot adopt` and Client.adopt ---------------------------------------------------------


def seen(positions: dict[PositionKey, Decimal], *, hedge: bool = False, mark: Decimal = Decimal(97000)) -> Seen:
    return Seen(BTC, mark, positions, hedge, Account(), market.Info("test", 0, {}))


def held(side: Side, qty: str, *, filled: str | None = None, status: Status = Status.PROTECTED) -> Pending:
    """An entry of the journal: ``filled`` of ``qty`` (all of it unless said)."""
    spec = EntrySpec("BTCUSDT", side, Decimal(qty), OrderType.LIMIT, Decimal(97000), Decimal(1000), None)
    if side is Side.SELL:
        spec = replace(spec, stop_loss=Decimal(200000))
    done = filled is None
    return Pending(
        PendingId(f"bc0test{side.value.lower()}{qty}"), spec, status, 1, 1, 5000,
        filled_qty=Decimal(qty if filled is None else filled), entry_done=done,
    )  # fmt: skip


LONG = {("BTCUSDT", ONE_WAY): Decimal("0.030")}


def test_the_unclaimed_part_is_what_the_entries_do_not_hold() -> None:
    spec = decide(Adoption("BTCUSDT", Decimal(95000), Decimal(99000)), seen(LONG), [held(Side.BUY, "0.010")])

    assert spec == EntrySpec(
        "BTCUSDT", Side.BUY, Decimal("0.020"), OrderType.ADOPTED, None, Decimal(95000), Decimal(99000), ONE_WAY
    )


def test_a_quantity_adopts_part_of_the_unclaimed_part() -> None:
    spec = decide(Adoption("BTCUSDT", Decimal(95000), quantity=Decimal("0.005")), seen(LONG), [])

    assert spec.quantity == Decimal("0.005")


def test_a_short_position_is_adopted_as_a_sell() -> None:
    spec = decide(Adoption("BTCUSDT", Decimal(99000)), seen({("BTCUSDT", ONE_WAY): Decimal("-0.030")}), [])

    assert (spec.side, spec.quantity) == (Side.SELL, Decimal("0.030"))


def test_in_hedge_mode_the_side_with_an_unclaimed_part_is_found() -> None:
    positions = {("BTCUSDT", PositionSide.LONG): Decimal(0), ("BTCUSDT", PositionSide.SHORT): Decimal("-0.020")}
    spec = decide(Adoption("BTCUSDT", Decimal(99000)), seen(positions, hedge=True), [])

    assert (spec.side, spec.position_side, spec.quantity) == (Side.SELL, PositionSide.SHORT, Decimal("0.020"))


REFUSALS = [
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000)), {}, [],
        "symbol", "nothing to adopt: BTCUSDT has no open position", id="flat",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000)), LONG, [held(Side.BUY, "0.030")],
        "symbol", "nothing to adopt: BTCUSDT's position 0.030 (BOTH) is all held by entries in the journal"
        " (or their orders still working)", id="held by an entry",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000)), LONG, [held(Side.BUY, "0.030", filled="0.010", status=Status.OPEN)],
        "symbol", "nothing to adopt: BTCUSDT's position 0.030 (BOTH) is all held by entries in the journal"
        " (or their orders still working)", id="a working entry order explains its rest",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000), quantity=Decimal("0.021")), LONG, [held(Side.BUY, "0.010")],
        "quantity", "--quantity 0.021 is more than the 0.020 of BTCUSDT's position 0.030 that no entry holds;"
        " use at most 0.020", id="more than unclaimed",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000), quantity=Decimal("0.0105")), LONG, [],
        "quantity", "quantity 0.0105 is not a multiple of LOT_SIZE stepSize 0.001 for BTCUSDT; use 0.010 or 0.011",
        id="off the step",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(97500)), LONG, [],
        "stop_loss", "stop-loss 97500 is not below BTCUSDT's mark price 97000.00 (MARK_PRICE): for a buy it would"
        " trigger as soon as the entry fills (-2021); use a stop-loss below 97000.00", id="stop on the wrong side",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal("95000.05")), LONG, [],
        "stop_loss", "stop-loss 95000.05 is not a multiple of PRICE_FILTER tickSize 0.10 for BTCUSDT;"
        " use 95000.00 or 95000.10", id="stop off the tick",
    ),
    pytest.param(
        Adoption("BTCUSDT", Decimal(95000), position_side="LONG"), LONG, [],
        "position_side", "--position-side is for hedge mode; this account is in one-way mode", id="one-way side",
    ),
]


@pytest.mark.parametrize(("ask", "positions", "entries", "field", "line"), REFUSALS)
def test_a_refusal_names_the_field_in_one_line(
    ask: Adoption, positions: dict[PositionKey, Decimal], entries: list[Pending], field: str, line: str
) -> None:
    with pytest.raises(EntryRefused) as refused:
        decide(ask, seen(positions), entries, Names("--position-side", "--quantity"))

    assert (refused.value.field, str(refused.value)) == (field, line)


def test_an_entry_holding_the_other_direction_refuses_the_adoption() -> None:
    """A sell entry holds a share; a buy by hand turned the position long: adopting the buy would
    net against the sell entry's share, behind its stop-loss."""
    sell = held(Side.SELL, "0.010")
    with pytest.raises(EntryRefused) as refused:
        decide(Adoption("BTCUSDT", Decimal(95000)), seen({("BTCUSDT", ONE_WAY): Decimal("0.020")}), [sell])

    assert refused.value.field == "side"
    assert f"already has a SELL entry {sell.pending_id}" in str(refused.value)


def test_hedge_mode_with_both_sides_unclaimed_needs_the_position_side() -> None:
    positions = {("BTCUSDT", PositionSide.LONG): Decimal("0.010"), ("BTCUSDT", PositionSide.SHORT): Decimal("-0.020")}
    with pytest.raises(EntryRefused) as refused:
        decide(Adoption("BTCUSDT", Decimal(95000)), seen(positions, hedge=True), [])

    assert refused.value.field == "position_side"
    assert str(refused.value) == (
        "both the LONG and the SHORT position of BTCUSDT have a part no entry holds: give position_side LONG or SHORT"
    )


def test_the_account_limit_refuses_the_adoption() -> None:
    full = replace(seen(LONG), account=Account(foreign_conditional=199))
    with pytest.raises(EntryRefused) as refused:
        decide(Adoption("BTCUSDT", Decimal(95000), Decimal(99000)), full, [])

    assert refused.value.field == "limit"


# -- the [protection] keys ----------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return path


def test_the_unclaimed_policy_defaults_to_alert() -> None:
    p = ProtectionConfig()

    assert (p.unclaimed, p.unclaimed_stop_pct, p.unclaimed_take_pct) == ("alert", 2.0, 0.0)


def test_the_unclaimed_keys_are_read(tmp_path: Path) -> None:
    text = "[protection]\nunclaimed = 'protect'\nunclaimed_stop_pct = 1\nunclaimed_take_pct = 2.5\n"
    p = load_config(write(tmp_path, text)).protection

    assert (p.unclaimed, p.unclaimed_stop_pct, p.unclaimed_take_pct) == ("protect", 1.0, 2.5)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("unclaimed = 'close'", "protection.unclaimed = 'close' is not one of alert, protect"),
        ("unclaimed_stop_pct = 0", "protection.unclaimed_stop_pct = 0.0 must be a percentage above 0 and below 100"),
        ("unclaimed_stop_pct = 100", "protection.unclaimed_stop_pct = 100.0 must be a percentage above 0"),
        ("unclaimed_stop_pct = nan", "protection.unclaimed_stop_pct = nan must be a percentage above 0"),
        ("unclaimed_stop_pct = '2'", "protection.unclaimed_stop_pct must be float, got str"),
        ("unclaimed_take_pct = -1", "protection.unclaimed_take_pct = -1.0 must be a percentage from 0"),
        ("unclaimed_take_pct = true", "protection.unclaimed_take_pct must be float, got bool"),
    ],
)
def test_a_bad_unclaimed_key_is_one_line_naming_it(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, f"[protection]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)

    assert expected in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
