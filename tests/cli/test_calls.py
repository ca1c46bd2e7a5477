"""`bot recover` prints each planned command as the request it sends: every command has a line.

The request is the REST client's own (exchange.requests.for_command); that the client sends
exactly it is tested in tests/exchange/test_requests.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot_cli.cli.calls import describe
from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, Leg, Millis, OrderType, PendingId, PositionSide, Side, Status
from tests.core.helpers import pending


PID = PendingId("bc0x")
ONE = Decimal(1)
LIMIT = cm.PlaceEntry(PID, ClientId("bc0x-e"), "BTCUSDT", Side.BUY, OrderType.LIMIT, ONE, Decimal("9000.5"),
                      PositionSide.BOTH)
SL = cm.PlaceProtection(PID, ClientId("bc0x-sl1"), Leg.SL, "BTCUSDT", Side.SELL, ONE, Decimal(8500),
                        PositionSide.BOTH)
CLOSE = cm.ClosePosition(PID, ClientId("bc0x-x1"), "BTCUSDT", Side.SELL, ONE, PositionSide.BOTH)


@pytest.mark.parametrize(
    ("cmd", "line"),
    [
        pytest.param(LIMIT,
                     "POST /fapi/v1/order symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000.5"
                     "&timeInForce=GTC&newClientOrderId=bc0x-e&newOrderRespType=ACK", id="limit entry"),
        pytest.param(SL,
                     "POST /fapi/v1/algoOrder algoType=CONDITIONAL&symbol=BTCUSDT&side=SELL&type=STOP_MARKET"
                     "&quantity=1&triggerPrice=8500&workingType=MARK_PRICE&reduceOnly=true&clientAlgoId=bc0x-sl1",
                     id="stop-loss"),
        pytest.param(CLOSE,
                     "POST /fapi/v1/order symbol=BTCUSDT&side=SELL&type=MARKET&quantity=1&reduceOnly=true"
                     "&newClientOrderId=bc0x-x1&newOrderRespType=ACK", id="close at market"),
        pytest.param(cm.CancelEntry(PID, "BTCUSDT", ClientId("bc0x-e")),
                     "DELETE /fapi/v1/order symbol=BTCUSDT&origClientOrderId=bc0x-e", id="cancel the entry"),
        pytest.param(cm.CancelProtection(PID, ClientId("bc0x-sl1")),
                     "DELETE /fapi/v1/algoOrder clientAlgoId=bc0x-sl1", id="cancel a protection"),
        pytest.param(cm.QueryEntry(PID, "BTCUSDT", ClientId("bc0x-e")),
                     "GET /fapi/v1/order symbol=BTCUSDT&origClientOrderId=bc0x-e", id="query the entry"),
        pytest.param(cm.QueryClose(PID, "BTCUSDT", ClientId("bc0x-x1")),
                     "GET /fapi/v1/order symbol=BTCUSDT&origClientOrderId=bc0x-x1", id="query a close"),
        pytest.param(cm.QueryProtection(PID, ClientId("bc0x-tp1")),
                     "GET /fapi/v1/algoOrder clientAlgoId=bc0x-tp1", id="query a protection"),
        pytest.param(cm.QueryPosition(PID, "BTCUSDT", PositionSide.BOTH),
                     "GET /fapi/v3/positionRisk", id="query the position: every symbol's, as sent"),
    ],
)
def test_an_exchange_command_is_the_request_it_sends(cmd: cm.Command, line: str) -> None:
    """Method, path and the exact query, in the order sent (one-way mode)."""
    assert describe(cmd) == line


def test_in_hedge_mode_the_line_names_the_position_side_and_never_reduce_only() -> None:
    """The same close in hedge mode: positionSide=LONG, no reduceOnly."""
    # Arrange
    close = cm.ClosePosition(PID, ClientId("bc0x-x1"), "BTCUSDT", Side.SELL, ONE, PositionSide.LONG)

    # Act
    line = describe(close, hedge_mode=True)

    # Assert
    assert line == ("POST /fapi/v1/order symbol=BTCUSDT&side=SELL&type=MARKET&positionSide=LONG&quantity=1"
                    "&newClientOrderId=bc0x-x1&newOrderRespType=ACK")


@pytest.mark.parametrize(
    ("cmd", "hedge_mode", "line"),
    [
        pytest.param(CLOSE, True,
                     "not sendable: close order bc0x-x1: hedge mode needs positionSide LONG or SHORT",
                     id="BOTH in hedge mode"),
        pytest.param(cm.PlaceEntry(PID, ClientId("bc0x-e"), "BTCUSDT", Side.BUY, OrderType.LIMIT, ONE, None,
                                   PositionSide.BOTH), False,
                     "not sendable: new order bc0x-e: a LIMIT order needs a price", id="LIMIT without price"),
    ],
)
def test_a_command_the_client_would_refuse_is_a_line_saying_so(
    cmd: cm.Command, hedge_mode: bool, line: str
) -> None:
    """A refused build is a line of the plan, not an exception that hides the rest of it."""
    assert describe(cmd, hedge_mode=hedge_mode) == line


@pytest.mark.parametrize(
    ("cmd", "line"),
    [
        pytest.param(cm.PersistPending(pending(Status.SUBMITTING)), "journal: save SUBMITTING", id="persist"),
        pytest.param(cm.ArchivePending(pending(Status.SUBMITTING), "closed"), "archive: closed", id="archive"),
        pytest.param(cm.Alert(PID, "look"), "ALERT: look", id="alert"),
    ],
)
def test_a_local_action_says_what_it_does(cmd: cm.Command, line: str) -> None:
    """Journal, archive and alerts are named as actions, not as requests."""
    assert describe(cmd) == line


def test_a_scheduled_check_names_its_time() -> None:
    """A timer is a line with the local time it fires."""
    assert describe(cm.ScheduleCheck(PID, Millis(0))).startswith("check again at ")
