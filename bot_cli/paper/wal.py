"""The paper venue's durable state: a snapshot plus an append-only log of changes.

Rewriting the whole state file (temp + fsync + rename + directory fsync) costs tens
of milliseconds on a journaling filesystem, and the venue persists before it answers
or pushes an event — so every order paid that. Now each commit appends one line with
only the records that changed (one write + one fsync, a fraction of a millisecond),
and the snapshot is rewritten only every ``SNAPSHOT_EVERY`` lines. Lines carry a
sequence number and the snapshot the last one it includes, so a crash between
writing a new snapshot and emptying the log replays nothing twice. A torn last line
(a crash mid-append) is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bot_cli.paper import persist, snapshot
from bot_cli.paper.book import Book
from bot_cli.paper.records import Algo, Funding, Order, Position, Trade, from_json, to_json
from bot_cli.store.atomic import append_durable, open_file, truncate_durable


LOG_NAME = "exchange.log"
SNAPSHOT_EVERY = 2000
_COMPACT = (",", ":")


class Changes:
    """Which records changed since the last commit (records are frozen: identity tells)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], Order | Algo] = {}
        self._trades = 0
        self._funding: list[Funding] = []

    def reset(self, book: Book) -> None:
        self._seen = _records(book)
        self._trades = len(book.trades)
        self._funding = list(book.funding)

    def delta(self, book: Book, head: dict[str, Any]) -> dict[str, Any]:
        """The logged line of one commit: the head, the records that changed or went, new trades."""
        now = _records(book)
        changed = [(key, rec) for key, rec in now.items() if self._seen.get(key) is not rec]
        gone = [key for key in self._seen if key not in now]
        start = self._trades if self._trades <= len(book.trades) else 0
        out = {
            "h": head,
            "o": [to_json(r) for (kind, _), r in changed if kind == "o"],
            "a": [to_json(r) for (kind, _), r in changed if kind == "a"],
            "p": [to_json(p) for p in book.positions.values()],
            "t": [to_json(t) for t in book.trades[start:]],
            "go": [k for kind, k in gone if kind == "o"],
            "ga": [k for kind, k in gone if kind == "a"],
            "tn": len(book.trades),
        }
        if book.funding != self._funding:  # a few a day: sent whole when they change
            out["f"] = [to_json(f) for f in book.funding]
            self._funding = list(book.funding)
        self._seen, self._trades = now, len(book.trades)
        return out


def _records(book: Book) -> dict[tuple[str, int], Order | Algo]:
    """Every order ("o", id) and algo order ("a", id) of the book."""
    records: dict[tuple[str, int], Order | Algo] = {("o", k): v for k, v in book.orders.items()}
    records.update((("a", k), v) for k, v in book.algos.items())
    return records


def apply(book: Book, d: dict[str, Any]) -> None:
    """Replay one logged change onto a loaded book."""
    for row in d["o"]:
        book.put_order(from_json(Order, row))
    for row in d["a"]:
        book.put_algo(from_json(Algo, row))
    for k in d["go"]:
        book.orders.pop(k, None)
    for k in d["ga"]:
        book.algos.pop(k, None)
    book.positions = {}
    for row in d["p"]:
        p = from_json(Position, row)
        book.positions[(p.symbol, p.position_side)] = p
    trades = book.trades[: d["tn"] - len(d["t"])] if d["tn"] >= len(d["t"]) else []
    book.trades = trades + [from_json(Trade, row) for row in d["t"]]
    if "f" in d:
        book.funding = [from_json(Funding, row) for row in d["f"]]


class Log:
    """Append-only, fsync'd; opened once per server."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOG_NAME
        self._fd: int | None = None
        self.lines = 0

    def read(self, after_seq: int) -> list[dict[str, Any]]:
        """Complete, parseable lines with a sequence number above ``after_seq``."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for raw in data.split(b"\n")[:-1]:  # the part after the last newline is a torn append
            try:
                d = json.loads(raw)
            except ValueError:
                break  # a damaged line ends what can be trusted
            if int(d["seq"]) > after_seq:
                out.append(d)
        return out

    def append(self, d: dict[str, Any]) -> None:
        """One line, written and fsync'd before this returns."""
        if self._fd is None:
            self._fd = open_file(self.path, os.O_WRONLY | os.O_APPEND)
        append_durable(self._fd, (json.dumps(d, separators=_COMPACT) + "\n").encode())
        self.lines += 1

    def truncate(self) -> None:
        """Empty the log (durably): the snapshot just written holds every line of it."""
        fd = open_file(self.path, os.O_WRONLY)
        try:
            truncate_durable(fd, 0)
        finally:
            os.close(fd)
        self.lines = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def save_snapshot(path: Path, text: str) -> None:
    persist.save(path, text)


def durable_state(state_dir: Path, seed: int = 7, volatility: float = 0.0) -> dict[str, Any]:
    """What a restart would load (snapshot + log, with the faults that are on) as the snapshot
    document's dict; read-only."""
    directory = Path(state_dir) / "paper"
    data = persist.load(directory / persist.STATE_NAME) or {}
    book = snapshot.load(data, seed, volatility)
    last, faults = data.get("last_ms"), data.get("faults", [])
    for change in Log(directory).read(int(data.get("seq", 0))):
        apply(book, change)
        snapshot.load_settings(book, change["h"])
        last, faults = change["h"]["last_ms"], change["h"].get("faults", [])
    return {**snapshot.to_dict(book), "last_ms": last, "faults": faults}
