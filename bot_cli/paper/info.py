"""GET /fapi/v1/exchangeInfo of the paper venue: its symbols with Binance's filter shapes."""

from __future__ import annotations

from typing import Any

from bot_cli.paper.auth import WEIGHT_LIMIT, OrderLimits
from bot_cli.paper.market import PERCENT_DOWN, PERCENT_UP, SYMBOLS, SymbolSpec


ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]


def rate_limits(orders: OrderLimits) -> list[dict[str, Any]]:
    """exchangeInfo.rateLimits: the limits the venue enforces (the order limits as configured)."""
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": WEIGHT_LIMIT},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": orders.per_1m},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders.per_10s},
    ]


def symbol_info(s: SymbolSpec) -> dict[str, Any]:
    """One symbol of exchangeInfo, with the shape and constant fields of a Binance perpetual."""
    return {
        "symbol": s.symbol,
        "pair": s.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": s.base_asset,
        "quoteAsset": "USDT",
        "marginAsset": "USDT",
        "pricePrecision": s.price_precision,
        "quantityPrecision": s.quantity_precision,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "filters": _filters(s),
        "orderTypes": ORDER_TYPES,
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
    }


def _filters(s: SymbolSpec) -> list[dict[str, Any]]:
    """PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MAX_NUM_ORDERS, MIN_NOTIONAL, PERCENT_PRICE."""
    return [
        {
            "filterType": "PRICE_FILTER",
            "maxPrice": str(s.max_price),
            "minPrice": str(s.min_price),
            "tickSize": str(s.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "maxQty": str(s.max_qty),
            "minQty": str(s.min_qty),
            "stepSize": str(s.step_size),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "maxQty": str(s.market_max_qty),
            "minQty": str(s.min_qty),
            "stepSize": str(s.step_size),
        },
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": str(s.min_notional)},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": str(PERCENT_UP),
            "multiplierDown": str(PERCENT_DOWN),
            # The docs example (fixture, 2025-11) has the int 4; the SDK model (2026-08,
            # generated from Binance's spec, the source the fixtures cite for later changes)
            # declares a string. We follow the SDK; the bot's adapter reads either.
            "multiplierDecimal": "4",
        },
    ]


def exchange_info(now: int, orders: OrderLimits) -> dict[str, Any]:
    """GET /fapi/v1/exchangeInfo: the rate limits the venue enforces and every symbol."""
    return {
        "timezone": "UTC",
        "serverTime": now,
        "rateLimits": rate_limits(orders),
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol_info(s) for s in SYMBOLS.values()],
    }
