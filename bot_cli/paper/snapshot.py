"""The book as one JSON document, and back: what ``<state_dir>/paper/exchange.json`` holds.

The document is rewritten after every change, so ``Snapshotter`` keeps each record's JSON text
and re-encodes only the records that changed (records are frozen and replaced on change, so
identity tells): a book with thousands of terminal orders still saves in milliseconds.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from bot_cli.paper.book import Book
from bot_cli.paper.leverage import Setting
from bot_cli.paper.market import SYMBOLS, Anchor, PricePath
from bot_cli.paper.records import Algo, Funding, Order, Position, Trade, from_json, to_json


STATE_VERSION = 1
_COMPACT = (",", ":")


def header(book: Book) -> dict[str, Any]:
    """Everything but the record lists."""
    return {
        "version": STATE_VERSION,
        "last_ms": book.last_ms,
        "balance": str(book.balance),
        "dual": book.dual,
        "next_order_id": book.next_order_id,
        "next_algo_id": book.next_algo_id,
        "next_trade_id": book.next_trade_id,
        "next_tran_id": book.next_tran_id,
        "settings": {
            s: {"leverage": v.leverage, "isolated": v.isolated} for s, v in book.settings.items()
        },
        "multi_assets": book.multi_assets,
        "countdowns": dict(sorted(book.countdowns.items())),  # symbol -> deadline (ms)
        "anchors": {s: {"t0_ms": a.t0_ms, "p0": str(a.p0)} for s, a in book.path.anchors.items()},
    }


def to_dict(book: Book) -> dict[str, Any]:
    """The whole state as a JSON-able dict."""
    return {
        **header(book),
        "orders": [to_json(o) for o in book.orders.values()],
        "algos": [to_json(a) for a in book.algos.values()],
        "positions": [to_json(p) for p in book.positions.values()],
        "trades": [to_json(t) for t in book.trades],
        "funding": [to_json(f) for f in book.funding],
    }


class Snapshotter:
    """Encodes a book to the state document, reusing the text of unchanged records."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, int], tuple[object, str]] = {}

    def dump(self, book: Book, extra: dict[str, Any]) -> str:
        """The document (``extra`` adds top-level keys); equal to ``json.dumps(to_dict(...))``."""
        fresh: dict[tuple[str, int], tuple[object, str]] = {}
        lists = {
            "orders": [self._text(fresh, "o", o.order_id, o) for o in book.orders.values()],
            "algos": [self._text(fresh, "a", a.algo_id, a) for a in book.algos.values()],
            "positions": [
                json.dumps(to_json(p), separators=_COMPACT) for p in book.positions.values()
            ],
            "trades": [self._text(fresh, "t", t.trade_id, t) for t in book.trades],
            "funding": [json.dumps(to_json(f), separators=_COMPACT) for f in book.funding],
        }
        self._texts = fresh  # forgets the records that are gone
        head = json.dumps({**header(book), **extra}, separators=_COMPACT)
        body = "".join(f',"{name}":[{",".join(texts)}]' for name, texts in lists.items())
        return head[:-1] + body + "}"

    def _text(
        self,
        fresh: dict[tuple[str, int], tuple[object, str]],
        kind: str,
        ident: int,
        record: object,
    ) -> str:
        cached = self._texts.get((kind, ident))
        text = cached[1] if cached is not None and cached[0] is record else None
        if text is None:
            text = json.dumps(to_json(record), separators=_COMPACT)
        fresh[(kind, ident)] = (record, text)
        return text


def load_settings(book: Book, head: dict[str, Any]) -> None:
    """Leverage, margin type, multi-assets mode, the income id counter and the countdownCancelAll
    deadlines, from a header (each absent in a state written before it existed)."""
    book.settings = {
        s: Setting(int(v["leverage"]), bool(v["isolated"]))
        for s, v in head.get("settings", {}).items()
    }
    book.countdowns = {str(s): int(at) for s, at in head.get("countdowns", {}).items()}
    book.multi_assets = bool(head.get("multi_assets", False))
    book.next_tran_id = int(head.get("next_tran_id", book.next_tran_id))


def load(data: dict[str, Any], seed: int, volatility: float) -> Book:
    """A book from the document; a symbol added since it was written starts at its start price."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported paper state version {data.get('version')!r}")
    last_ms = int(data["last_ms"])
    anchors = {s: Anchor(int(a["t0_ms"]), Decimal(a["p0"])) for s, a in data["anchors"].items()}
    for symbol, spec in SYMBOLS.items():
        anchors.setdefault(symbol, Anchor(last_ms, spec.start_price))
    book = Book(PricePath(seed, volatility, anchors), last_ms)
    book.balance, book.dual = Decimal(data["balance"]), bool(data["dual"])
    book.next_order_id = int(data["next_order_id"])
    book.next_algo_id = int(data["next_algo_id"])
    book.next_trade_id = int(data["next_trade_id"])
    load_settings(book, data)  # absent in a state written before settings existed
    for row in data["orders"]:
        book.put_order(from_json(Order, row))
    for row in data["algos"]:
        book.put_algo(from_json(Algo, row))
    for row in data["positions"]:
        p = from_json(Position, row)
        book.positions[(p.symbol, p.position_side)] = p
    book.trades = [from_json(Trade, row) for row in data["trades"]]
    book.funding = [from_json(Funding, row) for row in data.get("funding", [])]
    book.dirty = False
    return book
