"""Specification of store.codec: journal records that decode to exactly what was encoded.

Decimals travel as strings and come back digit for digit; enums travel by value; a record
that does not decode raises CorruptRecord naming the field, never a silent default.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from bot_cli.core.model import (
    CloseOrder,
    EntrySpec,
    Leg,
    LegState,
    Note,
    Pending,
    PositionSide,
    Side,
    Status,
)
from bot_cli.store.codec import RECORD_VERSION, CorruptRecord, decode, encode
from tests.core.helpers import T0, D, cid, leg, legs, pending, spec


def _through_json(p: Pending) -> Pending:
    return decode(json.loads(json.dumps(encode(p))))


def _rich(status: Status) -> Pending:
    """A pending in ``status`` with every optional part filled in: legs, close, history."""
    return replace(
        pending(status),
        order_id=9_223_372_036_854_775_807,
        filled_qty=D("0.40"),
        avg_price=D("101.25"),
        gen=3,
        protections=(
            leg(Leg.SL, 2, "0.4", LegState.CANCELING),
            *legs(3, "0.40", LegState.LIVE, sent_at=T0 + 5),
            leg(Leg.SL, 1, "0.1", LegState.UNKNOWN),
            leg(Leg.TP, 1, "0.1", LegState.SENDING),
        ),
        close=CloseOrder(cid(Leg.CLOSE, 4), D("0.40"), LegState.SENDING, T0 + 9),
        attempts=2,
        retry_at=T0 + 4_000,
        reason="SL trigger 95 already crossed (-2021); closed at market — \"quoted\" ünïcode",
        history=(Note(T0, "entry requested"), Note(T0 + 1, "SUBMITTING -> OPEN on EntryAccepted")),
    )


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.name)
def test_roundtrip_in_every_status(status: Status) -> None:
    """encode -> JSON text -> decode gives back an equal Pending, in every status."""
    # Arrange
    p = _rich(status)

    # Act
    back = _through_json(p)

    # Assert
    assert back == p


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.name)
def test_roundtrip_of_the_plain_canonical_pendings(status: Status) -> None:
    """The minimal pending of each status (no legs, no close, defaults) roundtrips too."""
    # Arrange
    p = pending(status)

    # Act
    back = _through_json(p)

    # Assert
    assert back == p


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(spec(price=None), id="market entry: no price"),
        pytest.param(spec(take_profit=None), id="no take-profit"),
        pytest.param(spec(Side.SELL, stop_loss="105", take_profit="90"), id="short"),
        pytest.param(spec(position_side=PositionSide.SHORT, side=Side.SELL, stop_loss="105",
                          take_profit="90"), id="hedge mode SHORT"),
        pytest.param(spec(symbol="1000PEPEUSDT", quantity="123456789",
                          price="0.0000123", stop_loss="0.0000111", take_profit="0.0000150"),
                     id="tiny prices, huge quantity"),
    ],
)
def test_roundtrip_of_every_spec_shape(entry: EntrySpec) -> None:
    """Optional prices, sides and position sides survive the journal."""
    # Arrange
    p = pending(Status.OPEN, spec=entry)

    # Act
    back = _through_json(p)

    # Assert
    assert back.spec == entry


@pytest.mark.parametrize(
    "text",
    ["0.00000001", "1E-8", "0.10", "100.00", "123456789012345678901234567890.123456789",
     "0", "0.0", "-0.5", "1E+3"],
)
def test_decimals_survive_digit_for_digit(text: str) -> None:
    """A Decimal comes back with the same sign, digits and exponent, never via float."""
    # Arrange
    value = Decimal(text)
    p = pending(Status.PARTIALLY_FILLED, filled_qty=value, avg_price=value,
                spec=spec(quantity=text, price=text, stop_loss=text, take_profit=text),
                protections=(replace(leg(Leg.SL, 1, "1", LegState.LIVE), quantity=value,
                                     trigger_price=value),))

    # Act
    record = json.loads(json.dumps(encode(p)))
    back = decode(record)

    # Assert
    for got in (back.filled_qty, back.avg_price, back.spec.quantity, back.spec.price,
                back.spec.stop_loss, back.spec.take_profit, back.protections[0].quantity,
                back.protections[0].trigger_price):
        assert got is not None
        assert got.as_tuple() == value.as_tuple()
    assert all(isinstance(record[k], str) for k in ("filled_qty", "avg_price", "quantity"))


def test_record_is_versioned_and_plain_json() -> None:
    """Every record carries the schema version and holds only JSON types."""
    # Arrange
    p = _rich(Status.EXITING)

    # Act
    record = encode(p)

    # Assert
    assert record["rv"] == RECORD_VERSION
    assert json.loads(json.dumps(record)) == record


# -- corrupt records ------------------------------------------------------------------


def _good() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(json.dumps(encode(_rich(Status.EXITING))))
    return record


def _without(key: str) -> dict[str, Any]:
    record = _good()
    del record[key]
    return record


def _with(key: str, value: Any) -> dict[str, Any]:
    record = _good()
    record[key] = value
    return record


def _leg_with(key: str, value: Any) -> dict[str, Any]:
    record = _good()
    record["protections"][0][key] = value
    return record


def _leg_without(key: str) -> dict[str, Any]:
    record = _good()
    del record["protections"][0][key]
    return record


def _close_with(key: str, value: Any) -> dict[str, Any]:
    record = _good()
    record["close"][key] = value
    return record


# Fields added after the first records were written: an older record decodes without them.
ADDED = ["entry_done", "exits", "flatten", "verify_share", "transient", "exposed_since", "alerted", "sl_first"]
REQUIRED = [k for k in _good() if k != "rv" and k not in ADDED]
LEG_FIELDS = ["leg", "gen", "client_id", "quantity", "trigger_price", "state", "sent_at"]


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field_is_named(field: str) -> None:
    """A record without one of its fields is CorruptRecord naming that field."""
    # Arrange
    record = _without(field)

    # Act
    with pytest.raises(CorruptRecord) as raised:
        decode(record)

    # Assert
    assert field in str(raised.value)


@pytest.mark.parametrize(
    ("status", "entry_done", "flatten"),
    [(Status.PARTIALLY_FILLED, False, False), (Status.PROTECTING, True, False), (Status.EXITING, True, True)],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_a_record_written_before_the_added_fields_gets_what_its_status_implies(
    status: Status, entry_done: bool, flatten: bool
) -> None:
    """An older record (no exits, no entry_done) decodes with the facts its status implies."""
    # Arrange
    record = {k: v for k, v in encode(_rich(status)).items() if k not in ADDED}

    # Act
    p = decode(json.loads(json.dumps(record)))

    # Assert
    assert (p.entry_done, p.flatten, p.exits, p.transient, p.alerted) == (entry_done, flatten, (), 0, False)


def test_closing_is_read_as_exiting_its_new_name() -> None:
    """Records written while the winding-down status was called CLOSING still decode."""
    # Arrange
    record = {**encode(_rich(Status.EXITING)), "status": "CLOSING"}

    # Act
    p = decode(record)

    # Assert
    assert p.status is Status.EXITING


@pytest.mark.parametrize("field", LEG_FIELDS)
def test_missing_leg_field_is_named(field: str) -> None:
    """A protective order without one of its fields is CorruptRecord naming that field."""
    # Arrange
    record = _leg_without(field)

    # Act
    with pytest.raises(CorruptRecord) as raised:
        decode(record)

    # Assert
    assert field in str(raised.value)


@pytest.mark.parametrize(
    ("field", "record"),
    [
        pytest.param("quantity", _with("quantity", 0.1), id="float quantity"),
        pytest.param("filled_qty", _with("filled_qty", 1), id="int filled_qty"),
        pytest.param("stop_loss", _with("stop_loss", None), id="null stop_loss"),
        pytest.param("trigger_price", _leg_with("trigger_price", 95.0), id="float leg trigger"),
        pytest.param("quantity", _close_with("quantity", 1.0), id="float close quantity"),
        pytest.param("filled_qty", _with("filled_qty", "abc"), id="filled_qty not a number"),
        pytest.param("avg_price", _with("avg_price", "1,5"), id="avg_price with a comma"),
        pytest.param("side", _with("side", "LEFT"), id="unknown side"),
        pytest.param("status", _with("status", "DONE"), id="unknown status"),
        pytest.param("order_type", _with("order_type", "STOP"), id="unknown order type"),
        pytest.param("position_side", _with("position_side", "BOTHWAYS"),
                     id="unknown position side"),
        pytest.param("state", _leg_with("state", "ALIVE"), id="unknown leg state"),
        pytest.param("leg", _leg_with("leg", "stop"), id="unknown leg"),
        pytest.param("created_at", _with("created_at", "yesterday"), id="created_at not an int"),
        pytest.param("gen", _with("gen", "third"), id="gen not an int"),
        pytest.param("protections", _with("protections", "none"), id="protections not a list"),
        pytest.param("history", _with("history", [[T0]]), id="history note without text"),
    ],
)
def test_bad_value_is_named(field: str, record: dict[str, Any]) -> None:
    """A field of the wrong type or an unknown enum value is CorruptRecord naming the field."""
    # Arrange
    bad = record

    # Act
    with pytest.raises(CorruptRecord) as raised:
        decode(bad)

    # Assert
    assert field in str(raised.value)


@pytest.mark.parametrize(
    "version",
    [pytest.param(None, id="no version"), pytest.param(RECORD_VERSION + 1, id="newer version"),
     pytest.param("1", id="version as a string")],
)
def test_unknown_record_version_is_refused(version: object) -> None:
    """A record of another schema version is refused, naming the version."""
    # Arrange
    record = _with("rv", version)

    # Act
    with pytest.raises(CorruptRecord) as raised:
        decode(record)

    # Assert
    assert repr(version) in str(raised.value)


@pytest.mark.parametrize(
    "value", [float("inf"), float("nan"), [1], {"a": 1}], ids=["Infinity", "NaN", "list", "object"]
)
def test_a_time_that_is_not_an_integer_is_a_corrupt_record_not_a_crash(value: object) -> None:
    """The journal's JSON reader accepts Infinity: one such line must not crash the daemon."""
    record = {**_good(), "created_at": value}
    with pytest.raises(CorruptRecord):
        decode(record)
