"""bot_cli: every filled entry gets its stop-loss and take-profit, exactly once, across crashes.

``bot_cli.Client`` / ``bot_cli.AsyncClient`` are the Python API for strategies (bot_cli.api),
loaded on first use so the command line starts fast.
"""

from __future__ import annotations

from typing import Any


__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "AsyncClient"):
        from bot_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'bot_cli' has no attribute {name!r}")
