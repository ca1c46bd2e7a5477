"""The request weight and wall time of a start, with 1, 5 and 50 symbols in the journal.

    python -m bench.start [--symbols 1 5 50]

A start is what `bot run` does before it follows the stream: GET /fapi/v1/time,
GET /fapi/v1/exchangeInfo (the rate limits), the reconciliation (open books, lookups,
positions), POST /fapi/v1/listenKey. The journal holds one resting entry per symbol, one
of them filled and protected. The exchange is an in-process stand-in answering in Binance's
shapes, so the wall time is ours (journal load, planning, signing, parsing), not a network's;
`position_mode = "auto"` would add GET /fapi/v1/positionSide/dual (30).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

from bot_cli.core.model import EntrySpec, OrderType, Side
from bot_cli.exchange.rest import BinanceRest
from bot_cli.runtime import engine as engine_module
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore
from tests.fakes import FakeClock, FakeExchange


LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}]


def seeded(path: Path, symbols: int) -> FakeExchange:
    clock = FakeClock()
    venue = FakeExchange(clock)
    engine = ExecutionEngine(PendingEntryStore(path), venue, clock=clock)
    for n in range(symbols):
        spec = EntrySpec(f"S{n:02d}USDT", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(100), Decimal(90), Decimal(110))
        asyncio.run(engine.execute_entry(spec))
    first = next(iter(venue.orders))
    venue.fill(first, Decimal(1))
    asyncio.run(engine.on_order_report(venue.orders[first]))
    engine.store.close()
    return venue


def stand_in(venue: FakeExchange) -> httpx.MockTransport:
    def order(o):
        return {"symbol": o.symbol, "clientOrderId": o.client_id, "orderId": o.order_id, "status": o.status.value,
                "executedQty": str(o.filled_qty), "origQty": str(o.quantity), "avgPrice": "0"}

    def algo(a):
        return {"symbol": a.symbol, "clientAlgoId": a.client_id, "algoId": a.algo_id, "algoStatus": a.status.value,
                "triggerPrice": str(a.trigger_price), "quantity": str(a.quantity), "actualOrderId": ""}

    def handle(request: httpx.Request) -> httpx.Response:
        q = dict(parse_qsl(request.url.query.decode()))
        symbol, path = q.get("symbol"), request.url.path
        if path == "/fapi/v1/time":
            return httpx.Response(200, json={"serverTime": int(time.time() * 1000)})
        if path == "/fapi/v1/exchangeInfo":
            return httpx.Response(200, json={"rateLimits": LIMITS, "symbols": []})
        if path == "/fapi/v1/openOrders":
            live = [o for o in venue.orders.values() if o.status.value in ("NEW", "PARTIALLY_FILLED")]
            return httpx.Response(200, json=[order(o) for o in live if symbol in (None, o.symbol)])
        if path == "/fapi/v1/openAlgoOrders":
            live = [a.report for a in venue.algos.values() if a.report.status.value == "NEW"]
            return httpx.Response(200, json=[algo(a) for a in live if symbol in (None, a.symbol)])
        if path == "/fapi/v3/positionRisk":
            rows = [{"symbol": s, "positionSide": ps.value, "positionAmt": str(v)} for (s, ps), v in venue.position.items()]
            return httpx.Response(200, json=rows)
        if path == "/fapi/v1/listenKey":
            return httpx.Response(200, json={"listenKey": "k"})
        return httpx.Response(400, json={"code": -1121, "msg": f"not in the stand-in: {path}"})

    return httpx.MockTransport(handle)


async def start(path: Path, venue: FakeExchange, per_symbol: bool) -> tuple[int, float, int]:
    client = httpx.AsyncClient(transport=stand_in(venue))
    rest = BinanceRest("https://fapi.test", "k" * 64, "s" * 64, client=client)
    # the start before this change read both books unfiltered, every time (and no exchangeInfo)
    engine_module.BOOK_WEIGHT_ALL_SYMBOLS = 40 if per_symbol else 0
    began = time.perf_counter()
    await rest.sync_time()
    if per_symbol:
        await rest.load_limits()
    engine = ExecutionEngine(PendingEntryStore(path), rest)
    await engine.recover()
    await rest.new_listen_key()
    wall = time.perf_counter() - began
    engine.store.close()
    await client.aclose()
    return rest.weight_spent, wall, rest.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="*", default=[1, 5, 50])
    args = parser.parse_args()
    for n in args.symbols:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp)
            venue = seeded(path, n)
            before = asyncio.run(start(path, venue, per_symbol=False))
            after = asyncio.run(start(path, venue, per_symbol=True))
        print(json.dumps({"symbols": n, "weight": after[0], "wall_ms": round(after[1] * 1000, 1), "calls": after[2],
                          "before": {"weight": before[0], "wall_ms": round(before[1] * 1000, 1), "calls": before[2]}}))


if __name__ == "__main__":
    main()
