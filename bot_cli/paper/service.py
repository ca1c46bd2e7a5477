"""The running paper exchange: book + persistence + faults + user streams + listenKey + clock.

The one rule: ``commit()`` writes the state to disk BEFORE the caller answers a request or the
queued stream events are pushed, so anything a client has seen survives a crash of the venue.
On ``open()`` the venue loads its state and catches up on the time it was down: resting orders
fill and algo orders trigger as the (deterministic) price path says they would have. Events of
that period are not replayed, as on Binance: a client reconciles over REST after connecting.

The fault switches that are on are part of the state (a restart keeps them; a ``:once`` switch
that fired stays gone); one-shot actions, ``#N`` counts and late-visibility timers are not.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.paper import matching, persist, shapes, shapes_account, snapshot, wal
from bot_cli.paper.auth import BINANCE_ORDER_LIMITS, PAPER_API_KEY, PAPER_API_SECRET, OrderLimits, WeightMeter
from bot_cli.paper.book import Book
from bot_cli.paper.faults import Fault, FaultError, Faults
from bot_cli.paper.history import History
from bot_cli.paper.hub import Hub
from bot_cli.paper.market import SYMBOLS, Anchor, PricePath
from bot_cli.paper.rules import BookError


LISTEN_KEY_TTL_MS = 60 * 60 * 1000
PRUNE_EVERY_MS = 60_000

__all__ = ["PAPER_API_KEY", "PAPER_API_SECRET", "PaperExchange", "wall_ms"]  # the keys: re-exported
log = logging.getLogger("bot_cli.paper")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class PaperExchange:
    """One simulated USDⓈ-M account; ``state_dir=None`` keeps everything in memory (tests)."""

    def __init__(
        self,
        state_dir: Path | None,
        *,
        seed: int = 7,
        volatility: float = 0.0005,
        faults: Iterable[str] = (),
        clock: Callable[[], int] = wall_ms,
        order_limits: OrderLimits = BINANCE_ORDER_LIMITS,
    ) -> None:
        self.state_dir = state_dir
        self.seed, self.volatility = seed, volatility
        self.clock = clock
        self.faults = Faults()
        self.hub = Hub()
        self.weights = WeightMeter(order_limits)  # counts restart with the venue, as the weight
        self.book = Book(PricePath.starting(seed, volatility, clock()), clock())
        self.listen_key: str | None = None
        self.listen_key_expires = 0
        self._initial_faults = tuple(faults)
        self._snapshots = snapshot.Snapshotter()
        self._pruned_at = 0
        self._lock = persist.PaperLock(state_dir) if state_dir is not None else None
        self._file = (
            persist.paper_dir(state_dir) / persist.STATE_NAME if state_dir is not None else None
        )
        self._log = wal.Log(self._file.parent) if self._file is not None else None
        self._changes = wal.Changes()
        self._seq = 0
        self._snapshotted = False  # the first persist of a run writes a snapshot
        self._saved_faults: list[str] = []  # the switches as last persisted
        self._history: History | None = None
        self.venue_id: str | None = None  # the paper state's own id, once opened

    # --- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Lock the state dir, load the state, catch up to now (no replay), apply config faults."""
        if self._lock is not None:
            self._lock.acquire()
        try:
            if self.state_dir is not None:
                self.venue_id = persist.own_id(self.state_dir)
            self._load()
            self.advance(self.now())
            self.book.drain()  # what happened while down is state, not stream: like Binance
            self._persist()
            for spec in self._initial_faults:
                if spec not in self.faults.specs():  # saved with the state already: not twice
                    self.add_fault(spec)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._lock is not None:
            self._lock.release()

    def now(self) -> int:
        return self.clock()

    def history(self) -> History:
        """Klines and tickers over the current book's price path (caches its walks)."""
        if self._history is None or self._history.path is not self.book.path:
            self._history = History(self.book.path)
        return self._history

    def _load(self) -> None:
        data = persist.load(self._file) if self._file is not None else None
        if data is None:
            data = {}
        try:
            if data:
                self.book = snapshot.load(data, self.seed, self.volatility)
                self.listen_key = data.get("listen_key")
                self.listen_key_expires = int(data.get("listen_key_expires_ms", 0))
                self._restore_faults(data.get("faults", []))
            self._seq = int(data.get("seq", 0))
            for change in self._log.read(self._seq) if self._log is not None else []:
                wal.apply(self.book, change)
                self._head(change["h"])
                self._seq = int(change["seq"])
        except (KeyError, TypeError, ValueError) as err:
            raise persist.PaperStateError(
                f"paper state {self._file} cannot be read ({err}): move it away to start afresh"
            ) from None
        self.book.dirty = False

    def _head(self, h: dict[str, Any]) -> None:
        """The small top-level state a logged change carries in full."""
        b = self.book
        b.last_ms, b.balance, b.dual = int(h["last_ms"]), Decimal(h["balance"]), bool(h["dual"])
        b.next_order_id, b.next_algo_id = int(h["next_order_id"]), int(h["next_algo_id"])
        b.next_trade_id = int(h["next_trade_id"])
        snapshot.load_settings(b, h)
        for sym, a in h["anchors"].items():
            b.path.anchors[sym] = Anchor(int(a["t0_ms"]), Decimal(a["p0"]))
        self.listen_key = h.get("listen_key")
        self.listen_key_expires = int(h.get("listen_key_expires_ms", 0))
        self._restore_faults(h.get("faults", []))

    def _restore_faults(self, specs: list[str]) -> None:
        self.faults.clear()
        for spec in specs:
            try:
                self.faults.add(str(spec))
            except FaultError as err:  # written by another version: the state is still good
                log.warning("paper state: dropped the saved fault %r (%s)", spec, err)
        self._saved_faults = self.faults.specs()

    def _persist(self) -> None:
        """One appended, fsync'd line per change; a fresh snapshot now and then."""
        self._saved_faults = self.faults.specs()
        if self._file is None or self._log is None:
            return
        extra = {
            "listen_key": self.listen_key,
            "listen_key_expires_ms": self.listen_key_expires,
            "faults": self._saved_faults,
        }
        self._seq += 1
        if self._log.lines >= wal.SNAPSHOT_EVERY or self._seq == 1 or not self._snapshotted:
            wal.save_snapshot(self._file, self._snapshots.dump(self.book, {**extra, "seq": self._seq}))
            self._log.truncate()
            self._changes.reset(self.book)
            self._snapshotted = True
            return
        change = self._changes.delta(self.book, {**snapshot.header(self.book), **extra})
        self._log.append({"seq": self._seq, **change})

    # --- the commit rule --------------------------------------------------------------------

    def commit(self) -> None:
        """Persist if anything changed, then push the queued events (in that order)."""
        if not self.book.dirty and self.faults.specs() == self._saved_faults:
            return
        self._persist()
        self.hub.publish(self.listen_key, self.book.drain())

    def advance(self, now: int) -> None:
        """Bring the book to ``now``: resting orders fill, algo orders trigger and countdowns end
        on the way (with the algo orders too while ``countdown_cancels_algo`` is on)."""
        self.book.countdown_cancels_algo = self.faults.countdown_cancels_algo
        matching.advance(self.book, now)

    def sync(self) -> int:
        """Bring the book to now and commit; returns now."""
        now = self.now()
        self.advance(now)
        self.commit()
        return now

    def tick(self) -> None:
        """The background step: time passes, keys expire, periodic stream drops happen."""
        now = self.now()
        if now - self._pruned_at >= PRUNE_EVERY_MS:
            self._pruned_at = now
            self.book.prune(now)
        drop = self.faults.stream_drop_due(now)  # before sync: a fired ``:once`` is persisted
        self.sync()
        if self.listen_key is not None and now >= self.listen_key_expires:
            self.expire_listen_key()
        if drop:
            self.hub.drop_all()

    # --- listenKey --------------------------------------------------------------------------

    def start_listen_key(self) -> str:
        """POST: the active key (extended), or a new one; one key per account, shared."""
        now = self.now()
        if self.listen_key is None or now >= self.listen_key_expires:
            if self.listen_key is not None:
                self.expire_listen_key()
            self.listen_key = "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(64)
            )
        self.listen_key_expires = now + LISTEN_KEY_TTL_MS
        self._persist()
        return self.listen_key

    def keepalive_listen_key(self) -> str:
        """PUT: extend the active key by 60 minutes; -1125 when there is none."""
        now = self.now()
        if self.listen_key is None or now >= self.listen_key_expires:
            raise BookError(
                -1125,
                "This listenKey does not exist. "
                "Please use POST /fapi/v1/listenKey to recreate listenKey",
            )
        self.listen_key_expires = now + LISTEN_KEY_TTL_MS
        self._persist()
        return self.listen_key

    def valid_listen_key(self, key: str) -> bool:
        return key == self.listen_key and self.now() < self.listen_key_expires

    def expire_listen_key(self) -> None:
        """The key dies: its sockets get ``listenKeyExpired``. Binance's docs example (and live
        reports) print E as a string, the SDK model declares an int; no fixture decides, so we
        follow the SDK, which otherwise hands the raw dict on. The bot's adapter reads either."""
        key = self.listen_key
        if key is None:
            return
        self.listen_key, self.listen_key_expires = None, 0
        self._persist()
        self.hub.expire(key, {"e": "listenKeyExpired", "E": self.now(), "listenKey": key})

    # --- faults -----------------------------------------------------------------------------

    def add_fault(self, spec: str) -> Fault:
        """Switch a fault on (persisted), or run a one-shot action (not persisted)."""
        fault = self.faults.add(spec)
        if fault.kind == "expire_listen_key":
            self.expire_listen_key()
        elif fault.immediate:
            self.hub.drop_all()
        self.commit()
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()
        self.commit()

    # --- admin view -------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        now = self.now()
        self.advance(now)
        price = self.book.set_price(symbol, price, now)
        self.commit()
        return price

    def whoami(self) -> dict[str, Any]:
        """GET /paper/whoami: the paper state this venue serves (its id and directory)."""
        where = None if self.state_dir is None else str((Path(self.state_dir) / "paper").resolve())
        return {"id": self.venue_id, "paper_dir": where}

    def snapshot(self) -> dict[str, Any]:
        """GET /paper/state: prices, both books, positions, wallet, countdowns, key and faults."""
        now = self.sync()
        book = self.book
        closed = sorted(
            (o for o in book.orders.values() if not o.is_open), key=lambda o: o.update_time
        )
        closed_algos = sorted(
            (a for a in book.algos.values() if not a.is_open), key=lambda a: a.update_time
        )
        return {
            "time": now,
            "prices": {s: SYMBOLS[s].fmt_price(book.mark(s, now)) for s in SYMBOLS},
            "balance": shapes.money(book.balance),
            "dualSidePosition": book.dual,
            "openOrders": [shapes.order_response(o, "query") for o in book.open_orders()],
            "openAlgoOrders": [shapes.algo_response(a, "query") for a in book.open_algos()],
            "recentOrders": [shapes.order_response(o, "query") for o in closed[-20:]],
            "recentAlgoOrders": [shapes.algo_response(a, "query") for a in closed_algos[-20:]],
            "positions": [
                shapes_account.position_v3(
                    p, book.mark(p.symbol, now), book.notional(p.symbol), book.setting(p.symbol)
                )
                for p in book.positions.values()
                if p.amount
            ],
            "countdowns": dict(sorted(book.countdowns.items())),
            "listenKey": {
                "active": self.listen_key is not None,
                "expiresAt": self.listen_key_expires,
            },
            "streams": self.hub.count(),
            "faults": self.faults.specs(),
        }
