"""classify() and to_venue_error(): every listed code and status rule, and unlisted -> UNKNOWN."""

from __future__ import annotations

import pytest

from bot_cli.exchange.errors import CODES, RETRY_AFTER_S, Outcome, classify, to_venue_error
from bot_cli.venue import (
    AuthFailed,
    Duplicate,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Unavailable,
    WouldTrigger,
)


OC = Outcome

# (code, expected outcome, why) — the documented meaning of every code in CODES.
CODE_ROWS = [
    (-1002, OC.AUTH_FAILED, "UNAUTHORIZED"),
    (-1003, OC.RATE_LIMITED, "TOO_MANY_REQUESTS"),
    (-1006, OC.UNKNOWN, "UNEXPECTED_RESP: execution status unknown"),
    (-1007, OC.UNKNOWN, "TIMEOUT: send and execution status unknown"),
    (-1008, OC.UNAVAILABLE, "throttled by system protection: not executed, transient"),
    (-1013, OC.REJECTED, "INVALID_MESSAGE"),
    (-1021, OC.CLOCK_SKEW, "timestamp outside recvWindow: not executed, resync"),
    (-1022, OC.AUTH_FAILED, "INVALID_SIGNATURE"),
    (-1100, OC.INVALID_REQUEST, "ILLEGAL_CHARS"),
    (-1101, OC.INVALID_REQUEST, "TOO_MANY_PARAMETERS"),
    (-1102, OC.INVALID_REQUEST, "MANDATORY_PARAM_EMPTY_OR_MALFORMED"),
    (-1103, OC.INVALID_REQUEST, "UNKNOWN_PARAM"),
    (-1104, OC.INVALID_REQUEST, "UNREAD_PARAMETERS"),
    (-1105, OC.INVALID_REQUEST, "PARAM_EMPTY"),
    (-1106, OC.INVALID_REQUEST, "PARAM_NOT_REQUIRED (reduceOnly in hedge mode)"),
    (-1111, OC.INVALID_REQUEST, "BAD_PRECISION"),
    (-1114, OC.INVALID_REQUEST, "TIF_NOT_REQUIRED"),
    (-1115, OC.INVALID_REQUEST, "INVALID_TIF"),
    (-1116, OC.INVALID_REQUEST, "INVALID_ORDER_TYPE"),
    (-1117, OC.INVALID_REQUEST, "INVALID_SIDE"),
    (-1118, OC.INVALID_REQUEST, "EMPTY_NEW_CL_ORD_ID"),
    (-1119, OC.INVALID_REQUEST, "EMPTY_ORG_CL_ORD_ID"),
    (-1121, OC.INVALID_REQUEST, "BAD_SYMBOL"),
    (-1125, OC.NOT_FOUND, "INVALID_LISTEN_KEY: recreate the key"),
    (-1128, OC.INVALID_REQUEST, "OPTIONAL_PARAMS_BAD_COMBO"),
    (-1130, OC.INVALID_REQUEST, "INVALID_PARAMETER"),
    (-2010, OC.REJECTED, "NEW_ORDER_REJECTED"),
    (-2011, OC.NOT_FOUND, "CANCEL_REJECTED: the order is not open"),
    (-2013, OC.NOT_FOUND, "NO_SUCH_ORDER"),
    (-2014, OC.AUTH_FAILED, "BAD_API_KEY_FMT"),
    (-2015, OC.AUTH_FAILED, "REJECTED_MBX_KEY"),
    (-2018, OC.REJECTED, "BALANCE_NOT_SUFFICIENT"),
    (-2019, OC.REJECTED, "MARGIN_NOT_SUFFICIENT"),
    (-2020, OC.REJECTED, "UNABLE_TO_FILL"),
    (-2021, OC.WOULD_TRIGGER, "ORDER_WOULD_IMMEDIATELY_TRIGGER"),
    (-2022, OC.REJECTED, "REDUCE_ONLY_REJECT"),
    (-2024, OC.REJECTED, "POSITION_NOT_SUFFICIENT"),
    (-2025, OC.REJECTED, "MAX_OPEN_ORDER_EXCEEDED"),
    (-4001, OC.INVALID_REQUEST, "PRICE_LESS_THAN_ZERO"),
    (-4002, OC.REJECTED, "PRICE_GREATER_THAN_MAX_PRICE"),
    (-4003, OC.INVALID_REQUEST, "QTY_LESS_THAN_ZERO"),
    (-4004, OC.REJECTED, "QTY_LESS_THAN_MIN_QTY"),
    (-4005, OC.REJECTED, "QTY_GREATER_THAN_MAX_QTY"),
    (-4013, OC.REJECTED, "PRICE_LESS_THAN_MIN_PRICE"),
    (-4014, OC.INVALID_REQUEST, "PRICE_NOT_INCREASED_BY_TICK_SIZE"),
    (-4015, OC.INVALID_REQUEST, "INVALID_CL_ORD_ID_LEN: a format error, not a duplicate"),
    (-4016, OC.REJECTED, "PERCENT_PRICE: above multiplier up"),
    (-4023, OC.INVALID_REQUEST, "QTY_NOT_INCREASED_BY_STEP_SIZE"),
    (-4024, OC.REJECTED, "PERCENT_PRICE: below multiplier down"),
    (-4045, OC.REJECTED, "MAX_STOP_ORDER_EXCEEDED"),
    (-4061, OC.INVALID_REQUEST, "POSITION_SIDE_NOT_MATCH"),
    (-4116, OC.DUPLICATE, "DUPLICATED_CLIENT_ORDER_ID: an open order has the id"),
    (-4118, OC.REJECTED, "REDUCE_ONLY_MARGIN_CHECK_FAILED"),
    (-4120, OC.INVALID_REQUEST, "STOP_ORDER_SWITCH_ALGO: use /algoOrder"),
    (-4131, OC.REJECTED, "MARKET_ORDER_REJECT (PERCENT_PRICE)"),
    (-4137, OC.INVALID_REQUEST, "quantity with closePosition"),
    (-4138, OC.INVALID_REQUEST, "reduceOnly must be true with closePosition"),
    (-4142, OC.WOULD_TRIGGER, "STRATEGY_INVALID_TRIGGER_PRICE"),
    (-4164, OC.REJECTED, "MIN_NOTIONAL"),
    (-5021, OC.REJECTED, "FOK rejected"),
    (-5022, OC.REJECTED, "GTX (post-only) rejected"),
    (-5028, OC.REJECTED, "ME_RECVWINDOW_REJECT: stale, not executed"),
]


def test_every_listed_code_has_a_documented_row() -> None:
    """The test table and CODES list exactly the same codes."""
    assert {code for code, _, _ in CODE_ROWS} == set(CODES)


@pytest.mark.parametrize(("code", "expected", "why"), CODE_ROWS, ids=[r[2] for r in CODE_ROWS])
def test_listed_code_is_classified_as_documented(code, expected, why) -> None:
    """A 400 carrying a listed code gets that code's outcome."""
    assert classify(400, code, why) is expected


@pytest.mark.parametrize("code", [-1000, -1001, -1099, -2999, -4999, -9999, 1])
def test_unlisted_code_is_unknown(code) -> None:
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
def test_http_status_rules(status, code, msg, expected, why) -> None:
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
]


def test_every_outcome_but_accepted_maps_to_an_error() -> None:
    """to_venue_error knows every failure outcome."""
    assert {row[0] for row in ERROR_ROWS} == set(Outcome) - {Outcome.ACCEPTED}


@pytest.mark.parametrize(("outcome", "cls", "why"), ERROR_ROWS, ids=[r[2] for r in ERROR_ROWS])
def test_to_venue_error_maps_outcome_to_the_venue_tree(outcome, cls, why) -> None:
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
def test_transient_errors_carry_retry_after(outcome, cls, default_s) -> None:
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
