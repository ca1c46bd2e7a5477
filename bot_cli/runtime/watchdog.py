"""systemd's notify protocol, meaning something: READY after the first reconcile, WATCHDOG only
while the daemon protects.

Under ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC`` with ``WatchdogSec=``).
`bot run` then says ``READY=1`` only once its start-up reconcile has classified every entry, and
``WATCHDOG=1`` every half watchdog interval only while ``health`` holds:

- the engine runs (its journal can be written) and its timers turn (every deadline fires: an
  entry waiting on one is not left waiting);
- the exchange is heard: the user stream is connected and hears the bot's own orders, or the
  REST fallback reconciled within ``blind_after_s`` (10 s, or four ping intervals if longer).

A daemon that is alive but wedged or blind stops the pings, and systemd restarts it. ``STATUS=``
carries one line with the counts (or why it is unhealthy); ``STOPPING=1`` is said on a clean
stop. Outside systemd (no ``NOTIFY_SOCKET``) nothing is sent and nothing changes. The protocol is
one datagram per message on a Unix socket (an abstract one when the path starts with ``@``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from bot_cli.runtime.driver import Daemon


log = logging.getLogger("bot_cli.watchdog")
NO_WATCHDOG_STATUS_S = 5.0  # without WatchdogSec, STATUS= is still refreshed this often
TIMERS_STALE_S = 5.0  # the timers not turning this long: wedged
MIN_BLIND_S = 10.0  # stream down or deaf, and no REST reconcile this long (at least): blind
BLIND_PINGS = 4  # ... or this many ping intervals, whichever is longer


class Notifier:
    """Datagrams to the notify socket; a failed send is logged once, never raised."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._failing = False

    def send(self, *lines: str) -> None:
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
            self._failing = False
        except OSError as err:
            if not self._failing:
                log.warning("systemd notify socket: %s", err)
            self._failing = True

    def close(self) -> None:
        self._sock.close()


def from_env(env: Mapping[str, str] | None = None) -> tuple[Notifier | None, float | None]:
    """The notifier (None outside systemd) and the ping interval in seconds (None: no watchdog)."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return None, None
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return Notifier(address), None
    return Notifier(address), int(usec) / 1_000_000 / 2


def health(daemon: Daemon, now_ms: int, *, timers_stale_s: float = TIMERS_STALE_S,
           blind_after_s: float = MIN_BLIND_S) -> str | None:  # fmt: skip
    """Why the daemon is not protecting right now, or None when it is."""
    engine = daemon.engine
    if engine.fatal is not None:
        return f"the engine stopped: {type(engine.fatal).__name__}"
    stalled = (now_ms - daemon.timers_turned_at) / 1000
    if stalled > timers_stale_s:
        return f"the timers have not turned for {stalled:.0f}s"
    if daemon.stream.connected.is_set() and not daemon.ears.deaf:
        return None
    last = int(daemon.heartbeat.last_reconcile.get("at") or 0)
    blind = (now_ms - max(last, daemon.heartbeat.stream_since)) / 1000
    if blind > blind_after_s:
        deaf = "deaf" if daemon.stream.connected.is_set() else "down"
        return f"the user stream is {deaf} and no REST reconcile succeeded for {blind:.0f}s"
    return None


def status_line(daemon: Daemon) -> str:
    from bot_cli.core.summary import by_status, exposure

    entries = list(daemon.engine.state.values())
    bare = [x for x in exposure(entries) if not x.covered]
    counts = ", ".join(f"{n} {s}" for s, n in by_status(entries).items()) or "no entries"
    stream = "stream up" if daemon.stream.connected.is_set() and not daemon.ears.deaf else "stream NOT heard"
    return f"{counts}; {len(bare)} position(s) without a full stop; {stream}"


async def run(
    daemon: Daemon, notifier: Notifier, interval_s: float | None, *, timers_stale_s: float = TIMERS_STALE_S,
    blind_after_s: float | None = None,
) -> None:
    """READY=1 after the first reconcile, then WATCHDOG=1 (while healthy) and STATUS= every beat."""
    if blind_after_s is None:
        blind_after_s = max(MIN_BLIND_S, BLIND_PINGS * (interval_s or 0))
    await daemon.reconciled.wait()
    notifier.send("READY=1", f"STATUS={status_line(daemon)}")
    log.info("told systemd: ready (first reconcile done)", extra={"event": "sd_ready"})
    told = None
    while True:
        await asyncio.sleep(interval_s or NO_WATCHDOG_STATUS_S)
        why = health(daemon, daemon.engine.clock.now_ms(), timers_stale_s=timers_stale_s, blind_after_s=blind_after_s)
        if why is None:
            notifier.send(*(["WATCHDOG=1"] if interval_s else []), f"STATUS={status_line(daemon)}")
        else:
            notifier.send(f"STATUS=UNHEALTHY: {why}")
        if why != told:
            if why is not None:
                log.error("not protecting: %s; the systemd watchdog is no longer fed", why,
                          extra={"event": "sd_unhealthy"})  # fmt: skip
            elif told is not None:
                log.warning("healthy again: the systemd watchdog is fed", extra={"event": "sd_healthy"})
            told = why
