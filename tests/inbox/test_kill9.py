"""One key, one entry order, with real processes: the paper venue, `bot run`, and the inbox.

The inbox holding the state dir (as `bot run` will) is SIGKILLed after its 202 and before
anything is sent; `bot run` started next sends the entry; the alert posted again, to an inbox
beside that daemon, is 409 naming the same entry. Concurrent posts of one key and a post whose
answer was lost give one entry each. The venue's books say what was sent; every e2e invariant
holds at the end.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_cli.inbox import SECRET_ENV
from tests.e2e.harness import Cluster, Proc, cluster_at, free_port, wait_for
from tests.inbox import SECRET, SIGNAL, body_of, signed


pytestmark = pytest.mark.e2e
QTY = "0.010"
REPO = Path(__file__).resolve().parents[2]  # where `python -m tests.inbox.serve` is found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, stacking=True) as c:  # entries side by side on one position
        c.env[SECRET_ENV] = SECRET
        c.set_price("BTCUSDT", "97000")
        yield c


def start_inbox(c: Cluster, mode: str) -> tuple[Proc, str]:
    """`python -m tests.inbox.serve` in its own process group; its URL once it listens."""
    port = free_port()
    n = len(c.others) + 1
    argv = [sys.executable, "-m", "tests.inbox.serve", str(port), mode]
    proc = Proc(f"inbox-{n}", argv, c.env, REPO, c.root / f"inbox-{n}.log")
    c.others.append(proc)

    def ready() -> bool:
        assert proc.alive, proc.tail()
        return "ready" in proc.log()

    wait_for(ready, f"the inbox ({mode}) to listen on {port}")
    return proc, f"http://127.0.0.1:{port}/signal"


def post(url: str, signal: dict[str, Any]) -> httpx.Response:
    body = body_of(signal)
    return httpx.post(url, content=body, headers=signed(body), timeout=10)


def entry_orders(c: Cluster) -> list[str]:
    """Every entry order the venue ever accepted (client ids ending in -e)."""
    state = c.state()
    ids = [o["clientOrderId"] for o in [*state["openOrders"], *state["recentOrders"]]]
    return sorted(i for i in ids if i.endswith("-e"))


# A REQUESTED entry waiting when `bot run` starts is claimed once: the start-up reconcile and the
# journal watcher both see it, and the claim is decided under the engine's lock.
def test_an_inbox_killed_between_the_fsync_and_the_send_gives_one_entry_order(
    cluster: Cluster,
) -> None:
    # Arrange: the inbox holds the state dir and acknowledges; nothing is sent yet
    holder, url = start_inbox(cluster, "hold")
    first = post(url, SIGNAL)
    assert first.status_code == 202, first.text
    pid = first.json()["id"]
    assert cluster.status_of(pid) == "REQUESTED"
    assert entry_orders(cluster) == []

    # Act: SIGKILL it; `bot run` starts; the alert is posted again beside it
    holder.kill9()
    cluster.start_daemon()
    wait_for(lambda: cluster.entry_order(pid), f"the daemon to send {pid}")
    _, beside = start_inbox(cluster, "beside")
    again = post(beside, SIGNAL)

    # Assert
    assert (again.status_code, again.json()["id"]) == (409, pid)
    cluster.wait_protected(pid, QTY)
    assert entry_orders(cluster) == [f"{pid}-e"]
    cluster.created[pid] = first.json()
    cluster.assert_invariants(symbols=["BTCUSDT"])


def test_concurrent_posts_and_a_lost_answer_give_one_entry_each(cluster: Cluster) -> None:
    """Beside a running daemon: eight posts of one key at once -> one 202; a post whose answer
    is lost (the client hangs up) and its retry -> one entry."""
    cluster.start_daemon()
    _, url = start_inbox(cluster, "beside")

    with ThreadPoolExecutor(8) as pool:
        storm = list(pool.map(lambda _: post(url, {**SIGNAL, "key": "storm"}), range(8)))
    lost_answer(url, {**SIGNAL, "key": "lost"})
    retry = post(url, {**SIGNAL, "key": "lost"})

    assert sorted(a.status_code for a in storm) == [202] + [409] * 7
    (pid,) = {a.json()["id"] for a in storm}
    assert retry.status_code in (202, 409)
    lost = retry.json()["id"]
    for each in (pid, lost):
        cluster.wait_protected(each, QTY)
        cluster.created[each] = {}
    assert entry_orders(cluster) == sorted([f"{pid}-e", f"{lost}-e"])
    cluster.assert_invariants(symbols=["BTCUSDT"])


def lost_answer(url: str, signal: dict[str, Any]) -> None:
    """Send the whole request, then hang up before the answer comes back."""
    body = body_of(signal)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    head = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items())
    request = (f"POST /signal HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body  # fmt: skip
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)

