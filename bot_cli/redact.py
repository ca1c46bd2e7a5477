"""A listenKey wherever a log line or the live view would print it: whoever has the key can read
the account's user data stream for an hour, so only its first and last four characters show."""

from __future__ import annotations

import logging
import re


_IN_PATH = re.compile(r"(/ws/)([A-Za-z0-9]{12,})")  # the stream's route: /ws/<listenKey>
_SHOWN = 4


def listen_key(key: str) -> str:
    """``abcd…wxyz``: enough to tell two keys apart, not enough to use one."""
    return f"{key[:_SHOWN]}…{key[-_SHOWN:]}" if len(key) > 2 * _SHOWN else "…"


def redact_keys(text: str) -> str:
    """``text`` with every listenKey in a stream path cut to its ends."""
    return _IN_PATH.sub(lambda m: m.group(1) + listen_key(m.group(2)), text)


class RedactKeys(logging.Filter):
    """A handler filter: a record whose message holds a listenKey is rewritten with it cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cut = redact_keys(message)
        if cut != message:
            record.msg, record.args = cut, None
        return True
