"""The Binance USDⓈ-M REST endpoints BinanceRest calls: method, path, IP weight, security.

Weights are the IP request weight per call (reference §3, §7). ``throttled`` says whether
the local read throttle may refuse the call when the minute's weight is nearly spent:
reads may wait, order sends and cancels never do (new orders cost 0 IP weight; a
protective send must not queue behind a read). ``DELETE /fapi/v1/listenKey`` is
deliberately absent: the key is shared per account, deleting it kills every consumer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


__all__ = ["Endpoint", "Security"]


class Security(enum.Enum):
    NONE = "none"  # public
    KEY = "key"  # API key header only (USER_STREAM)
    SIGNED = "signed"  # TRADE / USER_DATA


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    weight: int  # IP request weight (orders cost 0 IP weight)
    security: Security = Security.SIGNED
    throttled: bool = True  # refused locally near the weight limit (reads only)
    counts_order: bool = False  # a new order: counts toward the account's ORDERS limits


TIME = Endpoint("GET", "/fapi/v1/time", 1, Security.NONE)
EXCHANGE_INFO = Endpoint("GET", "/fapi/v1/exchangeInfo", 1, Security.NONE)
MARK_PRICE = Endpoint("GET", "/fapi/v1/premiumIndex", 1, Security.NONE)  # 1 with a symbol
NEW_ORDER = Endpoint("POST", "/fapi/v1/order", 0, throttled=False, counts_order=True)
QUERY_ORDER = Endpoint("GET", "/fapi/v1/order", 1)
CANCEL_ORDER = Endpoint("DELETE", "/fapi/v1/order", 1, throttled=False)
OPEN_ORDERS = Endpoint("GET", "/fapi/v1/openOrders", 40)  # 40 without a symbol
OPEN_ORDERS_OF = Endpoint("GET", "/fapi/v1/openOrders", 1)  # with a symbol
NEW_ALGO = Endpoint("POST", "/fapi/v1/algoOrder", 0, throttled=False, counts_order=True)
QUERY_ALGO = Endpoint("GET", "/fapi/v1/algoOrder", 1)
CANCEL_ALGO = Endpoint("DELETE", "/fapi/v1/algoOrder", 1, throttled=False)
OPEN_ALGOS = Endpoint("GET", "/fapi/v1/openAlgoOrders", 40)  # 40 without a symbol
OPEN_ALGOS_OF = Endpoint("GET", "/fapi/v1/openAlgoOrders", 1)  # with a symbol
# The dead-man switch's heartbeat: never held back by the read throttle (a missed renewal
# cancels the resting entries it guards).
COUNTDOWN_CANCEL_ALL = Endpoint("POST", "/fapi/v1/countdownCancelAll", 10, throttled=False)
POSITION_RISK = Endpoint("GET", "/fapi/v3/positionRisk", 5)
POSITION_MODE = Endpoint("GET", "/fapi/v1/positionSide/dual", 30)
USER_TRADES = Endpoint("GET", "/fapi/v1/userTrades", 5)
# The user stream dies without these (1 weight each, every ~30 min): never held back.
LISTEN_KEY_NEW = Endpoint("POST", "/fapi/v1/listenKey", 1, Security.KEY, throttled=False)
LISTEN_KEY_KEEPALIVE = Endpoint("PUT", "/fapi/v1/listenKey", 1, Security.KEY, throttled=False)
