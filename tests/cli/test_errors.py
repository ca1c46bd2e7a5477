"""Every error an operator can cause is one line on stderr and an exit code, never a traceback.

Each row runs the real command line in a process of its own: a state dir that is a file,
one that cannot be created, one this user cannot write, a port out of range, a venue URL
that nothing answers. And the state dir is 0700: a looser one is tightened, said once.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bot_cli.cli import _Group
from bot_cli.core.engine import request_entry
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.errors import TRACEBACK_ENV, unexpected
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import encode


pytestmark = pytest.mark.e2e

ENTER = ("enter", "BTCUSDT", "buy", "0.010", "--sl", "90000")
# Every command that touches the state dir or the venue.
COMMANDS = [
    ("run", "--no-live", "--venue-wait", "0"), ENTER, ("recover", "--yes"), ("recover", "--dry-run"),
    ("pending", "list"), ("pending", "drop", "X", "--yes"), ("status",), ("history",),
    ("paper", "orders"), ("paper", "price", "BTCUSDT", "97000"), ("paper", "serve"),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`bot ARGS` in ``cwd`` (state dir ./state and config ./bot.toml unless args say otherwise)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot_cli", *args], cwd=cwd, env={**clean, **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single stderr line of a failed command; no traceback anywhere."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def ids(commands: list[tuple[str, ...]]) -> list[str]:
    return [" ".join(c[:2]) for c in commands]


@pytest.mark.parametrize("args", COMMANDS, ids=ids(COMMANDS))
def test_a_state_dir_that_is_a_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    """--state-dir naming a file: exit 1, one line saying so, the file untouched."""
    (tmp_path / "state").write_text("not a dir")
    line = one_error_line(bot(tmp_path, *args))
    assert "state directory state exists but is not a directory" in line
    assert (tmp_path / "state").read_text() == "not a dir"


@pytest.mark.parametrize("args", COMMANDS[:5], ids=ids(COMMANDS[:5]))
def test_a_state_dir_that_cannot_be_created(tmp_path: Path, args: tuple[str, ...]) -> None:
    """--state-dir below a file: exit 1, one line naming the file in the way."""
    (tmp_path / "file").write_text("")
    line = one_error_line(bot(tmp_path, "--state-dir", "file/state", *args))
    assert "cannot be created: file is not a directory" in line


@pytest.fixture
def readonly_dir() -> Iterator[tuple[Path, list[str]]]:
    """A state dir this test's user cannot write, and the prefix that runs `bot` as that user.

    As root (whom modes do not stop) the command runs as nobody via setpriv; without
    setpriv the test is skipped.
    """
    root = Path(tempfile.mkdtemp())
    root.chmod(0o755)  # nobody must reach it
    state = root / "state"
    state.mkdir(mode=0o755)
    if os.geteuid() != 0:
        state.chmod(0o500)
        yield state, []
    elif (setpriv := shutil.which("setpriv")) is None:
        pytest.skip("running as root without setpriv: no user that a mode stops")
    else:
        yield state, [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    state.chmod(0o700)
    shutil.rmtree(root)


@pytest.mark.parametrize("args", COMMANDS[:5], ids=ids(COMMANDS[:5]))
def test_an_unwritable_state_dir(readonly_dir: tuple[Path, list[str]], args: tuple[str, ...]) -> None:
    """A state dir this user cannot write: exit 1, one line saying so; nothing written in it."""
    state, as_user = readonly_dir
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    result = subprocess.run(
        [*as_user, sys.executable, "-m", "bot_cli", "--state-dir", str(state), *args],
        cwd=state.parent, env=clean, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "is not writable by this user" in one_error_line(result)
    assert list(state.iterdir()) == []


PORT_COMMANDS = [COMMANDS[0], ENTER, ("recover", "--dry-run"), ("paper", "orders"), ("paper", "serve")]


@pytest.mark.parametrize("args", PORT_COMMANDS, ids=ids(PORT_COMMANDS))
def test_a_port_out_of_range_in_the_config(tmp_path: Path, args: tuple[str, ...]) -> None:
    """paper.port = 70000: exit 1, one line naming the key and the file."""
    (tmp_path / "bot.toml").write_text("[paper]\nport = 70000\n")
    line = one_error_line(bot(tmp_path, *args))
    assert "bot.toml: paper.port = 70000 is not a TCP port" in line


def test_a_port_out_of_range_on_the_command_line(tmp_path: Path) -> None:
    """`paper serve --port 70000`: a usage error (exit 2) naming the range, before anything listens."""
    result = bot(tmp_path, "paper", "serve", "--port", "70000")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "70000 is not in the range 1<=x<=65535" in result.stderr


def requested_entry(state: Path) -> str:
    """A journal holding one entry requested of a daemon (nothing sent: drop asks the venue)."""
    spec = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, None, Decimal(90000), None)
    pid = make_pending_id(1_764_000_000_000, 1)
    p, _ = request_entry(pid, spec, 1_764_000_000_000, 5000)
    with PendingEntryStore(state) as store:
        store.save(pid, encode(p))
    return pid


def test_an_unreachable_venue_url_on_every_command(tmp_path: Path) -> None:
    """venue.rest_url where nothing listens: each command that needs the venue exits 1 with
    one line naming the URL; `pending drop` refuses, saying it could not check; the paper
    commands open no venue of their own in its place."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    paper_port = free_port()
    (tmp_path / "bot.toml").write_text(
        f"[venue]\nrest_url = '{url}'\nws_url = 'ws://127.0.0.1:{port}/private'\n[paper]\nport = {paper_port}\n"
    )
    pid = requested_entry(tmp_path / "state")
    for args in [COMMANDS[0], ENTER, ("recover", "--yes"), ("recover", "--dry-run")]:
        line = one_error_line(bot(tmp_path, *args))
        assert f"cannot reach the paper venue at {url}" in line, args
    line = one_error_line(bot(tmp_path, "pending", "drop", pid, "--yes"))
    assert "cannot check the exchange" in line
    assert "refusing to drop" in line
    for args in [("paper", "orders"), ("paper", "price", "BTCUSDT", "97000"), ("paper", "faults")]:
        line = one_error_line(bot(tmp_path, *args))
        assert f"no paper venue answers on 127.0.0.1:{paper_port} and venue.rest_url is {url}" in line, args
    assert not (tmp_path / "state" / "paper").exists()  # no venue was opened in its place


def test_a_state_dir_readable_by_others_is_made_0700_and_said_once(tmp_path: Path) -> None:
    """./state at 0755 (an older bot, a manual mkdir): the next command makes it 0700 and says
    so on stderr; the one after says nothing."""
    (tmp_path / "state").mkdir(mode=0o755)
    (tmp_path / "state").chmod(0o755)
    first = bot(tmp_path, "pending", "list")
    second = bot(tmp_path, "pending", "list")
    assert first.returncode == second.returncode == 0
    assert "state was 0755" in first.stderr
    assert "made it 0700" in first.stderr
    assert second.stderr == ""
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_shared_directory_is_never_chmodded(tmp_path: Path) -> None:
    """A sticky, world-writable dir (like /tmp) as state dir: refused in one line, mode kept."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    line = one_error_line(bot(tmp_path, "--state-dir", "shared", "pending", "list"))
    assert "is shared" in line
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_directories_the_bot_creates_are_0700(tmp_path: Path) -> None:
    """A fresh state dir, and the paper venue's inside it, are created 0700."""
    (tmp_path / "bot.toml").write_text(f"[paper]\nport = {free_port()}\n")  # never a venue on 18765
    result = bot(tmp_path, "paper", "price", "BTCUSDT", "97000")
    assert result.returncode == 0, result
    for d in (tmp_path / "state", tmp_path / "state" / "paper"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_an_unforeseen_exception_is_one_line_too() -> None:
    """An exception no command turned into a BotError (a bug) is still one line, exit 1;
    BOT_TRACEBACK=1 lets the traceback through for whoever debugs it."""
    app = typer.Typer(cls=_Group)

    @app.command()
    def boom() -> None:
        raise KeyError("surprise")

    @app.command()
    def other() -> None: ...

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        ("error: unexpected KeyError: 'surprise' (a bug: run again with BOT_TRACEBACK=1 for the "
        "traceback and report it)")
    ]
    shown = CliRunner(env={TRACEBACK_ENV: "1"}).invoke(app, ["boom"])
    assert isinstance(shown.exception, KeyError)


def test_an_os_error_names_the_path() -> None:
    """An OSError nobody foresaw names its path and what to check, on one line."""
    line = unexpected(NotADirectoryError(20, "Not a directory", "state/paper/server.json"))
    assert line.startswith("Not a directory (state/paper/server.json): check that path")
