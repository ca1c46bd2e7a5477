"""``Client.adopt`` / ``AsyncClient.adopt`` against `bot paper serve`: the rules of `bot adopt`.

A position bought by hand is adopted with its legs for exactly the part no entry holds; a
refusal raises EntryRefused naming the field, with nothing written or sent; two adoptions of
one part at once protect it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.api import AsyncClient, Client, Entry, EntryRefused, Side, Status
from tests.cli.test_adopt import hand_trade, legs
from tests.cli.test_enter import Venue, start_venue, stop_venue


pytestmark = pytest.mark.e2e
HAND, SL, TP = "0.020", "95000", "99000"


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    v = start_venue(tmp_path)
    hand_trade(v, "BUY", HAND)
    yield v
    stop_venue(v)


def test_no_daemon_a_hand_trade_is_adopted_and_protected(venue: Venue, tmp_path: Path) -> None:
    bot = Client(tmp_path / "state", venue.config)

    e = bot.adopt("btcusdt", SL, take_profit=Decimal(TP), quantity="0.015")

    assert (e.status, e.side, e.quantity, e.stop_loss, e.take_profit) == (
        Status.PROTECTED, Side.BUY, Decimal("0.015"), Decimal(SL), Decimal(TP))
    assert (e.sent_by, e.watched, e.note, e.price) == ("this process", True, "", None)
    assert legs(venue, e.id) == {
        "STOP_MARKET": (Decimal("0.015"), Decimal(SL), "SELL"),
        "TAKE_PROFIT_MARKET": (Decimal("0.015"), Decimal(TP), "SELL"),
    }
    assert [x.id for x in bot.entries()] == [e.id]


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"quantity": "0.5"}, "quantity", f"quantity 0.5 is more than the {HAND} of BTCUSDT's position {HAND}"),
        ({"stop_loss": 95000.0}, "stop_loss", "stop_loss 95000.0 is a float: give a Decimal or a string"),
        ({"symbol": "ETHUSDT", "stop_loss": "3000"}, "symbol", "nothing to adopt: ETHUSDT has no open position"),
        ({"stop_loss": "98000"}, "stop_loss", "stop-loss 98000 is not below BTCUSDT's mark price"),
        ({"position_side": "SHORT"}, "position_side", "position_side is for hedge mode"),
    ],
    ids=["quantity above the part", "a float", "nothing held", "stop on the wrong side", "one-way side"],
)
def test_a_refusal_raises_naming_the_field_and_leaves_no_trace(
    venue: Venue, tmp_path: Path, kwargs: dict[str, object], field: str, text: str
) -> None:
    state, before = tmp_path / "state", venue.client_ids()
    args: dict[str, object] = {"symbol": "BTCUSDT", "stop_loss": SL, **kwargs}

    with pytest.raises(EntryRefused) as refused:
        Client(state, venue.config).adopt(**args)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert str(refused.value).startswith(text)
    assert not state.exists()
    assert venue.client_ids() == before


def test_two_adoptions_of_one_part_at_once_protect_it_once(venue: Venue, tmp_path: Path) -> None:
    """In one event loop the admission lock is re-entrant: the first adoption's record must be on
    disk before it awaits anything, or the second would protect the same part again."""
    bot = AsyncClient(tmp_path / "state", venue.config)

    async def both() -> list[Entry | BaseException]:
        return list(await asyncio.gather(bot.adopt("BTCUSDT", SL), bot.adopt("BTCUSDT", SL), return_exceptions=True))

    results = asyncio.run(both())

    adopted = [r for r in results if isinstance(r, Entry)]
    refused = [r for r in results if isinstance(r, EntryRefused)]
    assert (len(adopted), len(refused)) == (1, 1), results
    assert adopted[0].status is Status.PROTECTED
    stops = [a for a in venue.algos(adopted[0].id) if a["orderType"] == "STOP_MARKET"]
    assert [Decimal(a["quantity"]) for a in stops] == [Decimal(HAND)]
    assert [e.id for e in bot.entries()] == [adopted[0].id]
