"""What every command shares: the state dir and the config, resolved once.

``check_state_dir`` runs before every command: a state dir that cannot work (a file, not
writable, not creatable) is one line and exit 1 before anything starts, instead of a
traceback from whichever module touches it first; one readable by others is made 0700,
and said once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot_cli.errors import BotError


if TYPE_CHECKING:
    from bot_cli.config import Config

_FIX = "fix it or pass another --state-dir (or BOT_STATE_DIR)"


@dataclass
class AppContext:
    state_dir: Path
    config_path: Path | None
    _config: Config | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)  # said once, in the command's own output

    @property
    def config(self) -> Config:
        """The config, read on first use (ConfigError if it is missing or wrong)."""
        if self._config is None:
            from bot_cli.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def check_config(self) -> None:
        """Read the config now, so an error in it stops a command before anything starts."""
        _ = self.config


def check_state_dir(path: Path) -> list[str]:
    """Raise BotError if ``path`` cannot serve as the state dir; return what was tightened."""
    if (problem := state_dir_problem(path)) is not None:
        raise BotError(problem)
    return [note for d in (path, path / "paper") if (note := _tighten(d))]


def state_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as the state dir, in one line; None if it can (a missing
    one can, if it can be created: each writer creates it 0700)."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return _not_creatable(path)
    except OSError as err:  # e.g. a component of the path is a file
        return f"state directory {path} cannot be used ({err.strerror}): {_FIX}"
    if not os.path.isdir(path):
        return f"state directory {path} exists but is not a directory: {_FIX}"
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return f"state directory {path} is not writable by this user: {_FIX}"
    return None


def _not_creatable(path: Path) -> str | None:
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not os.path.isdir(parent):
        return f"state directory {path} cannot be created: {parent} is not a directory; {_FIX}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"state directory {path} cannot be created: {parent} is not writable; {_FIX}"
    return None


def _tighten(path: Path) -> str | None:
    from bot_cli.store import StateDirError
    from bot_cli.store.atomic import tighten_dir

    if not os.path.isdir(path):
        return None
    try:
        old = tighten_dir(path)
    except StateDirError as err:
        raise BotError(str(err)) from None
    if old is None:
        return None
    return f"{path} was {old:04o}, readable by others: made it 0700 (the journal is yours alone)"


# Commands that must work whatever the state dir is like: they report on it, or never use it.
_NO_STATE_CHECK = frozenset({"init", "config"})


def start(ctx: typer.Context, state_dir: Path, config: Path | None) -> AppContext:
    """The context of one invocation; the state dir checked first (see ``check_state_dir``)."""
    obj = AppContext(state_dir, config)
    if ctx.invoked_subcommand in _NO_STATE_CHECK:
        return obj
    obj.notes = check_state_dir(state_dir)
    if ctx.invoked_subcommand == "paper":  # the venue's own mkdir would create it with the umask's mode
        _ensure(state_dir)
    if ctx.invoked_subcommand != "run":  # `bot run` logs them, in its log format
        from bot_cli.cli.render import warn

        for note in obj.notes:
            warn(note)
    return obj


def _ensure(path: Path) -> None:
    from bot_cli.store import StateDirError
    from bot_cli.store.atomic import ensure_dir

    try:
        ensure_dir(path)
    except StateDirError as err:
        raise BotError(str(err)) from None


def show_version(value: bool) -> None:
    if value:
        from bot_cli import __version__

        typer.echo(f"bot {__version__}")
        raise typer.Exit()
