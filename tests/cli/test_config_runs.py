"""One validation of the config: what `bot config check` fails stops `bot run` with the same
line, before anything is written, sent or started; what it passes runs.

Each row is a config a newcomer might write (or an environment it needs and lacks). Real
processes: `bot config check` and `bot run --no-live` on a state dir that must stay untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import free_port


SECRET = "s" * 32
ROWS = [
    pytest.param('[paper]\nfaults = ["bogus:x"]\n', {}, "paper.faults has 'bogus:x': unknown fault 'bogus'",
                 id="a fault the venue does not know"),
    pytest.param("[venue]\ntimeout_s = nan\n", {}, "venue.timeout_s = nan must be a number of seconds above 0",
                 id="a timeout that is not a number"),
    pytest.param('[demo]\nquantity = "abc"\n', {}, "demo.quantity = 'abc' must be a quantity above 0",
                 id="a demo quantity that is not a number"),
    pytest.param("[demo]\nevery_s = -1.0\n", {}, "demo.every_s = -1.0 must be a number of seconds above 0",
                 id="a demo that would enter in a busy loop"),
    pytest.param("[inbox]\nenabled = true\n", {}, "BOT_INBOX_SECRET is not set: set it in the environment",
                 id="an inbox with no secret"),
    pytest.param("[inbox]\nenabled = true\n", {"BOT_INBOX_SECRET": "short"},
                 "BOT_INBOX_SECRET is shorter than 16 characters", id="an inbox with a short secret"),
]


def bot(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    argv = [sys.executable, "-m", "bot_cli", "--state-dir", str(root / "state"), "--config", str(root / "bot.toml")]
    return subprocess.run([*argv, *args], env={**base, **env}, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip


@pytest.mark.parametrize(("config", "env", "line"), ROWS)
def test_what_the_checker_fails_stops_bot_run_with_the_same_line(
    tmp_path: Path, config: str, env: dict[str, str], line: str
) -> None:
    # Arrange: the paper venue on a port of its own, should anything start it
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {free_port()}\n" + config.replace("[paper]\n", ""))

    # Act
    checked = bot(tmp_path, env, "config", "check")
    ran = bot(tmp_path, env, "run", "--no-live")

    # Assert
    assert checked.returncode == 1, checked
    assert line in checked.stdout, checked.stdout
    assert ran.returncode == 1, ran
    (said,) = ran.stderr.splitlines()
    assert line in said, said
    assert not (tmp_path / "state").exists(), "nothing written"


def test_an_inbox_with_its_secret_passes_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other side of the rule: the row the checker passes is the one `bot run` starts with."""
    from bot_cli.cli.config_cmd import Result, _inbox_row

    monkeypatch.setenv("BOT_INBOX_SECRET", SECRET)

    row = _inbox_row()

    assert row.result is Result.OK
