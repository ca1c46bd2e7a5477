"""Classify Binance answers into outcomes named by the caller's next step (pure).

``classify(status, code, msg)`` is the only place that knows Binance's HTTP statuses and
error codes; ``to_venue_error`` then maps an outcome onto the ``bot_cli.venue`` tree::

    Outcome           -> venue error       what the caller does next
    ACCEPTED          -> (no error)        use the answer
    REJECTED          -> Rejected          definitely not executed; the exchange said no
    INVALID_REQUEST   -> Rejected          definitely not executed; our request is wrong
    CLOCK_SKEW        -> Rejected          -1021, not executed; resync the clock, resend with
                                           a new timestamp and the SAME client id
    WOULD_TRIGGER     -> WouldTrigger      -2021 / -4142: the trigger is already crossed
    DUPLICATE         -> Duplicate         -4116: an OPEN order has this id; query it
    UNKNOWN           -> OutcomeUnknown    may have executed; query by client id, never resend
    NOT_FOUND         -> NotFound          -2013 / -2011 / -1125: no such (open) order or key
    UNAVAILABLE       -> Unavailable       -1008, 503 "Service Unavailable." / "Internal
                                           error; unable to process...": transient, not
                                           executed; send again after retry_after (~1 s)
    RATE_LIMITED      -> RateLimited       429 / 418 / 403 WAF / -1003 / -1015: not executed; wait
                                           retry_after (60 s unless told); an Unavailable
    LIMIT_REACHED     -> LimitReached      -4045: the account's open conditional orders are at
                                           their limit; not executed, and not a refusal of this
                                           order: send again once room frees
    AUTH_FAILED       -> AuthFailed        keys or signature refused; a human must fix them

Any code missing from ``CODES`` is UNKNOWN: an answer we cannot read is never taken
as a definite failure, so it is resolved by a query instead of being retried blindly.
"""

from __future__ import annotations

import enum
from http import HTTPStatus

from bot_cli.venue import (
    AuthFailed,
    Duplicate,
    LimitReached,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
    WouldTrigger,
)


__all__ = ["CODES", "RETRY_AFTER_S", "Outcome", "classify", "to_venue_error"]


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WOULD_TRIGGER = "would_trigger"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    INVALID_REQUEST = "invalid_request"
    CLOCK_SKEW = "clock_skew"
    LIMIT_REACHED = "limit_reached"


_R, _I, _U = Outcome.REJECTED, Outcome.INVALID_REQUEST, Outcome.UNKNOWN

# The one table: Binance USDⓈ-M error code -> outcome (reference §6, DOC-ERR).
CODES: dict[int, Outcome] = {
    -1002: Outcome.AUTH_FAILED,  # UNAUTHORIZED
    -1003: Outcome.RATE_LIMITED,  # TOO_MANY_REQUESTS
    -1006: _U,  # UNEXPECTED_RESP: "Execution status unknown."
    -1007: _U,  # TIMEOUT: "Send status unknown; execution status unknown."
    -1008: Outcome.UNAVAILABLE,  # throttled by system protection: not executed, transient
    -1013: _R,  # INVALID_MESSAGE
    -1015: Outcome.RATE_LIMITED,  # TOO_MANY_ORDERS: the account's new-order count per window
    -1021: Outcome.CLOCK_SKEW,  # INVALID_TIMESTAMP: not executed
    -1022: Outcome.AUTH_FAILED,  # INVALID_SIGNATURE
    -1100: _I,  # ILLEGAL_CHARS
    -1101: _I,  # TOO_MANY_PARAMETERS
    -1102: _I,  # MANDATORY_PARAM_EMPTY_OR_MALFORMED
    -1103: _I,  # UNKNOWN_PARAM
    -1104: _I,  # UNREAD_PARAMETERS
    -1105: _I,  # PARAM_EMPTY
    -1106: _I,  # PARAM_NOT_REQUIRED (e.g. reduceOnly in hedge mode)
    -1111: _I,  # BAD_PRECISION
    -1114: _I,  # TIF_NOT_REQUIRED
    -1115: _I,  # INVALID_TIF
    -1116: _I,  # INVALID_ORDER_TYPE
    -1117: _I,  # INVALID_SIDE
    -1118: _I,  # EMPTY_NEW_CL_ORD_ID
    -1119: _I,  # EMPTY_ORG_CL_ORD_ID
    -1121: _I,  # BAD_SYMBOL
    -1125: Outcome.NOT_FOUND,  # INVALID_LISTEN_KEY: recreate it
    -1128: _I,  # OPTIONAL_PARAMS_BAD_COMBO
    -1130: _I,  # INVALID_PARAMETER
    -2010: _R,  # NEW_ORDER_REJECTED
    -2011: Outcome.NOT_FOUND,  # CANCEL_REJECTED "Unknown order sent.": not open
    -2013: Outcome.NOT_FOUND,  # NO_SUCH_ORDER: not proof it never existed
    -2014: Outcome.AUTH_FAILED,  # BAD_API_KEY_FMT
    -2015: Outcome.AUTH_FAILED,  # REJECTED_MBX_KEY
    -2018: _R,  # BALANCE_NOT_SUFFICIENT
    -2019: _R,  # MARGIN_NOT_SUFFICIENT
    -2020: _R,  # UNABLE_TO_FILL
    -2021: Outcome.WOULD_TRIGGER,  # ORDER_WOULD_IMMEDIATELY_TRIGGER
    -2022: _R,  # REDUCE_ONLY_REJECT
    -2024: _R,  # POSITION_NOT_SUFFICIENT
    -2025: _R,  # MAX_OPEN_ORDER_EXCEEDED
    -4001: _I,  # PRICE_LESS_THAN_ZERO
    -4002: _R,  # PRICE_GREATER_THAN_MAX_PRICE
    -4003: _I,  # QTY_LESS_THAN_ZERO
    -4004: _R,  # QTY_LESS_THAN_MIN_QTY
    -4005: _R,  # QTY_GREATER_THAN_MAX_QTY
    -4013: _R,  # PRICE_LESS_THAN_MIN_PRICE
    -4014: _I,  # PRICE_NOT_INCREASED_BY_TICK_SIZE: we should have rounded
    -4015: _I,  # INVALID_CL_ORD_ID_LEN: a format error, NOT a duplicate
    -4016: _R,  # PRICE_HIGHTER_THAN_MULTIPLIER_UP (PERCENT_PRICE)
    -4023: _I,  # QTY_NOT_INCREASED_BY_STEP_SIZE: we should have rounded
    -4024: _R,  # PRICE_LOWER_THAN_MULTIPLIER_DOWN (PERCENT_PRICE)
    -4045: Outcome.LIMIT_REACHED,  # MAX_STOP_ORDER_EXCEEDED: 200 open conditional orders
    -4061: _I,  # POSITION_SIDE_NOT_MATCH: our position mode is wrong
    -4116: Outcome.DUPLICATE,  # DUPLICATED_CLIENT_ORDER_ID: an open order has it
    -4118: _R,  # REDUCE_ONLY_MARGIN_CHECK_FAILED
    -4120: _I,  # STOP_ORDER_SWITCH_ALGO: conditional type sent to /order
    -4131: _R,  # MARKET_ORDER_REJECT (PERCENT_PRICE)
    -4137: _I,  # quantity sent with closePosition
    -4138: _I,  # reduceOnly must be true with closePosition
    -4142: Outcome.WOULD_TRIGGER,  # STRATEGY_INVALID_TRIGGER_PRICE
    -4164: _R,  # MIN_NOTIONAL
    -5021: _R,  # FOK order rejected
    -5022: _R,  # GTX (post-only) order rejected
    -5028: _R,  # ME_RECVWINDOW_REJECT: stale in the matching engine, not executed
}

# 503 (A): "the API successfully sent the request but not get a response ... UNKNOWN".
UNKNOWN_503 = "Unknown error"
# 503 (B) "Service Unavailable." is a 100% failure; so is "Internal error; unable to process
# your request. Please try again." (reference §6). Only on 503: other 5xx stay UNKNOWN.
UNAVAILABLE_503 = ("Service Unavailable", "Internal error; unable to process your request")

# Seconds to wait when the answer has no Retry-After: a 429 asks for a minute (reference §6),
# a transient failure for a short backoff (the docs suggest 200 ms doubling).
RETRY_AFTER_S: dict[Outcome, float] = {Outcome.RATE_LIMITED: 60.0, Outcome.UNAVAILABLE: 1.0}


def classify(status: int, code: int | None, msg: str = "") -> Outcome:
    """The outcome of one HTTP answer: its status, Binance error code (if any) and message."""
    if _is_2xx(status) and (code is None or code >= 0):
        return Outcome.ACCEPTED
    if status in (HTTPStatus.IM_A_TEAPOT, HTTPStatus.TOO_MANY_REQUESTS):
        return Outcome.RATE_LIMITED
    if status == HTTPStatus.UNAUTHORIZED:
        return Outcome.AUTH_FAILED
    if status == HTTPStatus.SERVICE_UNAVAILABLE and msg.startswith(UNKNOWN_503):
        return Outcome.UNKNOWN
    if status == HTTPStatus.SERVICE_UNAVAILABLE and msg.startswith(UNAVAILABLE_503):
        return Outcome.UNAVAILABLE
    if code is not None:
        return CODES.get(code, Outcome.UNKNOWN)
    return _by_status(status)


def _by_status(status: int) -> Outcome:
    """An answer with no Binance code: only the HTTP status speaks."""
    if status == HTTPStatus.FORBIDDEN:
        return Outcome.RATE_LIMITED  # Binance uses 403 for WAF limit violations only
    if status == HTTPStatus.REQUEST_TIMEOUT:
        return Outcome.UNKNOWN  # the gateway timed out waiting for the backend
    if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
        return Outcome.INVALID_REQUEST  # 4xx is the sender's fault, not executed
    return Outcome.UNKNOWN  # 5xx and anything odd: may have executed


def _is_2xx(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES


_ERRORS: dict[Outcome, type[VenueError]] = {
    Outcome.REJECTED: Rejected,
    Outcome.INVALID_REQUEST: Rejected,
    Outcome.CLOCK_SKEW: Rejected,
    Outcome.WOULD_TRIGGER: WouldTrigger,
    Outcome.DUPLICATE: Duplicate,
    Outcome.UNKNOWN: OutcomeUnknown,
    Outcome.NOT_FOUND: NotFound,
    Outcome.AUTH_FAILED: AuthFailed,
    Outcome.LIMIT_REACHED: LimitReached,
}


def to_venue_error(
    outcome: Outcome, code: int | None, msg: str, *, retry_after: float | None = None
) -> VenueError:
    """The ``bot_cli.venue`` error for a non-accepted outcome.

    ``retry_after`` (seconds) is kept by the transient outcomes; None means the default
    of ``RETRY_AFTER_S``."""
    if outcome is Outcome.ACCEPTED:
        raise ValueError("an accepted answer is not an error")
    wait = retry_after if retry_after is not None else RETRY_AFTER_S.get(outcome, 0.0)
    if outcome is Outcome.RATE_LIMITED:
        return RateLimited(msg, code if code is not None else -1003, wait)
    if outcome is Outcome.UNAVAILABLE:
        return Unavailable(msg, code if code is not None else 0, wait)
    return _ERRORS[outcome](msg, code if code is not None else 0)
