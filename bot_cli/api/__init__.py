"""The Python API for strategies: enter, cancel and close entries of one state dir.

    from bot_cli.api import Client

    bot = Client("state")                      # config: ./bot.toml if present, else paper
    e = bot.enter("BTCUSDT", "buy", "0.010", stop_loss="90000", take_profit="99000",
                  key="my-strategy-2024-05-01T10:00")
    e.id, e.status, e.watched, e.note

The same checks and journal as `bot enter`: with `bot run` running, the entry is saved
REQUESTED and the daemon sends and protects it; without one, this process sends it and follows
it by `bot enter`'s one-shot rules (``Entry.watched`` is False, and ``note`` says why, when
nothing will protect a fill until `bot run` starts). A key maps to one entry forever.
``adopt(symbol, stop_loss, take_profit=..., quantity=...)`` protects the part of a position no
entry holds (a trade by hand), as `bot adopt` does.

Errors: ``EntryRefused`` (``.field`` names the value; nothing written or sent),
``UnknownEntryError`` (cancel/close of an id not in the journal), ``NothingToDoError`` (a
cancel or close that would do nothing for that entry, refused as `bot cancel`/`close` refuse it),
``bot_cli.errors.BotError`` (the venue cannot be reached, ...), ``bot_cli.state_store.StoreError`` (the state dir).
"""

from bot_cli.api._client import AsyncClient, Client, NothingToDoError, UnknownEntryError
from bot_cli.api._types import DaemonStatus, Entry, RequestResult
from bot_cli.core.model import Side, Status
from bot_cli.ops.checks import EntryRefused


__all__ = [
    "AsyncClient",
    "Client",
    "DaemonStatus",
    "Entry",
    "EntryRefused",
    "NothingToDoError",
    "RequestResult",
    "Side",
    "Status",
    "UnknownEntryError",
]
