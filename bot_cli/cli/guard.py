"""Checks against the exchange before a destructive local change (filled in with the venue)."""

from __future__ import annotations

from bot_cli.cli.context import AppContext
from bot_cli.core.model import Pending, PendingId


def check_drop(ctx: AppContext, entries: dict[PendingId, Pending], force: bool) -> None:
    """Without a venue connection yet, dropping is a purely local archive move."""
    return None
