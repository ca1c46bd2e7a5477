"""Child process for the store's multi-process tests; prints a line after each durable action.

python tests/store/writer_proc.py write <dir> [--prefix P] [--count N] [--seed S]
    save entries <P>000000, <P>000001, ... printing "<id>" after each save() returns; every
    fourth step remove a random earlier entry of this run, printing "del <id>" after remove()
    returns; compact now and then. Runs until --count saves or until killed.
python tests/store/writer_proc.py hold-lock <dir>
    take the DaemonLock, print "locked <pid>", hold it until stdin closes.
python tests/store/writer_proc.py try-lock <dir>
    try the DaemonLock once; print "held <pid>" (LockHeld) or "acquired".
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # runs as a script, not installed

from bot_cli.state_store import DaemonLock, LockHeld, PendingEntryStore


REMOVE_EVERY = 4
COMPACT_EVERY = 5


def context_for(entry_id: str, seq: int) -> dict[str, Any]:
    """The record the writer saves for `entry_id`; tests recompute it to check what was kept."""
    return {"seq": seq, "id": entry_id, "symbol": "BTCUSDT", "qty": "0.010", "pad": "p" * 400}


@dataclass
class Acks:
    """What writers acknowledged: saved ids with their sequence number, and removed ids."""

    saved: dict[str, int] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def add(self, lines: Iterable[bytes]) -> None:
        """Record complete output lines ("<id>" or "del <id>"); a cut-off last line is ignored."""
        for line in lines:
            if not line.endswith(b"\n"):
                continue
            words = line.decode().split()
            if words[0] == "del":
                self.removed.add(words[1])
            else:
                self.saved[words[0]] = int(words[0][-6:])


def write(state_dir: str, prefix: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    live: list[str] = []
    with PendingEntryStore(state_dir) as store:
        for seq in range(count):
            entry_id = f"{prefix}{seq:06d}"
            store.save(entry_id, context_for(entry_id, seq))
            live.append(entry_id)
            print(entry_id, flush=True)
            if seq % REMOVE_EVERY == REMOVE_EVERY - 1:
                victim = live.pop(rng.randrange(len(live)))
                store.remove(victim, "cancelled")
                print(f"del {victim}", flush=True)
            if seq % COMPACT_EVERY == COMPACT_EVERY - 1:
                store.compact()


def hold_lock(state_dir: str) -> None:
    with DaemonLock(state_dir):
        print(f"locked {os.getpid()}", flush=True)
        sys.stdin.read()


def try_lock(state_dir: str) -> None:
    try:
        with DaemonLock(state_dir):
            print("acquired", flush=True)
    except LockHeld as exc:
        print(f"held {exc.pid}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["write", "hold-lock", "try-lock"])
    parser.add_argument("dir")
    parser.add_argument("--prefix", default="e")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "write":
        write(args.dir, args.prefix, args.count, args.seed)
    elif args.mode == "hold-lock":
        hold_lock(args.dir)
    else:
        try_lock(args.dir)


if __name__ == "__main__":
    main()
