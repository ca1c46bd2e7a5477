"""Binance's official SDK arms the paper venue's countdownCancelAll: its strict model
(``AutoCancelAllOpenOrdersResponse``, countdownTime a StrictStr) parses the answer."""

from __future__ import annotations

import pytest


pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import AutoCancelAllOpenOrdersResponse

from tests.paper.compat import COMPAT
from tests.paper.test_compat_sdk import Sdk, assert_no_mismatch, mismatches_since
from tests.paper.test_compat_sdk import sdk as strict_sdk  # noqa: F401 - the fixture `sdk`, shared


BTC = "BTCUSDT"


def test_auto_cancel_all_open_orders_parses_strictly(strict_sdk: Sdk) -> None:  # noqa: F811
    """Armed and turned off through auto_cancel_all_open_orders: both answers fit the SDK model."""
    # Arrange
    before = len(COMPAT.mismatches)

    # Act
    armed = strict_sdk.call("countdownCancelAll", lambda r: r.auto_cancel_all_open_orders(BTC, 100000))
    raw = strict_sdk.raw
    off = strict_sdk.call("countdownCancelAll (off)", lambda r: r.auto_cancel_all_open_orders(BTC, 0))

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert isinstance(armed, AutoCancelAllOpenOrdersResponse)
    assert raw == {"symbol": BTC, "countdownTime": "100000"}
    assert (armed.symbol, armed.countdown_time) == (BTC, "100000")
    assert off.countdown_time == "0"


def test_an_unknown_symbol_is_the_sdks_bad_request(strict_sdk: Sdk) -> None:  # noqa: F811
    """-1121 reaches the SDK caller as BadRequestError, as any refused request does."""
    # Act
    with pytest.raises(BadRequestError) as refused:
        strict_sdk.rest.auto_cancel_all_open_orders("NOPEUSDT", 1000)

    # Assert
    assert refused.value.status_code == -1121
