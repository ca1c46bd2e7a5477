"""Input a newcomer types: every row refused in one line on stderr, exit 1, nothing written;
and every directory the bot creates is 0700 whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import free_port


def bot(cwd: Path, *args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    (cwd / "bot.toml").write_text(f"[paper]\nport = {free_port()}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot_cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False, preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )  # fmt: skip


ROWS = [
    pytest.param(("--state-dir", "", "enter", "BTCUSDT", "buy", "0.010", "--sl", "90000"),
                 "--state-dir '' names no directory", id="an empty state dir"),
    pytest.param(("enter", "BTCUSDT", "buy", "-0", "--sl", "90000"), "quantity -0 must be a positive number",
                 id="a negative quantity"),
    pytest.param(("enter", "BTCUSDT", "buy", "0.010", "--sl", "-5"), "--sl -5 must be a positive number",
                 id="a negative stop-loss"),
    pytest.param(("enter", "BTCUSDT", "buy", "1e999", "--sl", "90000"), "quantity '1e999' is not a number",
                 id="an exponent"),
    pytest.param(("enter", "BTCUSDT", "buy", "\uff10.\uff10\uff11", "--sl", "90000"),
                 "is not a number: give it as ASCII", id="fullwidth digits"),
    pytest.param(("enter", "BTCUSDT", "buy", "9" * 2000, "--sl", "90000"), "(2000 characters)",
                 id="a 2,000-digit number, cut in the message"),
]


@pytest.mark.parametrize(("args", "said"), ROWS)
def test_a_bad_input_is_one_line_exit_1_and_nothing_written(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    done = bot(tmp_path, *args)

    assert done.returncode == 1, done
    (line,) = done.stderr.splitlines()
    assert said in line, line
    assert len(line) < 200, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.toml"], "nothing written"


def test_a_negative_price_for_the_paper_venue_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = bot(tmp_path, "paper", "price", "BTCUSDT", "-5")

    assert done.returncode == 1, done
    assert done.stderr.splitlines() == ["error: PRICE -5 must be a positive number"]


def test_every_directory_the_bot_creates_is_0700_even_under_umask_000(tmp_path: Path) -> None:
    done = bot(tmp_path, "--state-dir", "deep/a/b", "pending", "list", umask=0)

    assert done.returncode == 0, done
    modes = {d: stat.S_IMODE((tmp_path / d).stat().st_mode) for d in ("deep", "deep/a", "deep/a/b")}
    assert modes == {"deep": 0o700, "deep/a": 0o700, "deep/a/b": 0o700}


def test_a_refusal_after_the_venue_started_in_this_process_is_still_one_line(tmp_path: Path) -> None:
    """The note that the venue runs in this process is said only with an answer, not beside an
    error: a refused entry is exactly its one line."""
    done = bot(tmp_path, "enter", "BTCUSDT", "buy", "5000", "--sl", "90000")

    assert done.returncode == 1, done
    said = "error: quantity 5000 exceeds MARKET_LOT_SIZE maxQty 120 for BTCUSDT; use at most 120"
    assert done.stderr.splitlines() == [said]
