"""The /fapi account endpoints: positions, settings (position mode, leverage, margin type,
multi-assets mode), trades, income and the account summary."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot_cli.paper import leverage, margin, shapes, shapes_account
from bot_cli.paper.endpoint import SEVEN_DAYS_MS, Route, limit, one_or_all, opt_symbol, w
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import Position, Trade
from bot_cli.paper.rules import BookError, Params, boolean, integer, required, symbol_spec


if TYPE_CHECKING:
    from bot_cli.paper.service import PaperExchange


def position_risk_v3(ex: PaperExchange, p: Params, now: int) -> Any:
    book, only = ex.book, opt_symbol(p)
    busy = {o.symbol for o in book.open_orders()} | {a.symbol for a in book.open_algos()}
    busy |= {pos.symbol for pos in book.positions.values() if pos.amount}
    return [
        shapes_account.position_v3(
            book.position(s, ps), book.mark(s, now), book.notional(s), book.setting(s)
        )
        for s in sorted(busy)
        if only in (None, s)
        for ps in book.position_sides()
    ]


def position_risk_v2(ex: PaperExchange, p: Params, now: int) -> Any:
    book, only = ex.book, opt_symbol(p)
    return [
        shapes_account.position_v2(book.position(s, ps), book.mark(s, now), book.setting(s))
        for s in SYMBOLS
        if only in (None, s)
        for ps in book.position_sides()
    ]


def get_dual(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"dualSidePosition": ex.book.dual}


def set_dual(ex: PaperExchange, p: Params, now: int) -> Any:
    value = boolean(p, "dualSidePosition")
    if value is None:
        required(p, "dualSidePosition")
    ex.book.set_dual(bool(value), now)
    return {"code": 200, "msg": "success"}


def user_trades(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol, order_id, from_id = symbol_spec(p).symbol, integer(p, "orderId"), integer(p, "fromId")
    end = integer(p, "endTime") or now
    start = integer(p, "startTime") or (
        0 if from_id is not None or order_id is not None else end - SEVEN_DAYS_MS
    )
    rows = [
        t
        for t in ex.book.trades
        if t.symbol == symbol
        and order_id in (None, t.order_id)
        and (from_id is None or t.trade_id >= from_id)
        and start <= t.time <= end
    ]
    rows = rows[: limit(p)] if from_id is not None else rows[-limit(p) :]
    return [shapes_account.user_trade(t) for t in rows]




def account_v3(ex: PaperExchange, p: Params, now: int) -> Any:
    """GET /fapi/v3/account: the USDT asset's figures, their totals, the positions held."""
    book, m = ex.book, shapes.money
    held = [pos for pos in book.positions.values() if pos.amount]
    upnl = sum((shapes_account.unrealized(pos, book.mark(pos.symbol, now)) for pos in held), Decimal(0))
    pos_im, order_im = margin.position_margin(book, now), margin.order_margin(book)
    free = book.balance + upnl - pos_im - order_im
    figures = {
        "walletBalance": m(book.balance),
        "unrealizedProfit": m(upnl),
        "marginBalance": m(book.balance + upnl),
        "maintMargin": m(margin.maint_total(book, now)),
        "initialMargin": m(pos_im + order_im),
        "positionInitialMargin": m(pos_im),
        "openOrderInitialMargin": m(order_im),
        "crossWalletBalance": m(book.balance),
        "crossUnPnl": m(upnl),
    }
    available = {
        "availableBalance": m(free),
        "maxWithdrawAmount": m(max(Decimal(0), min(free, book.balance))),
    }
    return {
        **{f"total{k[0].upper()}{k[1:]}": v for k, v in figures.items()},
        **available,
        "assets": [{"asset": "USDT", **figures, **available, "updateTime": now}],
        "positions": [_account_position(ex, pos, now) for pos in held],
    }


def _account_position(ex: PaperExchange, pos: Position, now: int) -> dict[str, Any]:
    book, m = ex.book, shapes.money
    setting, mark = book.setting(pos.symbol), book.mark(pos.symbol, now)
    wallet = shapes_account.isolated_wallet(pos, setting) if setting.isolated else Decimal(0)
    upnl = shapes_account.unrealized(pos, mark)
    return {
        "symbol": pos.symbol,
        "positionSide": pos.position_side.value,
        "positionAmt": SYMBOLS[pos.symbol].fmt_qty(pos.amount),
        "unrealizedProfit": m(upnl),
        "isolatedMargin": m(wallet + upnl) if setting.isolated else "0",
        "notional": m(pos.amount * mark),
        "isolatedWallet": m(wallet) if setting.isolated else "0",
        "initialMargin": m(abs(pos.amount) * mark / setting.leverage),
        "maintMargin": m(leverage.maint_margin(pos.symbol, abs(pos.amount) * mark)),
        "updateTime": pos.update_time,
    }


# --- settings ---------------------------------------------------------------------------------


def leverage_bracket(ex: PaperExchange, p: Params, now: int) -> Any:
    """GET /fapi/v1/leverageBracket: one object with a symbol (as the docs show), else a list."""
    only = opt_symbol(p)
    return one_or_all(only, [leverage.bracket_shape(s) for s in SYMBOLS if only in (None, s)])


def change_leverage(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol = symbol_spec(p).symbol
    value = integer(p, "leverage")
    if value is None:
        required(p, "leverage")
    setting = margin.set_leverage(ex.book, symbol, int(value or 0), now)
    cap = leverage.max_notional(symbol, setting.leverage)
    return {"leverage": setting.leverage, "maxNotionalValue": str(cap), "symbol": symbol}


def change_margin_type(ex: PaperExchange, p: Params, now: int) -> Any:
    symbol = symbol_spec(p).symbol
    kind = required(p, "marginType").upper()
    if kind not in ("ISOLATED", "CROSSED"):
        raise BookError(-1130, "Data sent for parameter 'marginType' is not valid.")
    margin.set_margin_type(ex.book, symbol, kind == "ISOLATED", now)
    return {"code": 200, "msg": "success"}


def symbol_config(ex: PaperExchange, p: Params, now: int) -> Any:
    """GET /fapi/v1/symbolConfig: every symbol's margin type and leverage (a list, always)."""
    only = opt_symbol(p)
    return [
        {
            "symbol": s,
            "marginType": ex.book.setting(s).margin_type.upper().replace("CROSS", "CROSSED"),
            "isAutoAddMargin": False,
            "leverage": ex.book.setting(s).leverage,
            "maxNotionalValue": str(leverage.max_notional(s, ex.book.setting(s).leverage)),
        }
        for s in SYMBOLS
        if only in (None, s)
    ]


def get_multi_assets(ex: PaperExchange, p: Params, now: int) -> Any:
    return {"multiAssetsMargin": ex.book.multi_assets}


def set_multi_assets(ex: PaperExchange, p: Params, now: int) -> Any:
    """The paper wallet holds USDT only: the mode is kept and reported, nothing else changes."""
    value = boolean(p, "multiAssetsMargin")
    if value is None:
        required(p, "multiAssetsMargin")
    if value and any(s.isolated for s in ex.book.settings.values()):
        raise BookError(
            -4168,
            "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under "
            "isolated-margin mode.",
        )
    ex.book.multi_assets = bool(value)
    ex.book.dirty = True
    return {"code": 200, "msg": "success"}


# --- income -----------------------------------------------------------------------------------


def income(ex: PaperExchange, p: Params, now: int) -> Any:
    """GET /fapi/v1/income: realized PnL and commission of each fill, and funding payments;
    the last 7 days unless a window is sent, oldest first, ``limit`` (100, up to 1000)."""
    symbol, kind = opt_symbol(p), p.get("incomeType", "")
    end = integer(p, "endTime") or now
    start = integer(p, "startTime") or end - SEVEN_DAYS_MS
    rows = [
        r
        for r in _income_rows(ex)
        if symbol in (None, r["symbol"]) and kind in ("", r["incomeType"])
        and start <= r["time"] <= end
    ]  # fmt: skip
    rows.sort(key=lambda r: (r["time"], r["tranId"]))
    page = integer(p, "page", 1) or 1
    size = limit(p, 100, 1000)
    return rows[(page - 1) * size : page * size]


def _income_rows(ex: PaperExchange) -> list[dict[str, Any]]:
    """Each fill's realized PnL (when any) and commission (ids from its trade id), and each
    funding payment."""
    rows = [row for t in ex.book.trades for row in _trade_income(t)]
    rows += [_income(f.symbol, "FUNDING_FEE", f.amount, t=f.time, tran=f.tran_id) for f in ex.book.funding]
    return rows


def _trade_income(t: Trade) -> list[dict[str, Any]]:
    """A fill's realized PnL (when it has any) and its commission; tranIds from its trade id."""
    tid, tran = str(t.trade_id), t.trade_id * 10
    pnl = [_income(t.symbol, "REALIZED_PNL", t.realized_pnl, t=t.time, tran=tran, trade=tid)] if t.realized_pnl else []
    return [*pnl, _income(t.symbol, "COMMISSION", -t.commission, t=t.time, tran=tran + 1, trade=tid)]


def _income(symbol: str, kind: str, amount: Decimal, *, t: int, tran: int, trade: str = "") -> dict[str, Any]:
    return {
        "symbol": symbol,
        "incomeType": kind,
        "income": shapes.money(amount),
        "asset": "USDT",
        "info": kind,
        "time": t,
        "tranId": tran,
        "tradeId": trade,
    }


ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v3/positionRisk", "SIGNED", w(5), position_risk_v3),
    Route("GET", "/fapi/v2/positionRisk", "SIGNED", w(5), position_risk_v2),
    Route("GET", "/fapi/v1/positionSide/dual", "SIGNED", w(30), get_dual),
    Route("POST", "/fapi/v1/positionSide/dual", "SIGNED", w(1), set_dual),
    Route("GET", "/fapi/v1/userTrades", "SIGNED", w(5), user_trades),
    Route("GET", "/fapi/v3/account", "SIGNED", w(5), account_v3),
    Route("GET", "/fapi/v1/leverageBracket", "SIGNED", w(1), leverage_bracket),
    Route("POST", "/fapi/v1/leverage", "SIGNED", w(1), change_leverage),
    Route("POST", "/fapi/v1/marginType", "SIGNED", w(1), change_margin_type),
    Route("GET", "/fapi/v1/symbolConfig", "SIGNED", w(5), symbol_config),
    Route("GET", "/fapi/v1/multiAssetsMargin", "SIGNED", w(30), get_multi_assets),
    Route("POST", "/fapi/v1/multiAssetsMargin", "SIGNED", w(1), set_multi_assets),
    Route("GET", "/fapi/v1/income", "SIGNED", w(30), income),
)
