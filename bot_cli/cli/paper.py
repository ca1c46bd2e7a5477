"""`bot paper ...`: run the simulated exchange and poke at it.

`serve` runs the venue in the foreground. The other commands talk to the running venue's
/paper admin API; when nothing answers on the configured paper.host:paper.port they open the
venue's state in this process for their own duration (no listener), if this process may own it
(see ``paper.server.open_owned``), and say so on stderr.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

import typer

from bot_cli.cli.context import AppContext
from bot_cli.cli.render import print_json, table
from bot_cli.core.numbers import NotANumber, positive
from bot_cli.errors import BotError, UsageError


# The venue's modules (starlette, uvicorn) load only when a command has to open the venue's
# state itself; talking to a running venue takes the standard library only, so it is quick.
JSON_HELP = "Print one JSON document on stdout."
ADMIN_TIMEOUT_S = 10.0

app = typer.Typer(
    no_args_is_help=True, help="The paper venue: a simulated Binance USD-M exchange on 127.0.0.1."
)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default paper.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Listen port (default paper.port).")
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Also print one line per HTTP request (method, path, status).")
    ] = False,
) -> None:
    """Run the paper venue in the foreground until Ctrl-C or SIGTERM (its state stays in
    STATE/paper/). While it runs, STATE/paper/server.json names it: other commands then never
    start a venue of their own on that state, also while this one is down or restarting.
    It prints its start, the faults switched and the stream connects; --access-log adds a line
    per request.

    Example: bot paper serve --port 18765 --access-log
    """
    from bot_cli.paper import server
    from bot_cli.paper.auth import PAPER_API_KEY, PAPER_API_SECRET, OrderLimits

    obj: AppContext = ctx.obj
    cfg = obj.config.paper
    host, port = host or cfg.host, port or cfg.port
    typer.echo(
        f"paper venue on http://{host}:{port} "
        f"(api key {PAPER_API_KEY!r}, secret {PAPER_API_SECRET!r}); "
        f"state in {obj.state_dir / 'paper'}; Ctrl-C stops it"
    )
    server.serve(
        obj.state_dir, host, port, seed=cfg.seed, faults=cfg.faults, volatility=cfg.volatility,
        order_limits=OrderLimits(cfg.order_limit_10s, cfg.order_limit_1m), access_log=access_log,
    )  # fmt: skip


@app.command(context_settings={"ignore_unknown_options": True})  # a price of -5 is refused as a number
def price(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="e.g. BTCUSDT")],
    new_price: Annotated[
        str, typer.Argument(metavar="PRICE", help="The new price; the walk continues from it.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Move a symbol's price now (resting orders and triggers react on the next 100 ms step).

    Example: bot paper price BTCUSDT 95000
    """
    try:
        value = positive("PRICE", new_price)
    except NotANumber as err:
        raise UsageError(str(err)) from None
    answer = _admin(
        ctx.obj, "POST", "/paper/price", {"symbol": symbol.upper(), "price": str(value)}
    )
    if as_json:
        print_json({"symbol": answer["symbol"], "price": answer["price"]})
        return
    typer.echo(f"{answer['symbol']} now {answer['price']}")


@app.command()
def orders(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False
) -> None:
    """Show prices, both order books (regular and algo), positions and the wallet.

    Example: bot paper orders --json
    """
    state = _admin(ctx.obj, "GET", "/paper/state")
    if as_json:
        print_json(state)
        return
    table("prices", ("symbol", "price"), sorted(state["prices"].items()))
    table(f"{len(state['openOrders'])} open orders", _ORDER_COLUMNS, [_order_row(o) for o in state["openOrders"]])
    algos = state["openAlgoOrders"]
    table(f"{len(algos)} open algo orders", _ALGO_COLUMNS, [_algo_row(a) for a in algos])
    title = f"{len(state['positions'])} positions (wallet {state['balance']} USDT)"
    table(title, _POSITION_COLUMNS, [_position_row(p) for p in state["positions"]])
    if state["faults"]:
        typer.echo(f"faults on: {', '.join(state['faults'])}")


_ORDER_COLUMNS = ("id", "client id", "symbol", "side", "type", "price", "qty", "filled", "status")
_ALGO_COLUMNS = ("algo id", "client algo id", "symbol", "side", "type", "trigger", "qty", "status")
_POSITION_COLUMNS = ("symbol", "side", "amount", "entry", "mark", "unrealized PnL")


def _order_row(o: dict[str, Any]) -> tuple[str, ...]:
    return (str(o["orderId"]), o["clientOrderId"], o["symbol"], o["side"], o["type"], o["price"], o["origQty"],
            o["executedQty"], o["status"])  # fmt: skip


def _algo_row(a: dict[str, Any]) -> tuple[str, ...]:
    qty = "close-all" if a["closePosition"] else a["quantity"]
    return (str(a["algoId"]), a["clientAlgoId"], a["symbol"], a["side"], a["orderType"], a["triggerPrice"], qty,
            a["algoStatus"])  # fmt: skip


def _position_row(p: dict[str, Any]) -> tuple[str, ...]:
    return (p["symbol"], p["positionSide"], p["positionAmt"], p["entryPrice"], p["markPrice"],
            p["unRealizedProfit"])  # fmt: skip


@app.command()
def faults(
    ctx: typer.Context,
    specs: Annotated[
        list[str] | None, typer.Argument(help="Fault specs, e.g. lost_response:order:once.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Switch every fault off (before adding SPECs).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help=f"{JSON_HELP} {{faults: [SPEC...], ran: [SPEC...]}}")
    ] = False,
) -> None:
    """Show, add or clear fault switches (syntax: `python -m pydoc bot_cli.paper.faults`).

    Switches are saved with the venue's state: they stay on across venue restarts until
    cleared (a `:once` switch until it fires). One-shot actions (`drop_stream` without
    seconds, `expire_listen_key`) run once and are not saved.

    Example: bot paper faults lost_response:order:once; bot paper faults --clear
    """
    if specs or clear:
        change = {"add": list(specs or []), "clear": clear}
        answer = _admin(ctx.obj, "POST", "/paper/faults", change)
    else:
        answer = _admin(ctx.obj, "GET", "/paper/faults")
    if as_json:
        print_json({"faults": answer["faults"], "ran": answer["ran"]})
        return
    for spec in answer["ran"]:
        typer.echo(f"ran {spec}")
    typer.echo(f"faults on: {', '.join(answer['faults'])}" if answer["faults"] else "no faults on")


# --- talking to the venue ---------------------------------------------------------------------


def _admin(obj: AppContext, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the admin API of the running venue, or of the state opened here for this command."""
    cfg = obj.config.paper
    if _listening(cfg.host, cfg.port):
        if not obj.config.venue.rest_url:  # named on purpose: any venue; else it must be this state dir's
            from bot_cli.paper.server import owner_problem

            if (problem := owner_problem(obj.state_dir, cfg.host, cfg.port)) is not None:
                raise BotError(problem)
        return _call(cfg.host, cfg.port, method, path, body)
    return _in_process(obj, method, path, body)


def _in_process(obj: AppContext, method: str, path: str, body: dict[str, Any] | None) -> Any:
    from bot_cli.paper import server
    from bot_cli.paper.app import admin

    cfg = obj.config.paper
    if url := obj.config.venue.rest_url:  # the venue is configured elsewhere: never open one here
        raise BotError(
            f"no paper venue answers on {cfg.host}:{cfg.port} and venue.rest_url is {url}: "
            "start `bot paper serve` on paper.port, or set paper.port to the venue's port"
        )
    exchange = server.open_owned(
        obj.state_dir, cfg.host, cfg.port, seed=cfg.seed, faults=cfg.faults,
        volatility=cfg.volatility,
    )  # fmt: skip
    if exchange is None:  # one started answering meanwhile
        return _call(cfg.host, cfg.port, method, path, body)
    try:
        status, payload = admin(exchange, method, path, body)
    finally:
        exchange.close()
    if status == HTTPStatus.OK:  # a refusal is the one line said instead
        saved = "; the faults are saved with it" if path == "/paper/faults" and body else ""
        typer.echo(
            f"started the paper venue in this process for this command (state: "
            f"{obj.state_dir / 'paper'}){saved}; none answers on {cfg.host}:{cfg.port}",
            err=True,
        )
    return _checked(status, payload, f"the paper state in {obj.state_dir / 'paper'}")


def _listening(host: str, port: int) -> bool:
    """Does something accept TCP connections on host:port? (the venue's own check, without
    importing the venue)"""
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _call(host: str, port: int, method: str, path: str, body: dict[str, Any] | None) -> Any:
    import http.client
    import json

    base = f"http://{host}:{port}"
    conn = http.client.HTTPConnection(host, port, timeout=ADMIN_TIMEOUT_S)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        status, raw = response.status, response.read()
    except (OSError, http.client.HTTPException) as err:
        raise BotError(
            f"the paper venue at {base} did not answer ({err}): is `bot paper serve` healthy?"
        ) from None
    finally:
        conn.close()
    try:
        payload = json.loads(raw)
    except ValueError:
        raise BotError(f"{base} answered {status} without JSON: is it a paper venue?") from None
    return _checked(status, payload, base)


def _checked(status: int, payload: Any, where: str) -> Any:
    if status != HTTPStatus.OK:
        why = payload.get("error") or payload.get("msg") if isinstance(payload, dict) else None
        raise BotError(f"the paper venue ({where}) refused: {why or payload}")
    return payload
