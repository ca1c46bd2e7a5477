"""The inbox as a process of its own, for the kill -9 tests (`bot run` does not serve it yet).

    python -m tests.inbox.serve PORT hold|beside      (BOT_CONFIG, BOT_STATE_DIR, BOT_INBOX_SECRET)

hold: holds the state dir's lock, as `bot run` does, and serves the inbox, but sends nothing:
      killed with SIGKILL after a 202, it is a daemon killed between the fsync and the send.
beside: serves the inbox beside a running `bot run`; the daemon's heartbeat says whether it is
      connected to the exchange, and the daemon sends what the inbox writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from bot_cli.config import load_config
from bot_cli.connect import connect
from bot_cli.inbox import serve_inbox
from bot_cli.state_store import DaemonLock


async def main(port: int, mode: str) -> None:
    cfg = load_config(os.environ["BOT_CONFIG"])
    state = Path(os.environ["BOT_STATE_DIR"])
    inbox_cfg = replace(cfg.inbox, enabled=True, port=port)
    with DaemonLock(state) if mode == "hold" else contextlib.nullcontext():
        async with connect(cfg, state, start_paper=False) as conn:
            connected = (lambda: True) if mode == "hold" else None
            async with serve_inbox(inbox_cfg, state, conn.rest, venue_name=conn.venue_name,
                                   connected=connected, say=print,
                                   stacking=cfg.protection.stacking) as handle:  # fmt: skip
                if handle is None:
                    sys.exit(1)
                print("ready", flush=True)
                await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
