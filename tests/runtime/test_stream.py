"""The daemon against a local websockets server that drops mid-fill and expires its listenKey.

The fill whose event is lost with the connection is still protected, exactly once:
every (re)connect is a gap answered by a REST reconcile.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, OrderReport, OrderType, Side
from bot_cli.exchange.user_stream import UserStream
from bot_cli.runtime.driver import Daemon
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.runtime.heartbeat import read
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeExchange
from tests.invariants import check_invariants


FIXTURES = Path(__file__).parent.parent / "fixtures" / "binance"
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("1.0"), OrderType.LIMIT, Decimal(100), Decimal(95), Decimal(110))


def order_update(report: OrderReport, side: Side) -> str:
    """An ORDER_TRADE_UPDATE in Binance's shape for one of our orders."""
    msg = json.loads((FIXTURES / "order_trade_update_filled.json").read_text())
    o = msg["o"]
    o.update(s=report.symbol, c=report.client_id, S=side.value, q=str(report.quantity), i=report.order_id,
             X=report.status.value, x="TRADE", z=str(report.filled_qty), l=str(report.filled_qty),
             ap=str(report.avg_price or 0))
    return json.dumps(msg)


class Keys:
    def __init__(self) -> None:
        self.created: list[str] = []

    async def new_listen_key(self) -> str:
        self.created.append(f"key{len(self.created) + 1}")
        return self.created[-1]

    async def keepalive_listen_key(self) -> None:
        return None


class Server:
    """Each connection gets its own outbox; the test decides what it sends and when it drops."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, asyncio.Queue[str | None]]] = []
        self.arrived = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.connections.append((ws.request.path if ws.request else "", outbox))
        self.arrived.set()
        while (item := await outbox.get()) is not None:
            await ws.send(item)
        await ws.close()

    async def send(self, text: str | None) -> None:
        await self.connections[-1][1].put(text)


class Quiet:
    def recovered(self, recovery: Any, why: str) -> None:
        self.last = why

    def message(self, message: Any) -> None:
        return None

    def note(self, text: str, **fields: str) -> None:
        return None


async def until(condition: Callable[[], bool], what: str, limit_s: float = 5.0) -> None:
    """Wait for a condition the system must reach; fail with what was awaited."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def scenario(tmp: Path) -> tuple[FakeExchange, PendingEntryStore, Keys, Server, set[str]]:
    venue, keys, server = FakeExchange(), Keys(), Server()
    store = PendingEntryStore(tmp)
    engine = ExecutionEngine(store, venue)
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        factory: Callable[..., UserStream] = lambda **kw: UserStream(  # noqa: E731
            keys, f"ws://127.0.0.1:{port}/private", delays=lambda: iter([0.01] * 100), **kw)
        daemon = Daemon(engine, factory, Quiet())
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await until(lambda: len(server.connections) == 1 and daemon.stream.connected.is_set(), "first connection")
            p = await engine.execute_entry(SPEC)
            cid = client_id(p.pending_id, Leg.ENTRY)

            await server.send(order_update(venue.fill(cid, Decimal("0.4")), Side.BUY))
            await until(lambda: len(venue.live_protections(p.pending_id, Leg.SL)) == 1, "the partial fill protected")

            venue.fill(cid, Decimal("1.0"))  # the rest fills, and the connection drops before its event
            await server.send(None)
            await until(lambda: len(server.connections) == 2, "a reconnect")
            await until(lambda: [a.quantity for a in venue.live_protections(p.pending_id, Leg.SL)] == [Decimal("1.0")],
                        "the lost fill protected after the gap")

            await server.send(json.dumps({"e": "listenKeyExpired", "E": "1736996475556", "listenKey": "key2"}))
            await until(lambda: len(server.connections) == 3, "a new connection after listenKeyExpired")
            await until(
                lambda: getattr(daemon.view, "last", "") == "stream reconnected" and not engine.timers, "settled"
            )
            await until(
                lambda: (read(tmp) or {}).get("stream", {}).get("connected") is True, "a heartbeat with the stream up"
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            for _, outbox in server.connections:
                outbox.put_nowait(None)  # let every handler end so the server can close

    assert read(tmp) is None, "a clean stop removes the heartbeat"
    return venue, store, keys, server, {p.pending_id}


def test_a_fill_lost_with_the_connection_is_protected_exactly_once(tmp_path: Path) -> None:
    """Drop mid-fill, then expire the listenKey: one SL and one TP for the full fill, each sent once."""
    venue, store, keys, server, created = asyncio.run(scenario(tmp_path))
    assert check_invariants(venue, store, created, legs=2) == []
    assert venue.calls["place_protection"] == 4  # gen 1 (0.4) and gen 2 (1.0), SL and TP, no resend
    assert keys.created == ["key1", "key2", "key3"]
    assert [path for path, _ in server.connections] == ["/private/ws/key1", "/private/ws/key2", "/private/ws/key3"]
    resting = {pid: r["status"] for pid, r in store.load_all().items()}
    assert resting == {next(iter(created)): "PROTECTED"}  # kept, with its legs, until it is flat
    assert store.archived() == []
