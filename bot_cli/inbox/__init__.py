"""The signal inbox: strategies and charting-service alerts POST JSON signals to `bot run`.

Served beside the daemon when ``[inbox] enabled = true`` (``serve_inbox``); bound to 127.0.0.1
by default; authenticated with ``BOT_INBOX_SECRET`` from the environment (``guard``). A signal
(``signals``) is checked exactly as `bot enter` checks an entry, saved REQUESTED under its
idempotency key (``bot_cli.api.keys``) and answered 202 only once that is on disk; the daemon
sends and protects it (``app``).
"""

from bot_cli.inbox.app import Inbox, create_app
from bot_cli.inbox.guard import SECRET_ENV, SECRET_HEADER, SIGNATURE_HEADER, InboxError
from bot_cli.inbox.server import InboxHandle, serve_inbox, start_inbox


__all__ = [
    "SECRET_ENV",
    "SECRET_HEADER",
    "SIGNATURE_HEADER",
    "Inbox",
    "InboxError",
    "InboxHandle",
    "create_app",
    "serve_inbox",
    "start_inbox",
]
