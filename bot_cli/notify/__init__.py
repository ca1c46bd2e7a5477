"""Alerts that reach a person: a generic JSON webhook and Telegram, never on the caller's path.

In the daemon's loop: ``Notifier.from_config(cfg.notify)`` (a ConfigError if a sink is half
set up), ``start()``, then ``tell(formats.daemon_started(venue))`` or ``notify(kind, text,
**fields)`` from anywhere in that loop, and ``await stop()`` at the end (queued messages get
``timeout_s`` to go out).
"""

from bot_cli.notify import formats
from bot_cli.notify.formats import KINDS, Message, Notice
from bot_cli.notify.notifier import Delivery, Notifier, Origin, backoff, deliver_once
from bot_cli.notify.sinks import (
    TOKEN_ENV,
    DeliveryError,
    Sink,
    TelegramSink,
    WebhookSink,
    sinks_from_config,
)
from bot_cli.notify.watch import AlertHooks, StreamWatch, alert_notice, follow_stream


__all__ = [
    "KINDS",
    "TOKEN_ENV",
    "AlertHooks",
    "Delivery",
    "DeliveryError",
    "Message",
    "Notice",
    "Notifier",
    "Origin",
    "Sink",
    "StreamWatch",
    "TelegramSink",
    "WebhookSink",
    "alert_notice",
    "backoff",
    "deliver_once",
    "follow_stream",
    "formats",
    "sinks_from_config",
]
