"""Specification of core.ids: deterministic client ids that Binance accepts and we recognise.

Every order's client id derives from its pending id, leg and generation, so after a crash
reconciliation finds our orders by id alone; ids that are not ours parse to None.
"""

from __future__ import annotations

import re

import pytest

from bot_cli.core.ids import (
    BINANCE_ID,
    MAX_LEN,
    InvalidId,
    ParsedId,
    client_id,
    is_pending_id,
    make_pending_id,
    parse_client_id,
)
from bot_cli.core.model import Leg, PendingId
from tests.core.helpers import PID, T0


OURS = re.compile(r"^[A-Za-z0-9-]{1,36}$")
GENS = [0, 1, 2, 9, 10, 99, 12_345, 10**9, 10**16, 10**17 - 1]
PROTECTIVE = [Leg.SL, Leg.TP, Leg.CLOSE]


def test_binance_rule_is_the_documented_one() -> None:
    """BINANCE_ID is newClientOrderId's rule from the Binance USD-M docs."""
    # Arrange
    documented = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"

    # Act
    pattern = BINANCE_ID.pattern

    # Assert
    assert pattern == documented
    assert MAX_LEN == 36


@pytest.mark.parametrize(
    ("now_ms", "entropy"),
    [
        pytest.param(0, 0, id="epoch, no entropy"),
        pytest.param(T0, 1, id="2025, small entropy"),
        pytest.param(T0, 36**5 - 1, id="largest entropy that fits"),
        pytest.param(36**9 - 1, 36**5 - 1, id="largest time that fits"),
    ],
)
def test_pending_ids_are_ours_and_sortable(now_ms: int, entropy: int) -> None:
    """make_pending_id: 'bc' + 9 base-36 time digits + 5 entropy digits, recognised as ours."""
    # Arrange
    later = make_pending_id(now_ms + 1, 0) if now_ms + 1 < 36**9 else None

    # Act
    pid = make_pending_id(now_ms, entropy)

    # Assert
    assert is_pending_id(pid)
    assert len(pid) == 16
    assert OURS.match(pid)
    if later is not None:
        assert later > make_pending_id(now_ms, 0)


def test_pending_ids_are_deterministic() -> None:
    """Same time and entropy, same pending id; different entropy, different id."""
    # Arrange
    a, b = make_pending_id(T0, 7), make_pending_id(T0, 7)

    # Act
    c = make_pending_id(T0, 8)

    # Assert
    assert a == b != c


@pytest.mark.parametrize("which", [Leg.ENTRY, *PROTECTIVE], ids=lambda leg: leg.name)
@pytest.mark.parametrize("gen", GENS, ids=lambda g: f"gen {g}")
def test_client_ids_are_valid_on_binance_and_roundtrip(which: Leg, gen: int) -> None:
    """Every leg and generation: <= 36 chars, only [A-Za-z0-9-], parsed back to the same parts."""
    # Arrange
    expected_gen = 0 if which is Leg.ENTRY else gen

    # Act
    cid = client_id(PID, which, gen)

    # Assert
    assert len(cid) <= 36
    assert BINANCE_ID.match(cid)
    assert OURS.match(cid)
    assert parse_client_id(cid) == ParsedId(PID, which, expected_gen)


@pytest.mark.parametrize(
    ("which", "gen", "expected"),
    [
        pytest.param(Leg.ENTRY, 0, f"{PID}-e", id="entry"),
        pytest.param(Leg.ENTRY, 5, f"{PID}-e", id="entry ignores the generation"),
        pytest.param(Leg.SL, 3, f"{PID}-sl3", id="stop-loss, generation 3"),
        pytest.param(Leg.TP, 3, f"{PID}-tp3", id="take-profit, generation 3"),
        pytest.param(Leg.CLOSE, 4, f"{PID}-x4", id="market close, generation 4"),
    ],
)
def test_client_id_shape(which: Leg, gen: int, expected: str) -> None:
    """The documented shape: <pid>-e, <pid>-sl<gen>, <pid>-tp<gen>, <pid>-x<gen>."""
    # Arrange
    pid = PID

    # Act
    cid = client_id(pid, which, gen)

    # Assert
    assert cid == expected


def test_every_leg_and_generation_gets_a_distinct_id() -> None:
    """No two (leg, generation) pairs of one entry share an id."""
    # Arrange
    pairs = [(leg, g) for leg in PROTECTIVE for g in range(1, 200)]

    # Act
    ids = {client_id(PID, leg, g) for leg, g in pairs} | {client_id(PID, Leg.ENTRY)}

    # Assert
    assert len(ids) == len(pairs) + 1


def test_counter_too_large_for_36_chars_is_refused() -> None:
    """A generation that would push the id past 36 chars raises InvalidId, never truncates."""
    # Arrange
    gen = 10**17

    # Act
    with pytest.raises(InvalidId, match="would not be valid on Binance"):
        client_id(PID, Leg.TP, gen)

    # Assert
    assert len(f"{PID}-tp{gen}") > 36


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param("", id="empty"),
        pytest.param("xx0mgj6k3cw00001", id="wrong prefix"),
        pytest.param("BC0MGJ6K3CW00001", id="upper case"),
        pytest.param("bc12345", id="too short"),
        pytest.param("bc" + "0" * 21, id="too long"),
        pytest.param("bc0mgj6k3cw_0001", id="underscore"),
        pytest.param("bc0mgj6k3cw-0001", id="dash"),
        pytest.param("bc0mgj6k3cw00001\n", id="trailing newline"),
    ],
)
def test_client_id_refuses_what_is_not_a_pending_id(pid: str) -> None:
    """client_id only derives from our own pending ids."""
    # Arrange
    candidate = PendingId(pid)

    # Act
    with pytest.raises(InvalidId):
        client_id(candidate, Leg.SL, 1)

    # Assert
    assert not is_pending_id(candidate)


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param("autoclose-123", id="Binance liquidation autoclose"),
        pytest.param("adl_autoclose", id="Binance ADL"),
        pytest.param("settlement_autoclose-7", id="Binance settlement"),
        pytest.param("web_abc", id="web UI order"),
        pytest.param("ios_xyz", id="mobile app order"),
        pytest.param("x", id="one character"),
        pytest.param("", id="empty"),
        pytest.param(f"{PID}", id="a bare pending id"),
        pytest.param(f"{PID}-", id="no leg"),
        pytest.param(f"{PID}-e1", id="entry with a generation"),
        pytest.param(f"{PID}-sl", id="stop-loss without generation"),
        pytest.param(f"{PID}-zz1", id="unknown leg"),
        pytest.param(f"{PID}-SL1", id="upper-case leg"),
        pytest.param(f"{PID}-sl1-", id="trailing dash"),
        pytest.param(f" {PID}-sl1", id="leading space"),
        pytest.param(f"{PID}-sl1\n", id="trailing newline"),
        pytest.param(f"{PID.upper()}-sl1", id="upper-case pending id"),
        pytest.param("bc12345-sl1", id="pending id too short"),
    ],
)
def test_foreign_ids_parse_to_none(foreign: str) -> None:
    """Ids that are not ours (other tools, the web UI, Binance itself) parse to None."""
    # Arrange
    text = foreign

    # Act
    parsed = parse_client_id(text)

    # Assert
    assert parsed is None
