"""Where notifications go: a generic JSON webhook and Telegram's Bot API.

A sink builds the request and judges the answer; the notifier sends it. Errors are
``DeliveryError`` with a one-line message that never holds a secret: the Telegram token
(which sits in the URL's path) and the webhook URL's path (services such as Slack put
their secret there) are redacted, and only ``where`` (name and host) is ever shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

import httpx

from bot_cli.config import NotifyConfig
from bot_cli.errors import ConfigError
from bot_cli.notify.formats import Message, redact, short, telegram_text, webhook_payload


TOKEN_ENV = "BOT_TELEGRAM_TOKEN"
USER_AGENT = "bot_cli-notify"
RETRY_AFTER_MAX_S = 60.0


class DeliveryError(Exception):
    """One try failed; ``retry`` says whether another try may succeed (5xx, 429, network)."""

    def __init__(self, message: str, *, retry: bool, after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry, self.after_s = retry, after_s


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def where(self) -> str: ...

    @property
    def secrets(self) -> tuple[str, ...]: ...

    def request(self, msg: Message) -> httpx.Request: ...


@dataclass(frozen=True, slots=True)
class WebhookSink:
    url: str = field(repr=False)  # its path may be a secret
    name: str = "webhook"

    @property
    def where(self) -> str:
        return f"webhook ({httpx.URL(self.url).host})"

    @property
    def secrets(self) -> tuple[str, ...]:
        path = httpx.URL(self.url).raw_path.decode("ascii")
        return (self.url, path) if len(path) > 1 else (self.url,)

    def request(self, msg: Message) -> httpx.Request:
        return _post(self.url, webhook_payload(msg))


@dataclass(frozen=True, slots=True)
class TelegramSink:
    base_url: str
    chat_id: str
    token: str = field(repr=False)
    name: str = "telegram"

    @property
    def where(self) -> str:
        return f"telegram ({httpx.URL(self.base_url).host})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.token,)

    def request(self, msg: Message) -> httpx.Request:
        url = f"{self.base_url.rstrip('/')}/bot{self.token}/sendMessage"
        return _post(
            url,
            {"chat_id": self.chat_id, "text": telegram_text(msg), "disable_web_page_preview": True},
        )


def _post(url: str, body: object) -> httpx.Request:
    return httpx.Request("POST", url, json=body, headers={"User-Agent": USER_AGENT})


def judge(sink: Sink, response: httpx.Response) -> str:
    """'HTTP 200' for any 2xx; otherwise a DeliveryError saying whether to try again."""
    code = response.status_code
    if response.is_success:
        return f"HTTP {code}"
    what = f"HTTP {code} {response.reason_phrase}".rstrip()
    described = _description(response)
    message = redact(f"{what}: {described}" if described else what, sink.secrets)
    if code == HTTPStatus.TOO_MANY_REQUESTS:
        raise DeliveryError(message, retry=True, after_s=_retry_after(response))
    raise DeliveryError(message, retry=response.is_server_error or code == HTTPStatus.REQUEST_TIMEOUT)


def _body(response: httpx.Response) -> dict[str, object]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _description(response: httpx.Response) -> str:
    """Telegram says why in JSON ('chat not found'); anything else is not shown."""
    text = _body(response).get("description")
    return short(text) if isinstance(text, str) else ""


def _retry_after(response: httpx.Response) -> float:
    """The Retry-After header, or Telegram's parameters.retry_after; capped."""
    params = _body(response).get("parameters")
    told = params.get("retry_after") if isinstance(params, dict) else None
    try:
        seconds = float(response.headers.get("Retry-After", told or 0))
    except (TypeError, ValueError):
        return 0.0
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def sinks_from_config(
    cfg: NotifyConfig, env: Mapping[str, str], source: str = "config"
) -> list[Sink]:
    """The configured sinks, checked now so that a wrong one fails at start, not at the alert.

    ``source`` names the config file in errors.
    """
    sinks: list[Sink] = []
    if cfg.webhook_url:
        _check_url(source, "notify.webhook_url", cfg.webhook_url)
        sinks.append(WebhookSink(cfg.webhook_url))
    if cfg.telegram_chat_id:
        token = env.get(TOKEN_ENV, "")
        if not token:
            raise ConfigError(
                f"{source}: notify.telegram_chat_id is set "
                f"but {TOKEN_ENV} is not in the environment"
            )
        _check_url(source, "notify.telegram_url", cfg.telegram_url)
        sinks.append(TelegramSink(cfg.telegram_url, cfg.telegram_chat_id, token))
    return sinks


def _check_url(source: str, key: str, url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{source}: {key} must be an http:// or https:// URL with a host")
