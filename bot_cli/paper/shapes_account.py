"""Binance's account shapes, built from the paper records: ACCOUNT_UPDATE and
ACCOUNT_CONFIG_UPDATE events, the position answers (v3 and v2 positionRisk) and user trades.

Numbers are strings as in ``shapes``: quantities on the symbol's step, prices and money with
Binance's decimals (``shapes.money``: eight).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot_cli.paper import leverage
from bot_cli.paper.leverage import Setting
from bot_cli.paper.market import SYMBOLS
from bot_cli.paper.records import Position, Trade
from bot_cli.paper.shapes import money, num


def account_event(
    balance: Decimal,
    change: Decimal,
    positions: list[tuple[Position, Decimal, Setting]],
    t: int,
    *,
    reason: str = "ORDER",
) -> dict[str, Any]:
    """ACCOUNT_UPDATE; ``positions`` pairs each changed position with its mark and settings."""
    rows = [
        {
            "s": p.symbol,
            "pa": SYMBOLS[p.symbol].fmt_qty(p.amount),
            "ep": num(p.entry_price),
            "bep": num(p.entry_price),
            "cr": money(p.realized),
            "up": money(unrealized(p, mark)),
            "mt": setting.margin_type,
            "iw": money(isolated_wallet(p, setting)) if setting.isolated else "0",
            "ps": p.position_side.value,
        }
        for p, mark, setting in positions
    ]
    wallet = money(balance)
    moved = money(change) if reason != "ORDER" else "0"  # bc: a change other than trading
    b = [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": moved}]
    return {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {"m": reason, "B": b, "P": rows}}


def config_event(symbol: str, leverage: int, t: int) -> dict[str, Any]:
    """ACCOUNT_CONFIG_UPDATE: a symbol's leverage changed."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": t, "T": t, "ac": {"s": symbol, "l": leverage}}


def unrealized(p: Position, mark: Decimal) -> Decimal:
    return (mark - p.entry_price) * p.amount if p.amount else Decimal(0)


def isolated_wallet(p: Position, setting: Setting) -> Decimal:
    """The margin an isolated position was opened with (the venue never adds or removes any)."""
    return abs(p.amount) * p.entry_price / setting.leverage


def position_v3(
    p: Position, mark: Decimal, notional: tuple[Decimal, Decimal], setting: Setting
) -> dict[str, Any]:
    value = p.amount * mark
    margin = abs(value) / setting.leverage
    wallet = isolated_wallet(p, setting) if setting.isolated else Decimal(0)
    upnl = unrealized(p, mark)
    return {
        "symbol": p.symbol,
        "positionSide": p.position_side.value,
        "positionAmt": SYMBOLS[p.symbol].fmt_qty(p.amount),
        "entryPrice": num(p.entry_price),
        "breakEvenPrice": num(p.entry_price),
        "markPrice": money(mark),
        "unRealizedProfit": money(upnl),
        "liquidationPrice": "0",
        "isolatedMargin": money(wallet + upnl) if setting.isolated else "0",
        "notional": money(value),
        "marginAsset": "USDT",
        "isolatedWallet": money(wallet) if setting.isolated else "0",
        "initialMargin": money(margin),
        "maintMargin": money(leverage.maint_margin(p.symbol, abs(value))),
        "positionInitialMargin": money(margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": num(notional[0]),
        "askNotional": num(notional[1]),
        "updateTime": p.update_time,
    }


def position_v2(p: Position, mark: Decimal, setting: Setting) -> dict[str, Any]:
    wallet = isolated_wallet(p, setting) if setting.isolated else Decimal(0)
    return {
        "entryPrice": num(p.entry_price),
        "breakEvenPrice": num(p.entry_price),
        "marginType": setting.margin_type,
        "isAutoAddMargin": "false",
        "isolatedMargin": money(wallet + unrealized(p, mark) if setting.isolated else wallet),
        "leverage": str(setting.leverage),
        "liquidationPrice": "0",
        "markPrice": money(mark),
        "maxNotionalValue": str(leverage.max_notional(p.symbol, setting.leverage)),
        "positionAmt": SYMBOLS[p.symbol].fmt_qty(p.amount),
        "notional": money(p.amount * mark),
        "isolatedWallet": money(wallet) if setting.isolated else "0",
        "symbol": p.symbol,
        "unRealizedProfit": money(unrealized(p, mark)),
        "positionSide": p.position_side.value,
        "updateTime": p.update_time,
    }


def user_trade(tr: Trade) -> dict[str, Any]:
    spec = SYMBOLS[tr.symbol]
    return {
        "buyer": tr.side.value == "BUY",
        "commission": money(tr.commission),
        "commissionAsset": "USDT",
        "id": tr.trade_id,
        "maker": tr.maker,
        "orderId": tr.order_id,
        "price": spec.fmt_price(tr.price),
        "qty": spec.fmt_qty(tr.qty),
        "quoteQty": num(tr.price * tr.qty),
        "baseQty": spec.fmt_qty(tr.qty),
        "marginAsset": "USDT",
        "realizedPnl": money(tr.realized_pnl),
        "side": tr.side.value,
        "positionSide": tr.position_side.value,
        "symbol": tr.symbol,
        "pair": tr.symbol,
        "time": tr.time,
    }
