"""Fill event received -> protective order request sent: p50 / p99 over N fills.

    python -m bench.latency [--fills 1000] [--dir DIR]

The path measured is the daemon's own: the raw ORDER_TRADE_UPDATE text is parsed,
the engine steps, the journal record is fsync'd, and the real Binance REST client
signs and hands the POST /fapi/v1/algoOrder to the transport. The stand-in is an
in-process httpx transport that stamps the time the request reaches it, so the
figure is our latency, not a network's. (bench.paper measures the same over loopback.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

from bot_cli.core.ids import client_id
from bot_cli.core.model import EntrySpec, Leg, OrderType, Side
from bot_cli.exchange.rest import BinanceRest
from bot_cli.exchange.wire import OrderUpdate, parse_stream_message
from bot_cli.runtime.engine import ExecutionEngine
from bot_cli.state_store import PendingEntryStore


FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "binance"
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal("7100"), Decimal("7000"), Decimal("7300"))


class StandIn:
    """Answers like Binance and stamps when the first algo order of each entry arrives."""

    def __init__(self) -> None:
        self.order = json.loads((FIXTURES / "new_order_response.json").read_text())
        self.algo = json.loads((FIXTURES / "algo_order_response.json").read_text())
        self.arrived: dict[str, float] = {}
        self.ids = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = time.perf_counter()
        params = dict(parse_qsl(request.url.query.decode()))
        self.ids += 1
        if request.url.path == "/fapi/v1/algoOrder":
            pid = params["clientAlgoId"].rsplit("-", 1)[0]
            self.arrived.setdefault(pid, now)
            body = {**self.algo, "clientAlgoId": params["clientAlgoId"], "algoId": self.ids, "symbol": params["symbol"],
                    "quantity": params["quantity"], "triggerPrice": params["triggerPrice"], "orderType": params["type"]}
            return httpx.Response(200, json=body)
        body = {**self.order, "clientOrderId": params["newClientOrderId"], "orderId": self.ids,
                "origQty": params["quantity"], "side": params["side"], "positionSide": "BOTH", "type": "LIMIT"}
        return httpx.Response(200, json=body)


def fill_event(cid: str, order_id: int) -> str:
    msg = json.loads((FIXTURES / "order_trade_update_filled.json").read_text())
    msg["o"].update(c=cid, i=order_id, q="0.010", z="0.010", l="0.010", X="FILLED", x="TRADE")
    return json.dumps(msg)


async def measure(fills: int, state: Path) -> list[float]:
    stand_in = StandIn()
    client = httpx.AsyncClient(transport=httpx.MockTransport(stand_in))
    rest = BinanceRest("https://stand-in", "key", "secret", client=client)
    engine = ExecutionEngine(PendingEntryStore(state), rest)
    entries = [await engine.execute_entry(SPEC) for _ in range(fills)]
    events = [fill_event(client_id(p.pending_id, Leg.ENTRY), p.order_id or 0) for p in entries]
    received: dict[str, float] = {}
    for p, raw in zip(entries, events, strict=True):
        received[p.pending_id] = time.perf_counter()
        message = parse_stream_message(raw)
        assert isinstance(message, OrderUpdate)
        await engine.on_order_report(message.report)
    await client.aclose()
    return [(stand_in.arrived[pid] - t0) * 1000 for pid, t0 in received.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fills", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temporary state dir goes (its disk is measured)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=".bench-latency-", dir=args.dir))
    try:
        ms = sorted(asyncio.run(measure(args.fills, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    q = statistics.quantiles(ms, n=100)
    print(f"fill event -> protective order request, {len(ms)} fills (journal fsync included)")
    print(f"  p50 {q[49]:.3f} ms   p99 {q[98]:.3f} ms   max {ms[-1]:.3f} ms   (goal p50 <= 1 ms, p99 <= 5 ms)")


if __name__ == "__main__":
    main()
