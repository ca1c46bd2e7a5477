"""Benchmark of the state store: durable saves against the disk's raw fsync rate, and load time.

    python -m bench.store [--dir DIR] [--n 10000] [--seconds 2]

Works in a temporary directory under DIR (default ./.bench-tmp, so on the same filesystem as the
state dir usually is) and removes it afterwards. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot_cli.state_store import PendingEntryStore

LINE_BYTES = 600
_BATCH = 1000
_POOL = 1024


def realistic_context(seq: int) -> dict[str, Any]:
    """A pending-entry record of about 600 bytes once stored, as the runtime writes them."""
    cid = f"bc-{seq:010d}-7f3a9c"
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "position_side": "LONG",
        "order_type": "LIMIT",
        "quantity": "0.012",
        "price": "64123.10",
        "time_in_force": "GTC",
        "status": "NEW",
        "filled_qty": "0",
        "stop_loss": {"trigger": "63000.00", "working_type": "MARK_PRICE", "cid": f"{cid}-sl"},
        "take_profit": {"trigger": "66500.00", "working_type": "MARK_PRICE", "cid": f"{cid}-tp"},
        "created_at_ms": 1_718_000_000_000 + seq,
        "updated_at_ms": 1_718_000_000_500 + seq,
        "history": [
            {"at_ms": 1_718_000_000_000 + seq, "event": "planned"},
            {"at_ms": 1_718_000_000_120 + seq, "event": "submitted", "order_id": 4_000_000 + seq},
        ],
        "note": "breakout-v2 entry on 15m close above range high",
    }


def make_store_with(path: str | os.PathLike[str], n: int) -> list[str]:
    """Fill the store at `path` with `n` realistic live records; return their ids."""
    ids = [f"bc-{seq:010d}" for seq in range(n)]
    with PendingEntryStore(path) as store:
        for start in range(0, n, _BATCH):
            batch = ids[start : start + _BATCH]
            store.save_many([(cid, realistic_context(start + i)) for i, cid in enumerate(batch)])
    return ids


def raw_fsync_rate(directory: Path, seconds: float) -> float:
    """Appends of one ~600-byte line, each followed by fsync, per second."""
    line = b"x" * (LINE_BYTES - 1) + b"\n"
    fd = os.open(directory / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append_and_sync() -> None:
        os.write(fd, line)
        os.fsync(fd)

    try:
        return _rate(seconds, append_and_sync)
    finally:
        os.close(fd)


def save_rate(directory: Path, seconds: float) -> float:
    """Durable PendingEntryStore.save() calls per second, each with its own record."""
    contexts = [realistic_context(seq) for seq in range(_POOL)]  # built by the caller, not timed
    counter = iter(range(10**12))

    def save_next() -> None:
        seq = next(counter)
        store.save(f"bc-{seq:010d}", contexts[seq % _POOL])

    with PendingEntryStore(directory / "saves") as store:
        return _rate(seconds, save_next)


def _rate(seconds: float, step: Callable[[], object]) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while (now := time.perf_counter()) < deadline:
        step()
        count += 1
    return count / (now - start)


def load_seconds(path: Path, repeats: int) -> tuple[list[float], float]:
    """Times of load_all() on fresh instances, and of a second load_all() on a warm one."""
    cold = []
    for _ in range(repeats):
        with PendingEntryStore(path) as store:
            start = time.perf_counter()
            store.load_all()
            cold.append(time.perf_counter() - start)
    with PendingEntryStore(path) as store:
        store.load_all()
        start = time.perf_counter()
        store.load_all()
        warm = time.perf_counter() - start
    return cold, warm


def json_floor_seconds(journal: Path, repeats: int) -> float:
    """Median time of json.loads of every line, results kept, GC off: what any load must pay."""
    data = journal.read_bytes()
    times = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            kept = [json.loads(line) for line in data.splitlines()]
            times.append(time.perf_counter() - start)
            del kept
    finally:
        gc.enable()
    return statistics.median(times)


@dataclass(frozen=True)
class Figures:
    raw_fsyncs_per_s: float
    saves_per_s: float
    n: int
    journal_bytes: int
    load_median_s: float
    load_max_s: float
    warm_load_s: float
    json_floor_s: float


def measure(directory: Path, n: int, seconds: float) -> Figures:
    raw = raw_fsync_rate(directory, seconds)
    saves = save_rate(directory, seconds)
    loaded = directory / "loaded"
    make_store_with(loaded, n)
    cold, warm = load_seconds(loaded, repeats=5)
    journal = loaded / "pending_entries.jsonl"
    floor = json_floor_seconds(journal, repeats=5)
    median = statistics.median(cold)
    return Figures(raw, saves, n, journal.stat().st_size, median, max(cold), warm, floor)


def report(fig: Figures) -> str:
    rows = [
        ("raw append+fsync of a 600-byte line", f"{fig.raw_fsyncs_per_s:,.0f} /s"),
        ("durable save() of a ~600-byte record", f"{fig.saves_per_s:,.0f} /s"),
        ("save() / raw fsync", f"{fig.saves_per_s / fig.raw_fsyncs_per_s:.2f}"),
        (f"journal of {fig.n:,} live records", f"{fig.journal_bytes / 1e6:.1f} MB"),
        ("load_all(), fresh instance, median of 5", f"{fig.load_median_s * 1000:.1f} ms"),
        ("load_all(), fresh instance, worst of 5", f"{fig.load_max_s * 1000:.1f} ms"),
        ("load_all(), same instance again", f"{fig.warm_load_s * 1000:.1f} ms"),
        ("json.loads of every line, GC off (floor)", f"{fig.json_floor_s * 1000:.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".bench-tmp"))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    created = not args.dir.exists()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="store-"))
    try:
        print(f"store bench in {work.resolve()}")
        print(report(measure(work, args.n, args.seconds)))
    finally:
        shutil.rmtree(work)
        if created:
            args.dir.rmdir()


if __name__ == "__main__":
    main()
