"""classify() and to_venue_error(): every listed code and status rule, and unlisted -> UNKNOWN."""

from __future__ import annotations

from typing import Any

import pytest

from bot_cli.exchange.errors import CODES, RETRY_AFTER_S, Outcome, classify, to_venue_error
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


OC = Outcome

# Each code's class, stated from the reference (the Binance USDⓈ-M reference, §6, "What
# the bot should do") and from Binance's error-code list where §6 is silent, NOT from CODES:
# one test per class, so a code moved to another class in CODES fails the test of the class it
# left, and a code added to CODES without a class here fails the completeness test.

EXECUTION_UNKNOWN = {  # may have executed: resolve by a query, never by a resend
    -1006: "UNEXPECTED_RESP: 'Execution status unknown.'",
    -1007: "TIMEOUT: 'Send status unknown; execution status unknown.'",
}
THROTTLED = {  # a failure, not counted toward the limit: retry with backoff
    -1008: "Request throttled by system-level protection",
}
TOO_MANY_REQUESTS = {  # back off; comes with HTTP 429 or 418
    -1003: "TOO_MANY_REQUESTS",
    -1015: "TOO_MANY_ORDERS: the account's new-order count per window",
}
AT_THE_LIMIT = {  # not executed, and not a refusal of this order: again once room frees
    -4045: "MAX_STOP_ORDER_EXCEEDED: 200 open conditional orders on the account",
}
CLOCK_SKEW = {  # not executed: resync the clock with /fapi/v1/time
    -1021: "INVALID_TIMESTAMP: outside of the recvWindow",
}
KEYS_REFUSED = {  # a human must fix the keys or the signing
    -1002: "UNAUTHORIZED",
    -1022: "INVALID_SIGNATURE: fix the signing, not executed",
    -2014: "BAD_API_KEY_FMT",
    -2015: "REJECTED_MBX_KEY: invalid key, IP or permissions",
}
NOT_THERE = {  # no such (open) order or key: not proof it never existed
    -1125: "INVALID_LISTEN_KEY: new key, reconnect, reconcile",
    -2011: "CANCEL_REJECTED 'Unknown order sent.': not open; query to find out",
    -2013: "NO_SUCH_ORDER: never placed, not yet visible, archived, or in the other book",
}
ALREADY_OPEN = {  # the earlier send landed: query it
    -4116: "DUPLICATED_CLIENT_ORDER_ID: an order with that id is open",
}
TRIGGER_CROSSED = {  # §4.3: the protective trigger is already crossed
    -2021: "ORDER_WOULD_IMMEDIATELY_TRIGGER",
    -4142: "STRATEGY_INVALID_TRIGGER_PRICE: 'will be triggered immediately'",
}
REFUSED = {  # definitely not executed: the exchange said no to a well-formed request
    -1013: "INVALID_MESSAGE: generic",
    -2010: "NEW_ORDER_REJECTED",
    -2018: "BALANCE_NOT_SUFFICIENT",
    -2019: "MARGIN_NOT_SUFFICIENT: 'Definite reject'",
    -2020: "UNABLE_TO_FILL",
    -2022: "REDUCE_ONLY_REJECT: conflicts with open orders",
    -2024: "POSITION_NOT_SUFFICIENT",
    -2025: "MAX_OPEN_ORDER_EXCEEDED",
    -4002: "PRICE_GREATER_THAN_MAX_PRICE",
    -4004: "quantity below the minimum",
    -4005: "quantity above the maximum",
    -4013: "PRICE_LESS_THAN_MIN_PRICE",
    -4016: "PERCENT_PRICE: above multiplier up",
    -4024: "PERCENT_PRICE: below multiplier down",
    -4118: "REDUCE_ONLY_MARGIN_CHECK_FAILED",
    -4131: "MARKET_ORDER_REJECT (PERCENT_PRICE)",
    -4164: "MIN_NOTIONAL",
    -5021: "FOK rejected",
    -5022: "GTX (post-only) rejected",
    -5028: "ME_RECVWINDOW_REJECT: 'Not executed (stale in the matching engine)'",
}
MALFORMED = {  # definitely not executed: our request is wrong ("4XX: the sender's fault")
    -1100: "ILLEGAL_CHARS",
    -1101: "TOO_MANY_PARAMETERS",
    -1102: "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
    -1103: "UNKNOWN_PARAM",
    -1104: "UNREAD_PARAMETERS",
    -1105: "PARAM_EMPTY",
    -1106: "PARAM_NOT_REQUIRED (reduceOnly in hedge mode)",
    -1111: "BAD_PRECISION: round to tickSize/stepSize",
    -1114: "TIF_NOT_REQUIRED",
    -1115: "INVALID_TIF",
    -1116: "INVALID_ORDER_TYPE",
    -1117: "INVALID_SIDE",
    -1118: "EMPTY_NEW_CL_ORD_ID",
    -1119: "EMPTY_ORG_CL_ORD_ID",
    -1121: "BAD_SYMBOL",
    -1128: "OPTIONAL_PARAMS_BAD_COMBO",
    -1130: "INVALID_PARAMETER",
    -4001: "PRICE_LESS_THAN_ZERO",
    -4003: "QTY_LESS_THAN_ZERO",
    -4014: "PRICE_NOT_INCREASED_BY_TICK_SIZE",
    -4015: "INVALID_CL_ORD_ID_LEN: a format error, NOT a duplicate; not placed",
    -4023: "QTY_NOT_INCREASED_BY_STEP_SIZE",
    -4061: "POSITION_SIDE_NOT_MATCH: wrong positionSide for the account mode",
    -4120: "STOP_ORDER_SWITCH_ALGO: use /algoOrder",
    -4137: "quantity sent with closePosition",
    -4138: "reduceOnly must be true with closePosition",
}
CLASSES = [EXECUTION_UNKNOWN, THROTTLED, TOO_MANY_REQUESTS, CLOCK_SKEW, KEYS_REFUSED, NOT_THERE,
           ALREADY_OPEN, TRIGGER_CROSSED, AT_THE_LIMIT, REFUSED, MALFORMED]  # fmt: skip


def _rows(codes: dict[int, str]) -> list[Any]:
    return [pytest.param(code, id=f"{code} {why}") for code, why in codes.items()]


def _error_of(code: int) -> VenueError:
    """The venue error a 400 carrying `code` becomes: what the caller sees."""
    return to_venue_error(classify(400, code, "msg"), code, "msg")


def test_every_code_in_the_table_has_exactly_one_class_here() -> None:
    """CODES lists exactly the codes classified above, each in one class only."""
    listed = [code for cls in CLASSES for code in cls]
    assert sorted(listed) == sorted(set(listed))
    assert set(listed) == set(CODES)


@pytest.mark.parametrize("code", _rows(EXECUTION_UNKNOWN))
def test_execution_status_unknown_is_resolved_by_a_query(code: int) -> None:
    """-1006/-1007: the order may exist; OutcomeUnknown, never a refusal."""
    assert classify(400, code) is OC.UNKNOWN
    assert type(_error_of(code)) is OutcomeUnknown


@pytest.mark.parametrize("code", _rows(THROTTLED))
def test_throttled_is_transient_and_no_refusal(code: int) -> None:
    """-1008: not executed and worth another try: Unavailable, not Rejected."""
    assert classify(400, code) is OC.UNAVAILABLE
    assert type(_error_of(code)) is Unavailable


@pytest.mark.parametrize("code", _rows(TOO_MANY_REQUESTS))
def test_too_many_requests_backs_off(code: int) -> None:
    """-1003: RateLimited, whatever the HTTP status carrying it."""
    assert classify(400, code) is OC.RATE_LIMITED
    assert type(_error_of(code)) is RateLimited


@pytest.mark.parametrize("code", _rows(CLOCK_SKEW))
def test_clock_skew_is_not_executed(code: int) -> None:
    """-1021: its own outcome (the adapter resyncs and resends once), a Rejected if it stays."""
    assert classify(400, code) is OC.CLOCK_SKEW
    assert type(_error_of(code)) is Rejected


@pytest.mark.parametrize("code", _rows(KEYS_REFUSED))
def test_refused_keys_need_a_human(code: int) -> None:
    """Key and signature codes: AuthFailed."""
    assert classify(400, code) is OC.AUTH_FAILED
    assert type(_error_of(code)) is AuthFailed


@pytest.mark.parametrize("code", _rows(NOT_THERE))
def test_no_such_order_is_not_found(code: int) -> None:
    """-2011/-2013/-1125: NotFound (not a refusal, not proof it never existed)."""
    assert classify(400, code) is OC.NOT_FOUND
    assert type(_error_of(code)) is NotFound


@pytest.mark.parametrize("code", _rows(ALREADY_OPEN))
def test_a_duplicated_client_id_means_the_earlier_send_landed(code: int) -> None:
    """-4116: Duplicate, so the caller queries the open order."""
    assert classify(400, code) is OC.DUPLICATE
    assert type(_error_of(code)) is Duplicate


@pytest.mark.parametrize("code", _rows(TRIGGER_CROSSED))
def test_a_crossed_trigger_is_would_trigger(code: int) -> None:
    """-2021/-4142: WouldTrigger, a Rejected the policy answers (close or alert)."""
    assert classify(400, code) is OC.WOULD_TRIGGER
    assert type(_error_of(code)) is WouldTrigger


@pytest.mark.parametrize("code", _rows(AT_THE_LIMIT))
def test_the_account_s_limit_is_not_a_refusal_of_the_order(code: int) -> None:
    """-4045: LimitReached, a Rejected the bot retries as room frees (never counted, never parked)."""
    assert classify(400, code) is OC.LIMIT_REACHED
    assert type(_error_of(code)) is LimitReached


@pytest.mark.parametrize("code", _rows(REFUSED))
def test_a_refusal_is_definite(code: int) -> None:
    """The exchange said no: Rejected, counted toward the policy's limit."""
    assert classify(400, code) is OC.REJECTED
    assert type(_error_of(code)) is Rejected


@pytest.mark.parametrize("code", _rows(MALFORMED))
def test_a_malformed_request_is_definitely_not_executed(code: int) -> None:
    """Our request was wrong: Rejected (never a duplicate, never unknown)."""
    assert classify(400, code) is OC.INVALID_REQUEST
    assert type(_error_of(code)) is Rejected


@pytest.mark.parametrize("code", [-1000, -1001, -1099, -2999, -4999, -9999, 1])
def test_unlisted_code_is_unknown(code: int) -> None:
    """An unlisted code is UNKNOWN (resolved by a query), never a definite failure."""
    assert classify(400, code, "something new") is Outcome.UNKNOWN


STATUS_ROWS = [
    (200, None, "", OC.ACCEPTED, "2xx is accepted"),
    (201, None, "", OC.ACCEPTED, "any 2xx is accepted"),
    (200, 200, "success", OC.ACCEPTED, "a non-negative body code on 2xx is fine"),
    (200, -2022, "ReduceOnly Order is rejected.", OC.REJECTED, "a negative code on 2xx counts"),
    (429, -1003, "Too many requests", OC.RATE_LIMITED, "429"),
    (429, None, "", OC.RATE_LIMITED, "429 without a body"),
    (418, -1003, "IP banned until 1700000000000", OC.RATE_LIMITED, "418 ban"),
    (401, -2015, "Invalid API-key", OC.AUTH_FAILED, "401 with a key code"),
    (401, None, "", OC.AUTH_FAILED, "401 without a code"),
    (403, None, "", OC.RATE_LIMITED, "403 is Binance's WAF limit"),
    (408, None, "", OC.UNKNOWN, "408: backend timeout"),
    (
        503, None, "Unknown error, please check your request or try again later.",
        OC.UNKNOWN, "503 (A) unknown error: may have executed",
    ),
    (503, -1000, "Unknown error, please check your request", OC.UNKNOWN, "503 (A) with a code"),
    (503, None, "Service Unavailable.", OC.UNAVAILABLE, "503 (B): 100% failure, transient"),
    (503, -1001, "Service Unavailable.", OC.UNAVAILABLE, "503 (B) with a code"),
    (503, -1008, "Request throttled by system-level protection.", OC.UNAVAILABLE, "503 (C) -1008"),
    (
        503, -1001, "Internal error; unable to process your request. Please try again.",
        OC.UNAVAILABLE, "503 internal error: a failure, may resend",
    ),
    (502, None, "Service Unavailable.", OC.UNKNOWN, "the 503 texts count on 503 only"),
    (
        500, -1001, "Internal error; unable to process your request. Please try again.",
        OC.UNKNOWN, "500 internal error: not documented as a failure",
    ),
    (429, -1008, "Request throttled", OC.RATE_LIMITED, "429 wins over the code"),
    (503, None, "<html>bad gateway</html>", OC.UNKNOWN, "any other 503: unknown"),
    (500, None, "", OC.UNKNOWN, "500 without a code"),
    (502, None, "Bad Gateway", OC.UNKNOWN, "502"),
    (504, None, "", OC.UNKNOWN, "504"),
    (500, -1007, "Timeout waiting for response", OC.UNKNOWN, "5xx with -1007"),
    (400, None, "", OC.INVALID_REQUEST, "4xx without a code: the sender's fault"),
    (404, None, "Not Found", OC.INVALID_REQUEST, "404: no such endpoint"),
    (302, None, "", OC.UNKNOWN, "a redirect is odd: unknown"),
]


@pytest.mark.parametrize(
    ("status", "code", "msg", "expected", "why"), STATUS_ROWS, ids=[r[4] for r in STATUS_ROWS]
)
def test_http_status_rules(status: int, code: int | None, msg: str, expected: Outcome, why: str) -> None:
    """HTTP status rules, checked before and after the code table."""
    assert classify(status, code, msg) is expected


ERROR_ROWS = [
    (OC.REJECTED, Rejected, "definite reject"),
    (OC.INVALID_REQUEST, Rejected, "our request is wrong: still not executed"),
    (OC.CLOCK_SKEW, Rejected, "clock skew that survived a resync"),
    (OC.WOULD_TRIGGER, WouldTrigger, "trigger already crossed"),
    (OC.DUPLICATE, Duplicate, "open order with the id"),
    (OC.UNKNOWN, OutcomeUnknown, "may have executed"),
    (OC.NOT_FOUND, NotFound, "no such order"),
    (OC.UNAVAILABLE, Unavailable, "transient, not executed"),
    (OC.RATE_LIMITED, RateLimited, "back off"),
    (OC.AUTH_FAILED, AuthFailed, "keys refused"),
    (OC.LIMIT_REACHED, LimitReached, "the account's limit: again once room frees"),
]


def test_every_outcome_but_accepted_maps_to_an_error() -> None:
    """to_venue_error knows every failure outcome."""
    assert {row[0] for row in ERROR_ROWS} == set(Outcome) - {Outcome.ACCEPTED}


@pytest.mark.parametrize(("outcome", "cls", "why"), ERROR_ROWS, ids=[r[2] for r in ERROR_ROWS])
def test_to_venue_error_maps_outcome_to_the_venue_tree(outcome: Outcome, cls: type[VenueError], why: str) -> None:
    """Each outcome becomes exactly its venue error class, carrying code and message."""
    err = to_venue_error(outcome, -1234, "boom")
    assert type(err) is cls
    assert (err.code, err.message) == (-1234, "boom")


def test_would_trigger_is_a_rejection() -> None:
    """WouldTrigger is a Rejected: not executed."""
    assert isinstance(to_venue_error(OC.WOULD_TRIGGER, -2021, "x"), Rejected)


def test_rate_limited_carries_retry_after_and_a_default_code() -> None:
    """RateLimited keeps retry_after; without a code it is -1003."""
    err = to_venue_error(OC.RATE_LIMITED, None, "slow down", retry_after=7.5)
    assert isinstance(err, RateLimited)
    assert (err.retry_after, err.code) == (7.5, -1003)


@pytest.mark.parametrize(
    ("outcome", "cls", "default_s"),
    [(OC.UNAVAILABLE, Unavailable, 1.0), (OC.RATE_LIMITED, RateLimited, 60.0)],
    ids=["unavailable", "rate limited"],
)
def test_transient_errors_carry_retry_after(outcome: Outcome, cls: type[Unavailable], default_s: float) -> None:
    """Both transient errors keep a given retry_after, else their default (1 s, 60 s)."""
    given = to_venue_error(outcome, -1008, "later", retry_after=2.5)
    default = to_venue_error(outcome, -1008, "later")
    assert isinstance(given, cls)
    assert isinstance(default, cls)
    assert (given.retry_after, default.retry_after) == (2.5, default_s)
    assert RETRY_AFTER_S[outcome] == default_s


def test_rate_limited_is_unavailable_and_unavailable_is_no_refusal() -> None:
    """RateLimited is an Unavailable; neither is a Rejected (a blip is never a refusal)."""
    limited = to_venue_error(OC.RATE_LIMITED, None, "slow down")
    unavailable = to_venue_error(OC.UNAVAILABLE, None, "later")
    assert isinstance(limited, Unavailable)
    assert not isinstance(limited, Rejected)
    assert not isinstance(unavailable, Rejected)
    assert unavailable.code == 0


def test_missing_code_becomes_zero() -> None:
    """A failure without a Binance code has code 0."""
    assert to_venue_error(OC.UNKNOWN, None, "timeout").code == 0


def test_accepted_is_not_an_error() -> None:
    """Asking for the error of an accepted answer is a programming error."""
    with pytest.raises(ValueError, match="accepted"):
        to_venue_error(OC.ACCEPTED, None, "")
