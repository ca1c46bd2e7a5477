"""store.listing's quick check, held to codec: never sure of a record decode refuses.

`bot pending list` trusts the quick check instead of decoding 10,000 records. If the check
ever passed a record codec.decode refuses, the list would show an entry the daemon skips.
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from bot_cli.core.model import Exit, Leg, LegState, OrderType, PositionSide, Side, Status
from bot_cli.store import codec, listing
from bot_cli.store.codec import CorruptRecord, decode, encode
from tests.core.helpers import pending


LIVE = [s for s in Status if not s.terminal]
# Values that break some field or other: wrong types, bad texts, near misses of good ones.
BAD = [
    None, True, 1, 1.5, -1, "", "x", "1.5", "NaN", "1e999999999999999999", "+1", " 1", "1_0",
    [], {}, [1], [[1]], [["a", "b"]], [[1, "a", 2]], {"a": 1}, "BUY", "sl", "LIVE", "CLOSING",
]


def records() -> list[dict[str, Any]]:
    """One record per live status as codec.encode writes it, a market order and a short."""
    out = [encode(pending(s)) for s in LIVE]
    market = replace(pending(Status.OPEN), order_id=None)
    out.append(encode(replace(market, spec=replace(market.spec, order_type=OrderType.MARKET, price=None))))
    short = pending(Status.PROTECTED)
    out.append(encode(replace(short, spec=replace(short.spec, side=Side.SELL, take_profit=None,
                                                   position_side=PositionSide.SHORT))))
    return out


def decodes(record: dict[str, Any]) -> bool:
    try:
        decode(record)
    except CorruptRecord:
        return False
    return True


def test_the_check_reads_what_codec_writes() -> None:
    """Every key encode writes is checked (or is a flag decode reads as bool): a field codec
    adds fails here until the check knows it."""
    for record in records():
        assert set(record) == listing.KEYS | listing.FLAGS


def test_the_written_out_values_are_the_models() -> None:
    """The enum values and record version listing spells out are the model's and codec's."""
    assert listing.RECORD_VERSION == codec.RECORD_VERSION
    assert {s.value for s in Status} == listing.STATUSES
    assert {s.value for s in Side} == listing.SIDES
    assert {s.value for s in OrderType} == listing.ORDER_TYPES
    assert {s.value for s in PositionSide} == listing.POSITION_SIDES
    assert {s.value for s in Leg} == listing.LEGS
    assert {s.value for s in LegState} == listing.LEG_STATES


def test_records_codec_writes_take_the_quick_road() -> None:
    """What encode writes (no close, no exit yet) is listed without decoding."""
    quick = [r for r in records() if r["close"] is None]
    assert len(quick) >= len(LIVE)
    for record in quick:
        assert listing.listing(record) == tuple(record[k] for k in listing.FIELDS)


def test_a_close_or_an_exit_takes_the_slow_road() -> None:
    """Rare shapes the check does not vouch for: None (decode to know), and decode reads them."""
    exiting = encode(pending(Status.EXITING))
    exited = encode(replace(pending(Status.PROTECTED), exits=(Exit("external", Decimal("0.1")),)))
    for record in (exiting, exited):
        assert listing.listing(record) is None
        assert decodes(record)


def paths(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every place a value sits in a record: top-level keys, each leg's keys, each note's parts."""
    found: list[tuple[Any, ...]] = [(k,) for k in record]
    for i, leg in enumerate(record["protections"]):
        found += [("protections", i, k) for k in leg]
    for i in range(len(record["history"])):
        found += [("history", i), ("history", i, 0), ("history", i, 1)]
    return found


def changed(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy with the value at path replaced (or deleted, for value DELETE)."""
    out = copy.deepcopy(record)
    *parents, last = path
    holder: Any = out
    for p in parents:
        holder = holder[p]
    if value is DELETE:
        del holder[last]
    else:
        holder[last] = value
    return out


DELETE = object()


@pytest.mark.parametrize("status", LIVE, ids=lambda s: s.name)
def test_never_sure_of_a_record_decode_refuses(status: Status) -> None:
    """Each value of the record, replaced by each bad value or deleted: whenever the check is
    sure, decode reads it. The check must also catch most of them (it is not vacuous)."""
    record = encode(pending(status))
    refused = 0
    for path in paths(record):
        for value in [*BAD, DELETE]:
            bad = changed(record, path, value)
            if not decodes(bad):
                refused += 1
                assert listing.listing(bad) is None, (path, value)
    assert refused > 100


def test_never_sure_under_random_damage() -> None:
    """Several values damaged at once, over many seeded draws: sure implies decodable."""
    rng = random.Random(7)
    base = records()
    for _ in range(3000):
        record = rng.choice(base)
        for path in rng.sample(paths(record), rng.randint(1, 3)):
            try:
                record = changed(record, path, rng.choice([*BAD, DELETE]))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed the place
        if listing.listing(record) is not None:
            assert decodes(record), record


def test_an_extra_key_is_harmless() -> None:
    """decode ignores keys it does not know; so may the check."""
    record = {**encode(pending(Status.OPEN)), "note_for_humans": "hi"}
    assert listing.listing(record) is not None
    assert decodes(record)
