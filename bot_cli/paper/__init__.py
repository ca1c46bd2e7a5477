"""The paper venue: a simulated Binance USDⓈ-M futures exchange on 127.0.0.1.

It speaks Binance's own REST and user-stream wire formats, so the project's Binance adapter runs
against it unchanged, with the key ``PAPER_API_KEY`` and secret ``PAPER_API_SECRET``. Its state
lives in ``<state_dir>/paper/``, so resting orders fill and protective orders trigger while the
bot is down; a restarted venue first catches up on the elapsed time.

Modules: ``market`` (symbols, seeded price path), ``book``/``matching``/``account`` (the exchange
state machine), ``records`` (its values), ``rules`` (request validation), ``shapes``/``info``
(wire shapes), ``faults`` (fault switches), ``persist``/``snapshot`` (files, lock, state
document), ``service`` (the running exchange), ``auth``/``handlers``/``app``/``stream`` (HTTP and
WebSocket), ``server`` (serve / start_in_process / is_listening).
"""

from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET, PaperExchange

__all__ = ["PAPER_API_KEY", "PAPER_API_SECRET", "PaperExchange"]
