"""Binance's official SDK arms the paper venue's countdownCancelAll: its strict model
(``AutoCancelAllOpenOrdersResponse``, countdownTime a StrictStr) parses the answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.errors import BadRequestError
from binance_sdk_derivatives_trading_usds_futures.rest_api.models import AutoCancelAllOpenOrdersResponse

from tests.paper.compat import COMPAT, venue_thread
from tests.paper.test_compat_sdk import Sdk, assert_no_mismatch, mismatches_since


BTC = "BTCUSDT"


@pytest.fixture
def sdk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Sdk]:
    caplog.set_level(logging.WARNING)
    with venue_thread(tmp_path, volatility=0.0) as handle:
        yield Sdk(handle.rest_url)
    relaxed = [r.getMessage() for r in caplog.records if "response" in r.getMessage()]
    assert not relaxed, relaxed  # the SDK fell back to relaxed typing or to the raw payload


def test_auto_cancel_all_open_orders_parses_strictly(sdk: Sdk) -> None:
    """Armed and turned off through auto_cancel_all_open_orders: both answers fit the SDK model."""
    # Arrange
    before = len(COMPAT.mismatches)

    # Act
    armed = sdk.call("countdownCancelAll", lambda r: r.auto_cancel_all_open_orders(BTC, 100000))
    raw = sdk.raw
    off = sdk.call("countdownCancelAll (off)", lambda r: r.auto_cancel_all_open_orders(BTC, 0))

    # Assert
    assert_no_mismatch(mismatches_since(before))
    assert isinstance(armed, AutoCancelAllOpenOrdersResponse)
    assert raw == {"symbol": BTC, "countdownTime": "100000"}
    assert (armed.symbol, armed.countdown_time) == (BTC, "100000")
    assert off.countdown_time == "0"


def test_an_unknown_symbol_is_the_sdks_bad_request(sdk: Sdk) -> None:
    """-1121 reaches the SDK caller as BadRequestError, as any refused request does."""
    # Act
    with pytest.raises(BadRequestError) as refused:
        sdk.rest.auto_cancel_all_open_orders("NOPEUSDT", 1000)

    # Assert
    assert refused.value.status_code == -1121
