"""The README's Set-up and Quickstart, run as written and in order, so they cannot drift again.

The Quickstart's code blocks are read from README.md: ``# terminal N`` says which terminal a line
runs in. `bot paper serve` and `bot run` keep running (in their own processes, as in their own
terminals); every other line runs to its end, and its exit code must be the one its comment
gives ("exit code N"), else 0. ``kill -9 <pid>`` kills the pid `bot status` printed. The paper
venue listens on a free port (a bot.toml in the walk's own directory says which), never 18765.
At the end the venue's own books must hold one stop-loss and one take-profit for the fill.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cancel_close import stop
from tests.e2e.harness import BOT, free_port, wait_for


pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
LONG_RUNNING = (("paper", "serve"), ("run",))
EXIT_CODE = re.compile(r"exit code (\d+)")


@dataclass(frozen=True)
class Line:
    terminal: int
    argv: tuple[str, ...]
    exit_code: int
    text: str


def section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {name}")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks(text: str) -> Iterator[str]:
    yield from re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def quickstart() -> list[Line]:
    """Every command of the Quickstart, in order, with its terminal and its expected exit code."""
    out, terminal = [], 0
    for block in blocks(section("Quickstart")):
        for raw in block.splitlines():
            if (m := re.match(r"#\s*terminal (\d+)", raw.strip())) is not None:
                terminal = int(m.group(1))
                continue
            command, _, comment = raw.partition("#")
            if not command.strip():
                continue
            code = EXIT_CODE.search(comment)
            out.append(Line(terminal, tuple(shlex.split(command)), int(code.group(1)) if code else 0, raw.strip()))
    return out


def test_the_set_up_installs_and_starts_nothing_the_quickstart_starts_itself() -> None:
    """The set-up ended in `bot run`, whose venue then stood in the way of the Quickstart's
    `bot paper serve`: the set-up installs; the Quickstart starts what it needs."""
    (install, *_) = blocks(section("Set-up"))
    assert "bot " not in install.replace("bin/pip", ""), install
    terminals = {line.terminal for line in quickstart()}
    assert terminals == {1, 2, 3}
    assert "Three terminals" in section("Quickstart")


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {port}\nvolatility = 0.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    background: list[subprocess.Popen[bytes]] = []
    printed_pid: int | None = None
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def status_code() -> int:
        return subprocess.run([BOT, "status"], cwd=tmp_path, env=env, capture_output=True, check=False).returncode

    try:
        for line in quickstart():
            argv = list(line.argv)
            if argv[0] == "kill":
                assert argv == ["kill", "-9", "<pid>"], line.text
                assert printed_pid is not None, "`bot status` printed no pid before `kill -9 <pid>`"
                os.kill(printed_pid, signal.SIGKILL)
                wait_for(lambda: status_code() != 0, "the killed daemon to be gone")
                continue
            assert argv[0] == ".venv/bin/bot", line.text
            argv[0] = BOT
            if tuple(argv[1:]) in LONG_RUNNING:
                with (tmp_path / f"terminal-{line.terminal}.log").open("ab") as log:
                    background.append(subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=log))
                if argv[1:] == ["paper", "serve"]:
                    wait_for(lambda: _answers(http), f"`bot paper serve` to answer on {port}")
                else:  # a person waits for the live view: here, for `bot status` to say healthy
                    wait_for(lambda: status_code() == 0, "`bot run` to be up and healthy")
                continue
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL, check=False)  # fmt: skip
            assert done.returncode == line.exit_code, f"{line.text}\n{done.stdout}\n{done.stderr}"
            if argv[1:] == ["status"] and (m := re.search(r"pid (\d+)", done.stdout)) is not None:
                printed_pid = printed_pid or int(m.group(1))

        # Assert: from the venue, the fill has exactly its stop-loss and take-profit
        state = http.get("/paper/state").json()
        legs = sorted((a["orderType"], Decimal(a["quantity"])) for a in state["openAlgoOrders"])
        assert legs == [("STOP_MARKET", Decimal("0.010")), ("TAKE_PROFIT_MARKET", Decimal("0.010"))], legs
    finally:
        http.close()
        for proc in background:
            stop(proc)


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/fapi/v1/time").status_code == 200
    except httpx.HTTPError:
        return False
