"""The live view of `bot run`, as a person sees it in a terminal of 80 and of 140 columns.

`bot run --live` runs in a pseudo-terminal of that size against `bot paper serve`; a market
entry is protected; the screen must show the protected position with its legs, the entry and
SL/TP prices, events in the order they happened, no line wider than the terminal and no word
said twice in a row.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli.cli import views
from bot_cli.core.engine import request_adoption
from bot_cli.core.model import EntrySpec, OrderType, Pending, PendingId, Side
from tests.e2e.harness import BOT, cluster_at, wait_for


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
REDRAW = re.compile(r"\x1b\[[0-9]*[AK]")  # cursor up / erase line: a redraw starts a new line


class Screen:
    """What the pseudo-terminal received, read on a thread."""

    def __init__(self, fd: int) -> None:
        self.fd, self.data = fd, bytearray()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data.extend(chunk)

    def text(self) -> str:
        return ANSI.sub("", REDRAW.sub("\n", self.data.decode("utf-8", "replace")))

    def last_frame(self) -> list[str]:
        """The lines of the last full drawing (from the last header panel down)."""
        lines = [line for line in self.text().split("\n") if line.strip()]
        start = max(i for i, line in enumerate(lines) if "bot run" in line and "venue" in line)
        return lines[start - 1:]


@pytest.mark.e2e
@pytest.mark.parametrize("columns", [80, 140])
def test_the_live_view_shows_the_protected_position_with_its_legs(tmp_path: Path, columns: int) -> None:
    # Arrange: `bot run --live` in a terminal of that size
    with cluster_at(tmp_path) as c:
        c.set_price("BTCUSDT", "97000")
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {**c.env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "50"}
        env.pop("NO_COLOR", None)
        proc = subprocess.Popen(
            [BOT, "run", "--live"], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=c.root,
            start_new_session=True,
        )
        os.close(slave)
        screen = Screen(master)
        try:
            wait_for(lambda: "stream connected" in screen.text(), "the live view with the stream up")

            # Act: a market entry, protected by the daemon
            answer = c.enter("BTCUSDT", "buy", "0.010", sl="96000", tp="99000")
            pid = str(answer["id"])
            wait_for(lambda: "PROTECTED" in "".join(screen.last_frame()) and "tp1" in "".join(screen.last_frame()),
                     "the protected position on screen")
            frame = screen.last_frame()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            os.close(master)

    # Assert
    shown = "\n".join(frame)
    row = next(line for line in frame if pid[:10] in line)
    assert "PROTECTED" in row, row
    assert "market" in shown
    assert "96000" in shown
    assert "99000" in shown
    assert "sl1 0.010 live" in shown
    assert "tp1 0.010 live" in shown
    assert all(len(line) <= columns for line in frame), [line for line in frame if len(line) > columns]
    twice = [
        line for line in frame
        if any(a == b for a, b in itertools.pairwise(t for t in line.split() if any(c.isalpha() for c in t)))
    ]
    assert twice == [], "a word said twice in a row"
    times = re.findall(r"^\W*(\d\d:\d\d:\d\d)\b", shown, re.MULTILINE)
    assert times == sorted(times), "events in the order they happened"


Row = tuple[object, ...]


@pytest.mark.parametrize("row", [views._wide_row, views._narrow_row], ids=["wide", "narrow"])
def test_an_adopted_entry_says_adopted_where_an_entry_price_would_be(row: Callable[[Pending], Row]) -> None:
    """It has no entry order: "market" there would tell a person one was sent."""
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.ADOPTED, None, Decimal(95000), None)
    p, _ = request_adoption(PendingId("bc0aaaaaaaaaaaaa"), spec, None, 1, 5000)

    cells = " ".join(str(c) for c in row(p))

    assert "adopted" in cells
    assert "market" not in cells
