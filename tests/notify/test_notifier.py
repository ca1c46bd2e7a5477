"""The notifier against a real local HTTP server: shapes, retries, hangs, a full queue."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator

import httpx
import pytest

from bot_cli.config import NotifyConfig
from bot_cli.errors import ConfigError
from bot_cli.notify import (
    DeliveryError,
    Notifier,
    Origin,
    TelegramSink,
    WebhookSink,
    formats,
    sinks_from_config,
)
from bot_cli.notify.sinks import judge
from tests.notify.capture import HANG, Capture, until_async


TOKEN = "123456:SECRET-token-never-shown"
ORIGIN = Origin("box", 4242)
AT = 1_764_000_000.0  # 2025-11-24T16:00:00Z


def no_wait() -> Iterator[float]:
    return itertools.repeat(0.0)


def notifier(*sinks: WebhookSink | TelegramSink, **kwargs: object) -> Notifier:
    options: dict[str, object] = {
        "delays": no_wait,
        "clock": lambda: AT,
        "origin": ORIGIN,
        "timeout_s": 2.0,
    }
    options.update(kwargs)
    return Notifier(list(sinks), **options)  # type: ignore[arg-type]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The notifier's own warning lines (asyncio's debug mode may add its own)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot_cli.notify" and r.levelno == logging.WARNING
    ]


async def deliver(n: Notifier, *notices: formats.Notice, expect: int) -> None:
    """Start, tell, wait until ``expect`` outcomes (delivered or failed), stop."""
    n.start()
    for notice in notices:
        n.tell(notice)
    await until_async(
        lambda: n.counts["delivered"] + n.counts["failed"] >= expect, "delivery outcomes"
    )
    await n.stop()


def test_webhook_gets_one_json_document(capture: Capture) -> None:
    """The webhook body is {kind, text, fields..., at, host, pid}, decimals as strings."""
    # Arrange
    n = notifier(WebhookSink(f"{capture.url}/hook"))
    notice = formats.closed_at_market("P1", "BTCUSDT", "0.010")

    # Act
    asyncio.run(deliver(n, notice, expect=1))

    # Assert
    (seen,) = capture.wait_for(1)
    assert (seen.method, seen.path) == ("POST", "/hook")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.json() == {
        "kind": "closed_at_market",
        "text": "entry P1: reduce-only market close of 0.010 BTCUSDT sent",
        "entry": "P1",
        "symbol": "BTCUSDT",
        "quantity": "0.010",
        "at": "2025-11-24T16:00:00Z",
        "host": "box",
        "pid": 4242,
    }


def test_a_field_cannot_replace_the_envelope(capture: Capture) -> None:
    """A field named like an envelope key (kind, at, pid ...) does not overwrite it."""
    # Arrange
    n = notifier(WebhookSink(capture.url))

    async def scenario() -> None:
        n.start()
        n.notify("needs_attention", "look", kind="other", pid=1, entry="P2")
        await until_async(lambda: n.counts["delivered"] == 1, "delivered")
        await n.stop()

    # Act
    asyncio.run(scenario())

    # Assert
    body = capture.wait_for(1)[0].json()
    assert (body["kind"], body["pid"], body["entry"]) == ("needs_attention", 4242, "P2")


def test_telegram_path_and_body_and_the_token_never_logged(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """sendMessage under /bot<token>/ with chat_id and text; no log line holds the token."""
    # Arrange
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    n = notifier(TelegramSink(capture.url, "-100200", TOKEN))

    # Act
    asyncio.run(deliver(n, formats.needs_attention("P1", "SL refused 5 times"), expect=1))

    # Assert
    (seen,) = capture.wait_for(1)
    assert seen.path == f"/bot{TOKEN}/sendMessage"
    assert seen.json() == {
        "chat_id": "-100200",
        "text": "[box] entry P1 needs attention: SL refused 5 times",
        "disable_web_page_preview": True,
    }
    assert n.counts["delivered"] == 1
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(n.sinks)


def test_a_refusal_naming_the_token_is_logged_redacted(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """A 4xx is not retried; its description is logged with the token blanked out."""
    # Arrange
    caplog.set_level(logging.DEBUG)
    capture.script(f"/bot{TOKEN}/sendMessage", (401, f"token {TOKEN} is revoked"))
    n = notifier(TelegramSink(capture.url, "-100200", TOKEN))

    # Act
    asyncio.run(deliver(n, formats.probe(), expect=1))

    # Assert
    assert len(capture.wait_for(1)) == 1  # a definite refusal: one try only
    assert n.counts["failed"] == 1
    lines = warnings(caplog)
    assert lines == [
        ("notify: telegram (127.0.0.1) dropped test after 1 try: "
        "HTTP 401 Unauthorized: token *** is revoked")
    ]
    assert TOKEN not in caplog.text


def test_retries_after_a_500_then_delivers(capture: Capture) -> None:
    """Two 500s, then 200: the same body is tried three times and counted delivered once."""
    # Arrange
    capture.script("/hook", 500, 500)
    n = notifier(WebhookSink(f"{capture.url}/hook"))

    # Act
    asyncio.run(deliver(n, formats.daemon_started("paper"), expect=1))

    # Assert
    seen = capture.wait_for(3)
    assert len(seen) == 3
    assert len({s.body for s in seen}) == 1
    assert (n.counts["delivered"], n.counts["failed"]) == (1, 0)


def test_gives_up_after_its_tries_and_logs_one_line(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink that keeps failing is tried ``tries`` times, then dropped in one line."""
    # Arrange
    capture.script("/hook", 503, 503, 503)
    n = notifier(WebhookSink(f"{capture.url}/hook"), tries=3)

    # Act
    asyncio.run(deliver(n, formats.stream_down(0, 61_000), expect=1))

    # Assert
    assert len(capture.wait_for(3)) == 3
    assert n.counts["failed"] == 1
    lines = warnings(caplog)
    assert lines == [
        ("notify: webhook (127.0.0.1) dropped stream_down after 3 tries: "
        "HTTP 503 Service Unavailable: scripted 503")
    ]


def test_a_hanging_endpoint_never_delays_the_caller(capture: Capture) -> None:
    """notify() returns before the server has even seen the request; delivery then times out
    in the background while the caller's loop keeps running."""
    # Arrange
    capture.script("/hook", HANG)
    n = notifier(WebhookSink(f"{capture.url}/hook"), timeout_s=0.3, tries=1)
    ticks = 0

    async def protection_path() -> None:  # stands for the daemon's work on the same loop
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def scenario() -> tuple[bool, bool, bool, int]:
        n.start()
        worker = asyncio.create_task(protection_path())
        queued = n.notify("needs_attention", "entry P1 needs attention: x", entry="P1")
        seen_before_return = capture.received.is_set()
        await until_async(capture.received.is_set, "the server got the request")
        at_receipt = ticks
        queued_again = n.notify("unprotected", "second", entry="P1")  # while the first hangs
        await until_async(lambda: n.counts["failed"] >= 1, "the hanging try timed out")
        worked = ticks - at_receipt
        capture.release.set()
        await until_async(lambda: n.counts["delivered"] + n.counts["failed"] >= 2, "second outcome")
        worker.cancel()
        await n.stop()
        return queued and queued_again, seen_before_return, n.counts["failed"] == 1, worked

    # Act
    queued, seen_before_return, one_failed, worked = asyncio.run(scenario())

    # Assert
    assert queued
    assert seen_before_return is False
    assert one_failed
    assert worked > 0  # the loop ran other work all the while the endpoint hung


def test_a_full_queue_drops_and_logs(capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    """Beyond queue_size, notify() drops at once, says which message in one line, and what was
    queued is still delivered."""
    # Arrange
    n = notifier(WebhookSink(f"{capture.url}/hook"), queue_size=2)

    async def scenario() -> list[bool]:
        taken = [
            n.notify("stream_down", f"message {i}") for i in range(3)
        ]  # not started: nothing drains
        n.start()
        await until_async(lambda: n.counts["delivered"] == 2, "the queued two delivered")
        await n.stop()
        return taken

    # Act
    taken = asyncio.run(scenario())

    # Assert
    assert taken == [True, True, False]
    assert (n.counts["queued"], n.counts["dropped"], n.counts["delivered"]) == (2, 1, 2)
    drops = warnings(caplog)
    assert drops == [
        "notify: webhook (127.0.0.1) queue full (2 waiting): dropped stream_down: message 2"
    ]
    assert [s.json()["text"] for s in capture.wait_for(2)] == ["message 0", "message 1"]


def test_one_dead_sink_does_not_hold_up_the_other(capture: Capture) -> None:
    """Each sink has its own lane: Telegram delivers while the webhook hangs."""
    # Arrange
    capture.script("/hook", HANG)
    n = notifier(
        WebhookSink(f"{capture.url}/hook"), TelegramSink(capture.url, "1", TOKEN), timeout_s=3.0
    )

    async def scenario() -> int:
        n.start()
        n.tell(formats.daemon_stopped("paper", "stopped by SIGTERM"))
        await until_async(lambda: n.counts["delivered"] == 1, "telegram delivered")
        delivered_while_hanging = n.counts["delivered"]
        capture.release.set()
        await n.stop()
        return delivered_while_hanging

    # Act
    delivered_while_hanging = asyncio.run(scenario())

    # Assert
    assert delivered_while_hanging == 1
    assert {s.path for s in capture.wait_for(2)} == {"/hook", f"/bot{TOKEN}/sendMessage"}


def test_stop_drops_what_is_left_in_one_line(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """stop() waits at most its grace; messages still queued are dropped and logged once."""
    # Arrange
    capture.script("/hook", HANG)
    n = notifier(WebhookSink(f"{capture.url}/hook"), timeout_s=3.0)

    async def scenario() -> None:
        n.start()
        n.tell(formats.daemon_started("paper"))
        n.tell(formats.daemon_stopped("paper"))
        await until_async(capture.received.is_set, "first request in flight")
        await n.stop(grace_s=0.05)

    # Act
    asyncio.run(scenario())

    # Assert
    lines = warnings(caplog)
    assert lines == [
        "notify: webhook (127.0.0.1) dropped daemon_started: stopped while sending it",
        "notify: stopped with 1 message(s) undelivered (daemon_stopped)",
    ]
    assert n.counts["dropped"] == 2


def test_unreachable_sink_fails_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listening: the try fails as 'cannot reach it', logged, never raised to anyone."""
    # Arrange
    n = notifier(WebhookSink("http://127.0.0.1:9/hook"), tries=2)

    # Act
    asyncio.run(deliver(n, formats.probe(), expect=1))

    # Assert
    assert n.counts["failed"] == 1
    assert "cannot reach it" in caplog.text


def test_without_sinks_notify_is_a_no_op() -> None:
    """Nothing configured: notify() takes nothing and start()/stop() do nothing."""
    # Arrange
    n = Notifier([])

    async def scenario() -> bool:
        n.start()
        taken = n.notify("daemon_started", "x")
        await n.stop()
        return taken

    # Act / Assert
    assert asyncio.run(scenario()) is False
    assert not n.configured


@pytest.mark.parametrize(
    ("cfg", "env", "expected"),
    [
        pytest.param(NotifyConfig(), {}, [], id="nothing configured"),
        pytest.param(
            NotifyConfig(webhook_url="https://h.example/x"),
            {},
            ["webhook (h.example)"],
            id="webhook",
        ),
        pytest.param(
            NotifyConfig(telegram_chat_id="42"),
            {"BOT_TELEGRAM_TOKEN": TOKEN},
            ["telegram (api.telegram.org)"],
            id="telegram with its token",
        ),
        pytest.param(
            NotifyConfig(webhook_url="https://h.example/x", telegram_chat_id="42"),
            {"BOT_TELEGRAM_TOKEN": TOKEN},
            ["webhook (h.example)", "telegram (api.telegram.org)"],
            id="both",
        ),
        pytest.param(
            NotifyConfig(), {"BOT_TELEGRAM_TOKEN": TOKEN}, [], id="a token alone sends nowhere"
        ),
    ],
)
def test_sinks_from_config(cfg: NotifyConfig, env: dict[str, str], expected: list[str]) -> None:
    """[notify] and the environment give these sinks."""
    # Act
    sinks = sinks_from_config(cfg, env)

    # Assert
    assert [s.where for s in sinks] == expected


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        pytest.param(
            NotifyConfig(telegram_chat_id="42"),
            "BOT_TELEGRAM_TOKEN is not in the environment",
            id="chat id without token",
        ),
        pytest.param(
            NotifyConfig(webhook_url="ftp://h/x"),
            "notify.webhook_url must be an http",
            id="bad scheme",
        ),
        pytest.param(
            NotifyConfig(webhook_url="hooks"), "notify.webhook_url must be an http", id="no host"
        ),
    ],
)
def test_a_half_configured_sink_is_a_config_error(cfg: NotifyConfig, expected: str) -> None:
    """A sink set up wrong fails at start, naming the key, never silently later."""
    # Act
    with pytest.raises(ConfigError) as err:
        sinks_from_config(cfg, {}, "bot.toml")

    # Assert
    assert str(err.value).startswith("bot.toml: ")
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("status", "headers", "body", "retry", "after_s"),
    [
        pytest.param(500, {}, b"", True, 0.0, id="5xx: try again"),
        pytest.param(408, {}, b"", True, 0.0, id="408: try again"),
        pytest.param(400, {}, b'{"description": "chat not found"}', False, 0.0, id="4xx: final"),
        pytest.param(429, {"Retry-After": "7"}, b"", True, 7.0, id="429: header honoured"),
        pytest.param(
            429,
            {},
            b'{"parameters": {"retry_after": 3}}',
            True,
            3.0,
            id="429: Telegram's retry_after honoured",
        ),
        pytest.param(429, {"Retry-After": "3600"}, b"", True, 60.0, id="429: capped at 60 s"),
    ],
)
def test_an_answer_is_judged_by_what_a_next_try_could_change(
    status: int, headers: dict[str, str], body: bytes, retry: bool, after_s: float
) -> None:
    """5xx, 408 and 429 are tried again (429 not before it says); other 4xx are final."""
    # Arrange
    response = httpx.Response(status, headers=headers, content=body)

    # Act
    with pytest.raises(DeliveryError) as err:
        judge(WebhookSink("http://h/x"), response)

    # Assert
    assert (err.value.retry, err.value.after_s) == (retry, after_s)
