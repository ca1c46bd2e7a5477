"""Binance's market-data shapes that the paper venue's funding decides: GET premiumIndex.

There is no index feed: the index is the mark, and the funding rate is the fixed one the account
pays (``funding.RATE``) at the funding times (``funding.next_time``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot_cli.paper import funding
from bot_cli.paper.shapes import money


FUNDING_RATE = money(funding.RATE)  # "0.00010000": the usual 0.01 % per period, charged as such
INTEREST_RATE = "0.00010000"


def premium_index(symbol: str, mark: Decimal, now: int) -> dict[str, Any]:
    """GET /fapi/v1/premiumIndex for one symbol; with no index feed, index = mark."""
    price = money(mark)  # eight decimals, as Binance prints it
    return {
        "symbol": symbol,
        "markPrice": price,
        "indexPrice": price,
        "estimatedSettlePrice": price,
        "lastFundingRate": FUNDING_RATE,
        "interestRate": INTEREST_RATE,
        "nextFundingTime": funding.next_time(now),
        "time": now,
    }
