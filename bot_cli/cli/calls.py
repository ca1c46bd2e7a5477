"""Commands as the exact exchange calls (or local actions) they stand for, one line each.

An exchange command is described by the very ``Request`` BinanceRest sends for it
(``exchange.requests.for_command``): what is shown is what is sent. SIGNED requests
also carry recvWindow, timestamp and signature, added when sent.
"""

from __future__ import annotations

import time

from bot_cli.core import commands as cm
from bot_cli.exchange.requests import for_command
from bot_cli.venue import Rejected


def describe(cmd: cm.Command, hedge_mode: bool = False) -> str:
    """The request ``cmd`` is sent as (in ``hedge_mode`` or one-way mode), or its local action."""
    if isinstance(cmd, cm.PersistPending):
        return f"journal: save {cmd.pending.status.value}"
    if isinstance(cmd, cm.ArchivePending):
        return f"archive: {cmd.reason}"
    if isinstance(cmd, cm.ScheduleCheck):
        return f"check again at {time.strftime('%H:%M:%S', time.localtime(cmd.at / 1000))}"
    if isinstance(cmd, cm.Alert):
        return f"ALERT: {cmd.message}"
    if isinstance(cmd, cm.Overdrawn):
        return f"shares: {cmd.quantity} closed by {cmd.what} {cmd.client_id} charged to the entries it came from"
    try:
        request = for_command(cmd, hedge_mode)
    except Rejected as err:  # the send would refuse it too: a line of the plan, not a crash
        return f"not sendable: {err.message}"
    return request.text if request is not None else f"{type(cmd).__name__}: no request"
