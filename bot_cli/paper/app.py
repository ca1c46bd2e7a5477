"""The paper venue as an ASGI app: Binance's REST under /fapi, the user stream under /private,
market streams under /market, /public (and the un-routed /ws, /stream), and a small unsigned
admin API under /paper (loopback clients only).

Every /fapi request goes: weight count -> 429 fault -> API key / signature / timestamp ->
order count (-1015 beyond an ORDERS limit) -> book brought to now -> handler -> ``commit``
(state persisted, then events pushed) -> a ``slow_response`` hold, if one matches -> answer,
unless an "after" fault replaces the answer.
A ``lost_response`` closes the connection without any answer (``_DropMiddleware``), so the
client sees exactly what a lost response looks like.

Admin API (JSON):
  GET  /paper/whoami                     the paper state it serves: {"id", "paper_dir"}
  GET  /paper/state                      prices, both books, positions, wallet, countdowns
                                         (symbol -> deadline ms), key, faults
  POST /paper/price   {"symbol", "price"} re-anchor a symbol's price path now
  GET  /paper/faults                     the switches that are on
  POST /paper/faults  {"add": [SPEC...], "clear": bool}   see ``faults`` for SPEC
  POST /paper/advance                    process the price path up to now, immediately
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from bot_cli.paper import auth, handlers
from bot_cli.paper.faults import Fault, FaultError
from bot_cli.paper.market_stream import market_stream
from bot_cli.paper.rules import BookError
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.stream import user_stream


log = logging.getLogger("bot_cli.paper")
TICK_S = 0.1
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
_DROP = "paper.drop"
_NOT_JSON = object()

_TIMEOUT_MSG = (
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown."
)
_TOO_MANY = BookError(
    -1003,
    f"Too many requests; current limit of IP(127.0.0.1) is {auth.WEIGHT_LIMIT} requests per "
    "minute. Please use the websocket for live updates to avoid polling the API.",
    429,
)
_FAULT_ANSWERS = {
    "unknown_503": (503, -1000, "Unknown error, please check your request or try again later."),
    "timeout_1007": (408, -1007, _TIMEOUT_MSG),
}


def create_app(exchange: PaperExchange, *, tick_s: float = TICK_S) -> ASGIApp:
    """The ASGI app over an opened exchange; its lifespan runs the 100 ms clock."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick_forever(exchange, tick_s))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            exchange.hub.drop_all()

    app = Starlette(routes=_routes(), lifespan=lifespan)
    app.state.exchange = exchange
    return _DropMiddleware(app)


async def _tick_forever(exchange: PaperExchange, tick_s: float) -> None:
    while True:
        await asyncio.sleep(tick_s)
        try:
            exchange.tick()
        except Exception:
            log.exception("paper venue tick failed")


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route(r.path, _endpoint(r), methods=[r.method]) for r in handlers.ROUTES
    ]
    routes += [
        Route("/paper/whoami", _admin_whoami, methods=["GET"]),
        Route("/paper/state", _admin_state, methods=["GET"]),
        Route("/paper/price", _admin_price, methods=["POST"]),
        Route("/paper/faults", _admin_faults, methods=["GET", "POST"]),
        Route("/paper/advance", _admin_advance, methods=["POST"]),
        WebSocketRoute("/private/ws/{listen_key}", user_stream),
        WebSocketRoute("/private/ws", user_stream),
        WebSocketRoute("/private/stream", user_stream),
    ]
    for prefix in ("/market", "/public", ""):  # routed paths, and the un-routed ones
        routes += [
            WebSocketRoute(f"{prefix}/stream", market_stream),
            WebSocketRoute(f"{prefix}/ws", market_stream),
            WebSocketRoute(f"{prefix}/ws/{{name}}", market_stream),
        ]
    return routes


# --- /fapi ------------------------------------------------------------------------------------


def _endpoint(route: handlers.Route) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _dispatch(request, route)

    return endpoint


async def _dispatch(request: Request, route: handlers.Route) -> Response:
    ex: PaperExchange = request.app.state.exchange
    now = ex.now()
    query = request.scope["query_string"].decode("utf-8", "replace")
    body = (await request.body()).decode("utf-8", "replace")
    params = auth.merged_params(query, body)
    name = route.path.rsplit("/", 1)[-1]
    headers = {"X-MBX-USED-WEIGHT-1M": str(ex.weights.add(_weight(route, params), now))}
    if ex.weights.used > auth.WEIGHT_LIMIT or ex.faults.before(name, route.method):
        ex.commit()  # a fired ``:once`` switch is gone for good, also after a restart
        # Binance says when to retry: the weight window's end, or soon for a burst (the fault)
        wait_s = 60 - (now // 1000) % 60 if ex.weights.used > auth.WEIGHT_LIMIT else 1
        return _error(_TOO_MANY, {**headers, "Retry-After": str(wait_s)})  # refused before executing
    try:
        _authenticate(request, route, params, now, query=query, body=body)
        if route.order_cost is not None:  # per account, so after the key: -1015 before executing
            headers.update(ex.weights.add_order(now, route.order_cost))
        ex.advance(now)  # the request sees the book as of now
        result = route.handler(ex, params, now)
    except auth.TooManyOrders as err:
        return _error(err, {**headers, **err.headers})  # nothing ran: nothing to commit
    except BookError as err:
        ex.commit()  # time may have moved the book before the refusal
        return _error(err, headers)
    ex.commit()  # persisted (and pushed) before the answer leaves
    slow = ex.faults.slow(name, route.method)
    if slow is not None:
        ex.commit()  # a ``#N`` switch that fired leaves the saved list too
        what = f"{route.method} {request.url.path}"
        log.info("paper fault %s: holding the answer to %s %.1fs", slow.spec, what, slow.seconds)
        await asyncio.sleep(slow.seconds)
    fault = ex.faults.after(name, route.method)
    if fault is not None:
        ex.commit()
        return _fault_answer(request, fault, headers)
    return JSONResponse(result, headers=headers)


def _weight(route: handlers.Route, params: dict[str, str]) -> int:
    try:
        return route.weight(params)
    except BookError:
        return 1


def _authenticate(
    request: Request, route: handlers.Route, params: dict[str, str], now: int, *, query: str, body: str
) -> None:
    """The API key for USER_STREAM and SIGNED routes; the timestamp and signature for SIGNED."""
    if route.security == "NONE":
        return
    auth.check_api_key(request.headers.get("X-MBX-APIKEY"), auth.PAPER_API_KEY)
    if route.security == "SIGNED":
        auth.check_timestamp(params, now)
        auth.check_signature(query, body, auth.PAPER_API_SECRET)


def _error(err: BookError, headers: dict[str, str]) -> Response:
    return JSONResponse({"code": err.code, "msg": err.msg}, status_code=err.status, headers=headers)


def _fault_answer(request: Request, fault: Fault, headers: dict[str, str]) -> Response:
    log.info("paper fault %s on %s %s", fault.spec, request.method, request.url.path)
    if fault.kind == "lost_response":
        request.scope[_DROP]["drop"] = True
        return Response(status_code=204)  # never sent: the middleware closes the connection
    status, code, msg = _FAULT_ANSWERS[fault.kind]
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


class _DropMiddleware:
    """Swallows the answer of a request marked dropped and closes its connection instead."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        flag = {"drop": False}
        scope[_DROP] = flag

        async def guarded(message: Any) -> None:
            if not flag["drop"]:
                await send(message)

        await self.app(scope, receive, guarded)
        if flag["drop"]:
            _close_connection(receive)


def _close_connection(receive: Receive) -> None:
    """Close the socket under uvicorn's request cycle (the bound ``receive`` leads to it)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # an in-memory transport (tests): the nearest thing to a lost answer
        raise ConnectionResetError("paper fault lost_response: the answer was dropped")
    cycle.disconnected = True  # type: ignore[union-attr]  # so uvicorn does not answer 500 itself
    transport.close()


# --- /paper admin -----------------------------------------------------------------------------


def _loopback(request: Request) -> Response | None:
    if request.client is not None and request.client.host not in LOOPBACK:
        return JSONResponse(
            {"error": "the paper admin API answers loopback clients only"}, status_code=403
        )
    return None


async def _admin_whoami(request: Request) -> Response:
    return _loopback(request) or _admin_answer(request, "GET", "/paper/whoami", None)


async def _admin_state(request: Request) -> Response:
    return _loopback(request) or _admin_answer(request, "GET", "/paper/state", None)


async def _admin_advance(request: Request) -> Response:
    return _loopback(request) or _admin_answer(request, "POST", "/paper/advance", None)


async def _admin_price(request: Request) -> Response:
    if (denied := _loopback(request)) is not None:
        return denied
    return _admin_answer(request, "POST", "/paper/price", await _body(request))


async def _admin_faults(request: Request) -> Response:
    if (denied := _loopback(request)) is not None:
        return denied
    body = await _body(request) if request.method == "POST" else None
    return _admin_answer(request, request.method, "/paper/faults", body)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return _NOT_JSON  # refused by the call, which names the body it wants


def _admin_answer(request: Request, method: str, path: str, body: Any) -> Response:
    status, payload = admin(request.app.state.exchange, method, path, body)
    return JSONResponse(payload, status_code=status)


def admin(ex: PaperExchange, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """One admin call on an opened exchange, as (HTTP status, JSON payload): the same answer
    over HTTP and for a command that opened the state itself."""
    if (method, path) == ("GET", "/paper/whoami"):
        return 200, ex.whoami()
    if (method, path) == ("GET", "/paper/state"):
        return 200, ex.snapshot()
    if (method, path) == ("POST", "/paper/advance"):
        return 200, {"time": ex.sync()}
    if (method, path) == ("POST", "/paper/price"):
        return _set_price(ex, body)
    if path == "/paper/faults" and method in ("GET", "POST"):
        return _set_faults(ex, body if method == "POST" else None)
    return 404, {"error": f"no admin call {method} {path}"}


def _set_price(ex: PaperExchange, data: Any) -> tuple[int, dict[str, Any]]:
    try:
        symbol, price = str(data["symbol"]).upper(), Decimal(str(data["price"]))
        price = ex.set_price(symbol, price)
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return 400, {"error": 'send {"symbol": "BTCUSDT", "price": "97000.5"}'}
    except BookError as err:
        return err.status, {"code": err.code, "msg": err.msg}
    return 200, {"symbol": symbol, "price": str(price)}


def _set_faults(ex: PaperExchange, data: Any) -> tuple[int, dict[str, Any]]:
    ran: list[str] = []
    if data is not None:
        try:
            if data.get("clear"):
                ex.clear_faults()
            added = [ex.add_fault(str(spec)) for spec in data.get("add", [])]  # in the order sent
            ran = [fault.spec for fault in added if fault.immediate]
        except FaultError as err:
            return 400, {"error": str(err)}
        except (ValueError, AttributeError, TypeError):
            return 400, {"error": 'send {"add": ["lost_response:order:once"], "clear": false}'}
    return 200, {"faults": ex.faults.specs(), "ran": ran}
