"""The paper venue: a simulated Binance USDⓈ-M futures exchange on 127.0.0.1.

It speaks Binance's own REST and user-stream wire formats, so the project's Binance adapter runs
against it unchanged, with the key ``PAPER_API_KEY`` and secret ``PAPER_API_SECRET``. Its state
lives in ``<state_dir>/paper/``, so resting orders fill and protective orders trigger while the
bot is down; a restarted venue first catches up on the elapsed time.

Modules: ``market`` (symbols, seeded price path), ``book``/``matching``/``account`` (the exchange
state machine), ``records`` (its values), ``rules`` (request validation), ``shapes``/``info``
(wire shapes), ``faults`` (fault switches), ``persist``/``snapshot``/``wal`` (files, lock, state
document, log), ``hub`` (stream fan-out), ``service`` (the running exchange), ``handlers_*``
(the /fapi endpoints); the web stack (starlette, uvicorn) only in ``app``/``stream``/
``market_stream`` (HTTP and WebSocket) and ``server`` (serve / start_in_process /
is_listening).

Importing this package loads none of them: the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from bot_cli.paper.auth import PAPER_API_KEY, PAPER_API_SECRET
    from bot_cli.paper.service import PaperExchange

__all__ = ["PAPER_API_KEY", "PAPER_API_SECRET", "PaperExchange"]

_HOMES = {
    "PAPER_API_KEY": "bot_cli.paper.auth",
    "PAPER_API_SECRET": "bot_cli.paper.auth",
    "PaperExchange": "bot_cli.paper.service",
}


def __getattr__(name: str) -> Any:
    """The public names, each loaded from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
