"""An entry's notes: what was decided and why, kept with the entry (bounded)."""

from __future__ import annotations

from dataclasses import replace

from bot_cli.core.model import Millis, Note, Pending, Status


HISTORY_LIMIT = 64


def note(p: Pending, now: Millis, text: str) -> Pending:
    return replace(p, history=(*p.history, Note(now, text))[-HISTORY_LIMIT:])


def attention(p: Pending, now: Millis, reason: str) -> Pending:
    return note(replace(p, status=Status.NEEDS_ATTENTION, reason=reason), now, reason)
