"""Errors an operator sees: one sentence naming what was wrong and what to do.

BotError            exit 1; the message is printed as is, never with a traceback
 +-- ConfigError    a config file or key is wrong (names the key and the file)
 +-- UsageError     the command line asked for something impossible

Anything else that escapes a command is said in one line by ``unexpected()``; the
traceback is printed only when BOT_TRACEBACK=1 (never with locals: they may hold keys).
"""

from __future__ import annotations


TRACEBACK_ENV = "BOT_TRACEBACK"


class BotError(Exception):
    exit_code = 1


class ConfigError(BotError):
    pass


class UsageError(BotError):
    pass


def one_line(text: str) -> str:
    """The message on a single line: the rule is one line on stderr, whatever the text."""
    return " ".join(text.split())


def unexpected(err: BaseException) -> str:
    """One line for an error no command turned into a BotError."""
    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        return one_line(
            f"{err.strerror}{where}: check that path and its permissions "
            f"(set {TRACEBACK_ENV}=1 to see where this came from)"
        )
    text = str(err) or "no message"
    return one_line(
        f"unexpected {type(err).__name__}: {text} (a bug: run again with {TRACEBACK_ENV}=1 "
        "for the traceback and report it)"
    )
