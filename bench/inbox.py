"""Signals into the inbox: accepted per second, and POST -> entry order on the paper venue.

    python -m bench.inbox [--latency 150] [--signals 400] [--clients 8] [--dir DIR]

The paper venue runs in this process and stamps when each entry order reaches it; `bot run`,
with the inbox enabled beside it, runs as its own process.

1. POST -> entry order: one signal at a time, at random moments (limit entries that rest on
   the book): from sending the POST to its 202 (the entry fsync'd), and to the venue receiving
   that entry's POST /fapi/v1/order; p50 / p99.
2. Accepted per second: CLIENTS concurrent clients post SIGNALS signals (five symbols) as fast
   as the inbox answers, every answer a 202, while the daemon sends them; then the time until
   the last entry order reached the venue.

An accepted signal wakes the daemon's journal look at once (the inbox's ``on_accepted``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx


SECRET = "bench-inbox-secret-0123456789"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "BNBUSDT", "XRPUSDT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(root: Path, venue_port: int, inbox_port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bot.toml"
    path.write_text(
        f"[paper]\nport = {venue_port}\nvolatility = 0.0\n[venue]\nposition_mode = 'one-way'\n"
        f"[inbox]\nenabled = true\nport = {inbox_port}\nmax_per_minute = 1000000\n"
    )  # rate limit off: the benchmark measures the inbox, not its limiter
    return path




# -- this process: the venue and the clients -------------------------------------------------


class Arrivals:
    """Wraps the venue's new_order: an event per entry, set when its order arrives."""

    def __init__(self, exchange: Any) -> None:
        self.at: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Event] = {}
        new_order = exchange.book.new_order

        def stamped(req: Any, now_ms: int) -> Any:
            cid = req.client_id or ""
            if cid.endswith("-e"):
                self.at.setdefault(cid[:-2], time.perf_counter())
                self.event(cid[:-2]).set()
            return new_order(req, now_ms)

        exchange.book.new_order = stamped

    def event(self, pid: str) -> asyncio.Event:
        return self.waiting.setdefault(pid, asyncio.Event())


def signals(symbol: str, n: int, tag: str) -> list[dict[str, str]]:
    """n resting limit buys on ``symbol`` (well below the market), each its own key."""
    from bot_cli.paper.market import SYMBOLS as SPECS

    spec = SPECS[symbol]
    price = spec.round_price(spec.start_price * Decimal("0.95"))
    qty = max(spec.min_qty, ((spec.min_notional * 2 / price) / spec.step_size)
              .to_integral_value(rounding=ROUND_CEILING) * spec.step_size)  # fmt: skip
    sl, tp = spec.round_price(price * Decimal("0.9")), spec.round_price(price * Decimal("1.1"))
    return [
        {"key": f"{tag}-{symbol}-{i}", "symbol": symbol, "side": "buy", "quantity": str(qty),
         "price": str(price), "sl": str(sl), "tp": str(tp)}
        for i in range(n)
    ]


async def post(
    http: httpx.AsyncClient, url: str, sig: dict[str, str]
) -> tuple[float, httpx.Response]:
    body = json.dumps(sig).encode()
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    start = time.perf_counter()
    answer = await http.post(url, content=body, headers={"X-Bot-Signature": f"sha256={mac}"})
    if answer.status_code != 202:
        raise SystemExit(f"signal {sig['key']}: {answer.status_code} {answer.text}")
    return start, answer


async def latency(
    http: httpx.AsyncClient, url: str, arrivals: Arrivals, n: int
) -> tuple[list[float], list[float]]:
    acked, ordered, gaps = [], [], random.Random(7)
    for sig in signals("BTCUSDT", n, "latency"):
        # signals come when they come, not in step with the daemon's journal look (every 100 ms)
        await asyncio.sleep(gaps.uniform(0, 0.1))
        start, answer = await post(http, url, sig)
        acked.append((time.perf_counter() - start) * 1000)
        pid = answer.json()["id"]
        await asyncio.wait_for(arrivals.event(pid).wait(), 10)
        ordered.append((arrivals.at[pid] - start) * 1000)
    return acked, ordered


async def throughput(
    http: httpx.AsyncClient, url: str, arrivals: Arrivals, n: int, clients: int
) -> tuple[float, float]:
    per = -(-n // 5)
    queue = [s for sym in SYMBOLS[1:] for s in signals(sym, per, "rate")][:n]
    ids: list[str] = []

    async def client() -> None:
        while queue:
            _, answer = await post(http, url, queue.pop())
            ids.append(answer.json()["id"])

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    accepted = time.perf_counter() - start
    await asyncio.wait_for(asyncio.gather(*(arrivals.event(pid).wait() for pid in ids)), 60)
    return n / accepted, (max(arrivals.at[pid] for pid in ids) - start)


async def until_ready(state: Path, url: str, daemon: subprocess.Popen[bytes]) -> None:
    """The inbox answers /health and the daemon's start-up reconcile is done."""
    from bot_cli.runtime import heartbeat

    end = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while True:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}")
            beat = heartbeat.read(state) or {}
            try:
                healthy = (await http.get(url.replace("/signal", "/health"))).status_code == 200
            except httpx.HTTPError:
                healthy = False
            if healthy and beat.get("last_reconcile"):
                return
            if time.monotonic() > end:
                raise SystemExit("the daemon and its inbox were not ready in 30 s")
            await asyncio.sleep(0.05)


async def measure(root: Path, n_latency: int, n_signals: int, clients: int) -> Run:
    from bot_cli.paper.server import start_in_process

    venue_port, inbox_port, state = free_port(), free_port(), root / "state"
    config = write_config(root, venue_port, inbox_port)
    handle = await start_in_process(state, "127.0.0.1", venue_port, volatility=0.0)
    arrivals = Arrivals(handle.exchange)
    env = {**os.environ, "BOT_CONFIG": str(config), "BOT_STATE_DIR": str(state),
           "BOT_INBOX_SECRET": SECRET}  # fmt: skip
    argv = [sys.executable, "-m", "bot_cli", "run", "--no-live"]  # the product, wired as shipped
    with (root / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{inbox_port}/signal"
    try:
        await until_ready(state, url, daemon)
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            acked, ordered = await latency(http, url, arrivals, n_latency)
            rate, drained = await throughput(http, url, arrivals, n_signals, clients)
        return Run(acked, ordered, rate, drained)
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.to_thread(daemon.wait, 20)
        await handle.stop()


@dataclass
class Run:
    acked: list[float]  # ms, POST -> 202
    ordered: list[float]  # ms, POST -> entry order at the venue
    rate: float  # signals accepted per second
    drained_s: float  # first POST -> last entry order at the venue


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(name: str, r: Run, signals: int, clients: int) -> None:
    print(f"{name}:")
    print(f"  POST -> 202 (entry fsync'd), {len(r.acked)} signals one at a time:"
          f" p50 {pct(r.acked, 50):.2f} ms, p99 {pct(r.acked, 99):.2f} ms")
    print(f"  POST -> entry order at the paper venue:"
          f" p50 {pct(r.ordered, 50):.2f} ms, p99 {pct(r.ordered, 99):.2f} ms")
    print(f"  accepted: {r.rate:.0f} signals/s ({signals} signals, {clients} clients, every one"
          f" a 202); the last entry order reached the venue {r.drained_s:.2f} s after the first")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=150, help="signals one at a time (<= 200)")
    parser.add_argument("--signals", type=int, default=400, help="signals for the rate (<= 1000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the rate")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    try:
        run = asyncio.run(measure(root, args.latency, args.signals, args.clients))
        report("bot run with [inbox] enabled (an accepted signal wakes the journal look)", run,
               args.signals, args.clients)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
