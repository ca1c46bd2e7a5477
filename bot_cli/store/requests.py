"""Operator requests for the running daemon: one small file per request in ``requests/``.

A short CLI (`bot cancel`, `bot close`) never writes an entry the daemon owns: it drops a
request file (atomically replaced, fsync'd) that the daemon takes in, applies through the
lifecycle table, and removes only after the resulting state is durable. Applying a request
twice (a crash between the two) changes nothing more: cancel and close are idempotent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bot_cli.store.atomic import ensure_dir, fsync_dir, replace_durable


VERBS = ("cancel", "cancel-close", "close")
DIR = "requests"


@dataclass(frozen=True, slots=True)
class Request:
    path: Path
    pending_id: str
    verb: str


def put(state_dir: Path, pending_id: str, verb: str) -> Path:
    """Leave a request for the daemon; the same request twice is one request."""
    if verb not in VERBS:
        raise ValueError(f"unknown request {verb!r}; one of {', '.join(VERBS)}")
    folder = state_dir / DIR
    ensure_dir(folder)
    path = folder / f"{pending_id}.{verb}.json"
    replace_durable(path, json.dumps({"id": pending_id, "verb": verb}).encode())
    return path


def pending(state_dir: Path) -> list[Request]:
    """The requests waiting, oldest first; unreadable names are left alone."""
    folder = state_dir / DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        pid, _, rest = path.name.partition(".")
        verb = rest.removesuffix(".json")
        if pid and verb in VERBS:
            out.append(Request(path, pid, verb))
    return out


def done(request: Request) -> None:
    """The request's effect is durable: forget the request."""
    try:
        os.unlink(request.path)
    except FileNotFoundError:
        return
    fsync_dir(request.path.parent)
