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
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bot_cli.core.events import OperatorAmend
from bot_cli.core.model import PendingId, Trail
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


def amend_params(e: OperatorAmend) -> dict[str, str]:
    """An amend as its request file (and the inbox's answer) carries it: decimal texts, the
    level prices and a trailing stop's rate and activation price comma-separated."""
    params = {"stop_loss": e.stop_loss, "take_profit": e.take_profit}
    out = {key: str(value) for key, value in params.items() if value is not None}
    if e.tp_levels:
        out["tp_levels"] = ",".join(map(str, e.tp_levels))
    if e.trail is not None:
        out["trail"] = ",".join(map(str, (e.trail.callback_pct, *((e.trail.activate,) if e.trail.activate else ()))))
    return out


def amend_event(pending_id: PendingId, params: Mapping[str, str]) -> OperatorAmend:
    """The amend a request file carries; a value that does not read is no move of that level."""
    def number(text: str | None) -> Decimal | None:
        try:
            return Decimal(text) if text else None
        except ArithmeticError:
            return None

    try:
        levels = tuple(Decimal(x) for x in params.get("tp_levels", "").split(",") if x)
    except ArithmeticError:
        levels = ()
    rate, _, start = params.get("trail", "").partition(",")
    callback = number(rate)
    return OperatorAmend(
        pending_id, stop_loss=number(params.get("stop_loss")), take_profit=number(params.get("take_profit")),
        tp_levels=levels, trail=None if callback is None else Trail(callback, number(start)),
    )  # fmt: skip


def done(request: Request) -> None:
    """The request's effect is durable: forget the request."""
    try:
        os.unlink(request.path)
    except FileNotFoundError:
        return
    fsync_dir(request.path.parent)
