"""An entry's notes: what was decided and why, kept with the entry (bounded)."""

from __future__ import annotations

from dataclasses import replace

from bot_cli.core.model import Millis, Note, Pending, Status


HISTORY_LIMIT = 64
OPERATOR = "operator: "  # how an operator's cancel or close is noted when the lifecycle takes it


def operator_noted(p: Pending, since: Millis) -> bool:
    """An operator's cancel or close was taken into ``p`` at or after ``since``."""
    return any(n.at >= since and n.text.startswith(OPERATOR) for n in p.history)


def note(p: Pending, now: Millis, text: str) -> Pending:
    return replace(p, history=(*p.history, Note(now, text))[-HISTORY_LIMIT:])


def attention(p: Pending, now: Millis, reason: str) -> Pending:
    return note(replace(p, status=Status.NEEDS_ATTENTION, reason=reason), now, reason)
