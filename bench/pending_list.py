"""`bot pending list` over N pending entries, as an operator runs it (a new process each time).

    python -m bench.pending_list [--n 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bot_cli.core.engine import open_entry, step
from bot_cli.core.events import EntryAccepted, EntryPartiallyFilled
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


def fill_state(path: Path, n: int) -> None:
    """n realistic entries: half open, half partially filled with a live protection being placed."""
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("64000.0"),
                     Decimal("63000.0"), Decimal("66000.0"))
    now = 1_764_000_000_000
    items = []
    for i in range(n):
        pid = make_pending_id(now + i, i)
        p, _ = open_entry(pid, spec, now + i, 5000)
        p, _ = step(p, EntryAccepted(pid, 1000 + i), now + i + 5)
        if i % 2:
            p, _ = step(p, EntryPartiallyFilled(pid, 1000 + i, Decimal("0.004"), Decimal("64000.0")), now + i + 9)
        items.append((pid, encode(p)))
    with PendingEntryStore(path) as store:
        store.save_many(items)


def time_command(args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=".bench-list-", dir=Path.cwd()))
    try:
        fill_state(tmp / "state", args.n)
        bot = [sys.executable, "-m", "bot_cli", "--state-dir", str(tmp / "state")]
        env_note = "stdout not a terminal (plain columns)"
        for label, extra in (("pending list", []), ("pending list --json", ["--json"])):
            t = time_command([*bot, "pending", "list", *extra], args.runs)
            print(f"{label:<22} {args.n} entries: median {statistics.median(t) * 1000:.0f} ms, "
                  f"best {min(t) * 1000:.0f} ms over {args.runs} runs (goal < 300 ms; {env_note})")
        t = time_command([sys.executable, "-c", "pass"], args.runs)
        print(f"{'python startup alone':<22} median {statistics.median(t) * 1000:.0f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
