"""`bot paper ...`: run the simulated exchange and poke at it.

`serve` runs the venue in the foreground. The other commands talk to the running venue's
/paper admin API; when nothing listens on the configured paper.host:paper.port they start the
venue in-process (on an ephemeral port) for their own duration, over the same state directory.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table, warn
from bot_cli.errors import BotError, UsageError

if TYPE_CHECKING:
    import httpx

# The venue's modules (starlette, uvicorn, httpx) load only when a paper command runs:
# every other command starts faster for it.

app = typer.Typer(
    no_args_is_help=True, help="The paper venue: a simulated Binance USD-M exchange on 127.0.0.1."
)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default paper.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default paper.port).")] = None,
) -> None:
    """Run the paper venue in the foreground until Ctrl-C (its state stays in STATE/paper/)."""
    from bot_cli.paper import server
    from bot_cli.paper.service import PAPER_API_KEY, PAPER_API_SECRET

    obj: AppContext = ctx.obj
    cfg = obj.config.paper
    host, port = host or cfg.host, port or cfg.port
    typer.echo(
        f"paper venue on http://{host}:{port} "
        f"(api key {PAPER_API_KEY!r}, secret {PAPER_API_SECRET!r}); "
        f"state in {obj.state_dir / 'paper'}; Ctrl-C stops it"
    )
    server.serve(
        obj.state_dir, host, port, seed=cfg.seed, faults=cfg.faults, volatility=cfg.volatility
    )


@app.command()
def price(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="e.g. BTCUSDT")],
    new_price: Annotated[
        str, typer.Argument(metavar="PRICE", help="The new price; the walk continues from it.")
    ],
) -> None:
    """Move a symbol's price now (resting orders and triggers react on the next 100 ms step)."""
    try:
        value = Decimal(new_price)
    except InvalidOperation:
        raise UsageError(f"PRICE {new_price!r} is not a number: pass e.g. 97000.5") from None
    answer = _admin(
        ctx.obj, "POST", "/paper/price", {"symbol": symbol.upper(), "price": str(value)}
    )
    typer.echo(f"{answer['symbol']} now {answer['price']}")


@app.command()
def orders(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show prices, both order books (regular and algo), positions and the wallet."""
    state = _admin(ctx.obj, "GET", "/paper/state")
    if as_json:
        print_json(state)
        return
    table("prices", ("symbol", "price"), sorted(state["prices"].items()))
    table(
        f"{len(state['openOrders'])} open orders",
        ("id", "client id", "symbol", "side", "type", "price", "qty", "filled", "status"),
        [
            (
                str(o["orderId"]),
                o["clientOrderId"],
                o["symbol"],
                o["side"],
                o["type"],
                o["price"],
                o["origQty"],
                o["executedQty"],
                o["status"],
            )
            for o in state["openOrders"]
        ],
    )
    table(
        f"{len(state['openAlgoOrders'])} open algo orders",
        ("algo id", "client algo id", "symbol", "side", "type", "trigger", "qty", "status"),
        [
            (
                str(a["algoId"]),
                a["clientAlgoId"],
                a["symbol"],
                a["side"],
                a["orderType"],
                a["triggerPrice"],
                "close-all" if a["closePosition"] else a["quantity"],
                a["algoStatus"],
            )
            for a in state["openAlgoOrders"]
        ],
    )
    table(
        f"{len(state['positions'])} positions (wallet {state['balance']} USDT)",
        ("symbol", "side", "amount", "entry", "mark", "unrealized PnL"),
        [
            (
                p["symbol"],
                p["positionSide"],
                p["positionAmt"],
                p["entryPrice"],
                p["markPrice"],
                p["unRealizedProfit"],
            )
            for p in state["positions"]
        ],
    )
    if state["faults"]:
        typer.echo(f"faults on: {', '.join(state['faults'])}")


@app.command()
def faults(
    ctx: typer.Context,
    specs: Annotated[
        list[str] | None, typer.Argument(help="Fault specs, e.g. lost_response:order:once.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Switch every fault off (before adding SPECs).")
    ] = False,
) -> None:
    """Show, add or clear fault switches (syntax: `python -m pydoc bot_cli.paper.faults`)."""
    answer = _admin(ctx.obj, "POST", "/paper/faults", {"add": list(specs or []), "clear": clear})
    for spec in answer["ran"]:
        typer.echo(f"ran {spec}")
    typer.echo(f"faults on: {', '.join(answer['faults'])}" if answer["faults"] else "no faults on")


# --- talking to the venue ---------------------------------------------------------------------


def _admin(obj: AppContext, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the admin API of the running venue, or of one started here for this command."""
    import asyncio

    from bot_cli.paper import server

    cfg = obj.config.paper
    if server.is_listening(cfg.host, cfg.port):
        return _call(f"http://{cfg.host}:{cfg.port}", method, path, body)
    if path == "/paper/faults" and body and (body["add"] or body["clear"]):
        warn(
            f"no paper venue listens on {cfg.host}:{cfg.port}: faults last only while a venue runs "
            f"(start `bot paper serve`)"
        )
    return asyncio.run(_in_process(obj, method, path, body))


async def _in_process(obj: AppContext, method: str, path: str, body: dict[str, Any] | None) -> Any:
    import httpx

    from bot_cli.paper import server

    cfg = obj.config.paper
    handle = await server.start_in_process(
        obj.state_dir, cfg.host, 0, seed=cfg.seed, faults=cfg.faults, volatility=cfg.volatility
    )
    try:
        async with httpx.AsyncClient(base_url=handle.rest_url, timeout=10) as client:
            return _answer(await client.request(method, path, json=body), handle.rest_url)
    except httpx.HTTPError as err:
        raise BotError(
            f"the in-process paper venue did not answer ({err}): check {obj.state_dir}/paper"
        ) from None
    finally:
        await handle.stop()


def _call(base: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
    import httpx

    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            return _answer(client.request(method, path, json=body), base)
    except httpx.HTTPError as err:
        raise BotError(
            f"the paper venue at {base} did not answer ({err}): is `bot paper serve` healthy?"
        ) from None


def _answer(response: httpx.Response, base: str) -> Any:
    try:
        data = response.json()
    except ValueError:
        raise BotError(
            f"{base} answered {response.status_code} without JSON: is it a paper venue?"
        ) from None
    if response.status_code != 200:
        raise BotError(f"the paper venue refused: {data.get('error') or data.get('msg') or data}")
    return data
