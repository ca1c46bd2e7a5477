"""The command-line conventions: --version, -h, completion, choices and examples in help,
plain text off a terminal, NO_COLOR, structured JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.main import get_command

from bot_cli import __version__
from bot_cli.cli import app
from bot_cli.cli.views import JsonFormatter, LogView, fields
from bot_cli.core.model import ClientId, OrderReport, OrderStatus
from bot_cli.exchange.wire import OrderUpdate


BOX = set("╭╮╰╯│─")


def bot(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR") and not k.startswith("BOT_")}
    return subprocess.run([sys.executable, "-m", "bot_cli", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def leaf_commands() -> list[tuple[str, ...]]:
    """Every command a person can run, as its words after `bot`."""
    found: list[tuple[str, ...]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if not subs:
            found.append(path)
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(get_command(app), ())
    return found


def test_version() -> None:
    """`bot --version` prints the package's version and exits 0."""
    result = bot("--version")
    assert (result.returncode, result.stdout) == (0, f"bot {__version__}\n")


@pytest.mark.parametrize("words", [(), ("pending", "list"), ("run",), ("config", "check")], ids=str)
def test_h_is_help(words: tuple[str, ...]) -> None:
    """-h prints what --help prints, on the root and on subcommands."""
    short, long = bot(*words, "-h"), bot(*words, "--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout
    assert "Usage: bot" in short.stdout


def test_completion_script_and_completion() -> None:
    """--show-completion prints a bash script; the shell's request completes a command name."""
    script = Path(sys.executable).parent / "bot"
    if not script.exists():
        pytest.skip("the `bot` console script is not installed next to this python")
    shown = subprocess.run(
        [str(script), "--show-completion", "bash"], capture_output=True, text=True, timeout=30, check=False
    )
    assert shown.returncode == 0
    assert "_BOT_COMPLETE=complete_bash" in shown.stdout
    env = {**os.environ, "_BOT_COMPLETE": "complete_bash", "COMP_WORDS": "bot pen", "COMP_CWORD": "1"}
    asked = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert asked.stdout.split() == ["pending"]


@pytest.mark.parametrize(
    ("words", "choices"),
    [(("run",), "plain|json"), (("init",), "paper|binance"), (("init",), "auto|one-way|hedge"),
     (("init",), "close|alert")],
    ids=["run --log-format", "init --venue", "init --position-mode", "init --on-immediate-trigger"],
)  # fmt: skip
def test_fixed_choices_are_listed_in_help(words: tuple[str, ...], choices: str) -> None:
    """An option that takes one of a fixed set lists the set in --help."""
    assert choices in bot(*words, "--help").stdout


@pytest.mark.parametrize("words", leaf_commands(), ids=" ".join)
def test_every_command_shows_an_example(words: tuple[str, ...]) -> None:
    """Each command's help holds at least one example of it."""
    text = bot(*words, "--help").stdout
    assert "Example" in text
    assert f"bot {' '.join(words)}" in text


def test_usage_errors_are_plain_text_off_a_terminal() -> None:
    """A usage error read by a program (stderr not a TTY) has no box drawing: exit 2, plain lines."""
    result = bot("run", "--log-format", "xml")
    assert result.returncode == 2
    assert not BOX & set(result.stderr), result.stderr
    assert "Invalid value for '--log-format': 'xml' is not one of 'plain', 'json'" in result.stderr


def test_help_is_plain_text_off_a_terminal() -> None:
    """Help piped to a file or a pager has no box drawing and no escape sequence."""
    text = bot("run", "--help").stdout
    assert not BOX & set(text)
    assert "\x1b" not in text


def test_force_color_draws_styles_and_no_color_removes_them(tmp_path: Path) -> None:
    """With FORCE_COLOR (a terminal, as far as rich knows) help and errors are styled; adding
    NO_COLOR leaves no ANSI escape at all: no colour, no bold, no italic."""
    (tmp_path / "state").write_text("")  # an error line to draw
    cases = [("--help",), ("run", "--bogus"), ("pending", "list")]
    styled = [bot(*args, cwd=tmp_path, FORCE_COLOR="1") for args in cases]
    plain = [bot(*args, cwd=tmp_path, FORCE_COLOR="1", NO_COLOR="1") for args in cases]
    assert all("\x1b[" in r.stdout + r.stderr for r in styled)
    for r in plain:
        assert "\x1b" not in r.stdout + r.stderr, r
    assert plain[2].stderr.startswith("error: state directory state exists but is not a directory")


# --- JSON log lines ---------------------------------------------------------------------------


def record(msg: str, **extra: object) -> logging.LogRecord:
    return logging.getLogger("bot_cli.engine").makeRecord("bot_cli.engine", logging.INFO, __file__, 1, msg, (), None,
                                                         extra=extra)  # fmt: skip


def test_json_log_lines_carry_the_extra_fields() -> None:
    """A log call's extra= fields become keys of its JSON line, enums by value."""
    fields = {"entry": "bc0x", "symbol": "BTCUSDT", "state": OrderStatus.FILLED, "client_id": "bc0x-e",
              "event": "EntryFilled"}  # fmt: skip
    line = JsonFormatter().format(record("bc0x OPEN -> PROTECTING", **fields))
    doc = json.loads(line)
    assert doc["msg"] == "bc0x OPEN -> PROTECTING"
    assert doc["level"] == "INFO"
    assert doc["logger"] == "bot_cli.engine"
    assert {k: doc[k] for k in ("entry", "symbol", "state", "client_id", "event")} == {
        "entry": "bc0x", "symbol": "BTCUSDT", "state": "FILLED", "client_id": "bc0x-e", "event": "EntryFilled",
    }  # fmt: skip


def test_json_log_lines_without_extras_have_only_the_basics() -> None:
    """A plain log call gives ts, level, logger and msg, nothing invented."""
    doc = json.loads(JsonFormatter().format(record("hello")))
    assert set(doc) == {"ts", "level", "logger", "msg"}


def test_the_daemon_log_gives_stream_messages_their_fields() -> None:
    """An order update logged by `bot run --log-format json` names entry, symbol, state,
    client id and event."""
    report = OrderReport("BTCUSDT", ClientId("bc0mi3k2x7a1b2c-e"), 7, OrderStatus.FILLED, Decimal("0.01"),
                         Decimal(97000), Decimal("0.01"))  # fmt: skip
    update = OrderUpdate(1, report, Decimal("0.01"), Decimal(97000), "TRADE")
    root = logging.getLogger("bot_cli")
    saved = root.handlers[:], root.level
    try:
        view = LogView("json")
        out = io.StringIO()
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        view.message(update)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    doc = json.loads(out.getvalue())
    assert doc["event"] == "TRADE"
    assert doc["client_id"] == "bc0mi3k2x7a1b2c-e"
    assert (doc["symbol"], doc["state"]) == ("BTCUSDT", "FILLED")
    assert doc["entry"] == fields(update)["entry"] == "bc0mi3k2x7a1b2c"


def test_daemon_notes_can_carry_fields() -> None:
    """view.note(text, entry=..., event=...) puts the fields into the JSON line."""
    root = logging.getLogger("bot_cli")
    saved = root.handlers[:], root.level
    try:
        view = LogView("json")
        out = io.StringIO()
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        view.note("claiming requested entry bc0x", entry="bc0x", event="claimed")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    doc = json.loads(out.getvalue())
    assert (doc["msg"], doc["entry"], doc["event"]) == ("claiming requested entry bc0x", "bc0x", "claimed")
