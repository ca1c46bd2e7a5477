"""`bot recover` prints each planned command as the request it sends: every command has a line."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot_cli.cli.calls import describe
from bot_cli.core import commands as cm
from bot_cli.core.model import ClientId, PendingId, PositionSide, Side


PID = PendingId("bc0x")


@pytest.mark.parametrize(
    ("cmd", "line"),
    [
        pytest.param(cm.CancelEntry(PID, "BTCUSDT", ClientId("bc0x-e")),
                     "DELETE /fapi/v1/order BTCUSDT origClientOrderId=bc0x-e", id="cancel the entry"),
        pytest.param(cm.CancelProtection(PID, ClientId("bc0x-sl1")),
                     "DELETE /fapi/v1/algoOrder clientAlgoId=bc0x-sl1", id="cancel a protection"),
        pytest.param(cm.ClosePosition(PID, ClientId("bc0x-x1"), "BTCUSDT", Side.SELL, Decimal(1), PositionSide.BOTH),
                     "POST /fapi/v1/order BTCUSDT SELL MARKET reduceOnly quantity=1 newClientOrderId=bc0x-x1",
                     id="close at market"),
        pytest.param(cm.Alert(PID, "look"), "ALERT: look", id="alert"),
    ],
)
def test_each_command_is_described_as_its_request(cmd: cm.Command, line: str) -> None:
    """A command is one line naming the endpoint and the ids it sends."""
    assert describe(cmd) == line
