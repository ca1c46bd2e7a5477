"""Operator requests for the running daemon: one small file per request in ``requests/``.

A short CLI (`bot cancel`, `bot close`, `bot amend`) never writes an entry the daemon owns: it
drops a request file (atomically replaced, fsync'd) that the daemon takes in, applies through the
lifecycle table, and removes only after the resulting state is durable. Applying a request
twice (a crash between the two) changes nothing more: cancel and close are idempotent, and an
amend to levels already taken is no change. A second amend before the daemon took the first
replaces it: the newest levels are the operator's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from bot_cli.store.atomic import ensure_dir, fsync_dir, replace_durable


VERBS = ("cancel", "cancel-close", "close", "amend")
DIR = "requests"


@dataclass(frozen=True, slots=True)
class Request:
    path: Path
    pending_id: str
    verb: str
    params: dict[str, str] = field(default_factory=dict)  # amend: the new levels, as decimal text


def put(state_dir: Path, pending_id: str, verb: str, params: dict[str, str] | None = None) -> Path:
    """Leave a request for the daemon; the same request twice is one request."""
    if verb not in VERBS:
        raise ValueError(f"unknown request {verb!r}; one of {', '.join(VERBS)}")
    folder = state_dir / DIR
    ensure_dir(folder)
    path = folder / f"{pending_id}.{verb}.json"
    replace_durable(path, json.dumps({"id": pending_id, "verb": verb, "params": params or {}}).encode())
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
            out.append(Request(path, pid, verb, _params(path)))
    return out


def _params(path: Path) -> dict[str, str]:
    try:
        params = json.loads(path.read_text(encoding="utf-8")).get("params") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}


def done(request: Request) -> None:
    """The request's effect is durable: forget the request."""
    try:
        os.unlink(request.path)
    except FileNotFoundError:
        return
    fsync_dir(request.path.parent)
