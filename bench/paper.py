"""The paper venue over loopback, with the daemon as its own process.

    python -m bench.paper [--fills 1000] [--recover 1000] [--filled-while-down 96]

1. Fill -> protection: the venue runs in this process (so both ends are stamped on
   one clock); `bot run` is a separate process. Entries are handed to the daemon the
   way `bot enter` does it when a daemon runs (REQUESTED in the journal); then each
   entry is filled in turn. Measured: the venue publishing the fill event -> the
   venue receiving that entry's POST /fapi/v1/algoOrder (the stop-loss).
2. `bot recover` over N pending entries, as an operator runs it (a new process),
   with some entries filled while no daemon ran: wall time, REST calls, weight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_cli.core.engine import request_entry
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.paper.server import start_in_process
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


SYMBOL = "BTCUSDT"
TOP = Decimal("60000.0")
TICK = Decimal("0.1")
WAVE = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(root: Path, port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bot.toml"
    path.write_text(f"[paper]\nport = {port}\nvolatility = 0.0\n[venue]\nrecv_window_ms = 5000\n")
    return path


def request_entries(state: Path, n: int, first_price: Decimal, first: int = 0) -> list[tuple[str, Decimal]]:
    """n buy entries, each one tick below the previous, written as REQUESTED for the daemon."""
    now = time.time_ns() // 1_000_000
    entries, items = [], []
    for i in range(n):
        price = first_price - TICK * i
        spec = EntrySpec(SYMBOL, Side.BUY, Decimal("0.002"), OrderType.LIMIT, price, price - 500, price + 500)
        pid = make_pending_id(now, first + i)
        p, _ = request_entry(pid, spec, now, 5000)
        items.append((pid, encode(p)))
        entries.append((pid, price))
    with PendingEntryStore(state) as store:
        store.save_many(items)
    return entries


async def until(condition: Any, what: str, limit_s: float = 60.0) -> None:
    end = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Stamps:
    """Wraps the venue's publish and new_algo to stamp fills and stop-loss arrivals."""

    def __init__(self, exchange: Any) -> None:
        self.fill: dict[str, float] = {}
        self.sl: dict[str, float] = {}
        publish, new_algo = exchange.hub.publish, exchange.book.new_algo

        def stamped_publish(key: Any, events: list[dict[str, Any]]) -> None:
            now = time.perf_counter()
            for e in events:
                o = e.get("o", {})
                if e.get("e") == "ORDER_TRADE_UPDATE" and o.get("x") == "TRADE" and o.get("c", "").endswith("-e"):
                    self.fill.setdefault(o["c"][:-2], now)
            publish(key, events)

        def stamped_new_algo(req: Any, now_ms: int) -> Any:
            cid = req.client_id or ""
            if cid.endswith("-sl1"):
                self.sl.setdefault(cid[:-4], time.perf_counter())
            return new_algo(req, now_ms)

        exchange.hub.publish = stamped_publish
        exchange.book.new_algo = stamped_new_algo


def all_open(journal: PendingEntryStore, wave: list[tuple[str, Decimal]]) -> bool:
    records = journal.load_all()
    return all(records.get(pid, {}).get("status") == "OPEN" for pid, _ in wave)


def _status(journal: PendingEntryStore, pid: str) -> str:
    return str(journal.load_all().get(pid, {}).get("status", ""))


def start_daemon(root: Path, config: Path, state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BOT_CONFIG": str(config), "BOT_STATE_DIR": str(state)}
    log = (root / "daemon.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "bot_cli", "run", "--no-live"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


async def fill_latency(root: Path, fills: int) -> list[float]:
    port, state = free_port(), root / "state"
    config = write_config(root, port)
    handle = await start_in_process(state, "127.0.0.1", port, volatility=0.0)
    ex = handle.exchange
    daemon = start_daemon(root, config, state)
    try:
        stamps = Stamps(ex)
        ex.set_price(SYMBOL, TOP)
        await until(lambda: ex.hub.count() > 0, "the daemon's user stream")
        journal = PendingEntryStore(state)
        entries: list[tuple[str, Decimal]] = []
        while len(entries) < fills:  # in waves: Binance allows 200 open orders per symbol
            wave = request_entries(state, min(WAVE, fills - len(entries)), TOP - 1 - TICK * len(entries), len(entries))
            await until(lambda wave=wave: all_open(journal, wave), f"{len(wave)} entries on the book", 120)
            for pid, price in wave:
                ex.set_price(SYMBOL, price)
                ex.sync()  # the crossing step now, not at the next 100 ms tick
                await until(lambda pid=pid: pid in stamps.sl, f"the stop-loss of {pid}", 10)
                await until(lambda pid=pid: _status(journal, pid) == "PROTECTED", f"{pid} protected", 10)
                # one fill at a time: its TP fires, the bot cancels its SL and archives it, so the
                # venue never holds more than 200 conditional orders (Binance's limit in all)
                ex.set_price(SYMBOL, price + 500)
                ex.sync()
                await until(lambda pid=pid: pid not in journal.load_all(), f"{pid} taken profit and archived", 10)
            entries.extend(wave)
        return [(stamps.sl[pid] - stamps.fill[pid]) * 1000 for pid, _ in entries]
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.to_thread(daemon.wait, 20)
        await handle.stop()


def bot(root: Path, config: Path, state: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "BOT_CONFIG": str(config), "BOT_STATE_DIR": str(state)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot_cli", *args], env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def request_spread(state: Path, n: int) -> dict[str, list[tuple[str, Decimal]]]:
    """n buy entries spread over every paper symbol (Binance allows 200 open orders per symbol)."""
    from bot_cli.paper.market import SYMBOLS

    now = time.time_ns() // 1_000_000
    per = -(-n // len(SYMBOLS))
    out: dict[str, list[tuple[str, Decimal]]] = {}
    items = []
    for k, (symbol, spec) in enumerate(SYMBOLS.items()):
        top = spec.round_price(spec.start_price * Decimal("0.98"))
        qty = ((spec.min_notional * 2 / top) / spec.step_size).to_integral_value(rounding="ROUND_CEILING") * spec.step_size
        qty = max(qty, spec.min_qty)
        for i in range(min(per, n - k * per)):
            price = top - spec.tick_size * i
            sl, tp = spec.round_price(price * Decimal("0.9")), spec.round_price(price * Decimal("1.1"))
            pid = make_pending_id(now, k * per + i)
            p, _ = request_entry(pid, EntrySpec(symbol, Side.BUY, qty, OrderType.LIMIT, price, sl, tp), now, 5000)
            items.append((pid, encode(p)))
            out.setdefault(symbol, []).append((pid, price))
    with PendingEntryStore(state) as store:
        store.save_many(items)
    return out


async def recover_scale(root: Path, n: int, filled: int) -> None:
    port, state = free_port(), root / "state"
    config = write_config(root, port)
    handle = await start_in_process(state, "127.0.0.1", port, volatility=0.0)
    ex = handle.exchange
    daemon = start_daemon(root, config, state)
    try:
        await until(lambda: ex.hub.count() > 0, "the daemon's user stream")
        by_symbol = request_spread(state, n)
        journal = PendingEntryStore(state)
        every = [e for entries in by_symbol.values() for e in entries]
        await until(lambda: all_open(journal, every), f"{n} entries on the book", 180)
        daemon.send_signal(signal.SIGTERM)
        await asyncio.to_thread(daemon.wait, 20)
        per = -(-filled // len(by_symbol))
        for symbol, entries in by_symbol.items():  # some entries fill while no daemon runs
            ex.set_price(symbol, entries[per - 1][1])
        ex.sync()
        plan_s, plan = await asyncio.to_thread(bot, root, config, state, "recover", "--dry-run", "--json")
        run_s, run = await asyncio.to_thread(bot, root, config, state, "recover", "--yes", "--json")
    finally:
        await handle.stop()
    filled = per * len(by_symbol)
    for label, seconds, done in (("recover --dry-run", plan_s, plan), ("recover --yes", run_s, run)):
        out = json.loads(done.stdout.splitlines()[0]) if done.stdout else {}
        print(f"  {label:<18} {n} pending ({filled} filled while down): {seconds * 1000:.0f} ms, exit {done.returncode}, "
              f"{out.get('rest_calls')} REST calls (2 + {filled} not found open + 1 positions), "
              f"request weight {out.get('request_weight')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fills", type=int, default=1000)
    ap.add_argument("--recover", type=int, default=1000)
    ap.add_argument("--filled-while-down", type=int, default=96)  # SL+TP each: under 200 conditional orders
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix=".bench-paper-", dir=Path.cwd()))
    try:
        if args.fills:
            ms = sorted(asyncio.run(fill_latency(root / "latency", args.fills)))
            q = statistics.quantiles(ms, n=100)
            print(f"fill -> protection over loopback, {len(ms)} fills (daemon in its own process, journal fsync included)")
            print(f"  p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms   max {ms[-1]:.2f} ms   (goal p50 <= 2 ms, p99 <= 10 ms)")
        if args.recover:
            print("bot recover over pending entries (a new process each, goal < 2 s):")
            asyncio.run(recover_scale(root / "recover", args.recover, args.filled_while_down))
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
