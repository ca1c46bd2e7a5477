"""The paper venue: a simulated Binance USDⓈ-M futures exchange on 127.0.0.1.

It speaks Binance's own REST and user-stream wire formats, so the project's Binance adapter runs
against it unchanged, with the key ``PAPER_API_KEY`` and secret ``PAPER_API_SECRET``. Its state
lives in ``<state_dir>/paper/``, so resting orders fill and protective orders trigger while the
bot is down; a restarted venue first catches up on the elapsed time.

Modules, in layers (a module imports from its own layer and the ones above it, never below):

- values and rules (pure): ``market`` (symbols, seeded price path), ``records``, ``leverage``,
  ``account`` (position arithmetic), ``rules`` (request validation), ``faults`` (fault
  switches), ``auth`` (keys, signatures, weights), ``shapes``/``shapes_account``/``info`` (wire
  shapes), ``history``/``klines``/``quotes`` (market data)
- the exchange state machine (pure, time passed in): ``ledger`` (the records, what a fill does)
  <- ``margin``, ``funding`` (and ``shapes_market``, the premiumIndex its schedule decides) <-
  ``book`` (requests at an instant) <- ``matching`` (time passing: fills, triggers, funding; it
  drives the book, never the reverse)
- the running exchange (files, no web stack): ``persist``/``snapshot``/``wal`` (lock, state
  document, change log, on the store's primitives), ``hub`` (stream fan-out), ``service``
  (``PaperExchange``: the commit rule), ``endpoint``/``handlers``/``handlers_account``/
  ``handlers_market`` (the /fapi endpoints), ``market_feed`` (market stream events)
- HTTP and WebSocket (starlette, uvicorn): ``app``, ``stream``, ``market_stream``, ``server``
  (serve / start_in_process / is_listening)

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
