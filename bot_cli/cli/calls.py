"""Commands as the exact exchange calls (or local actions) they stand for, in words."""

from __future__ import annotations

import time

from bot_cli.core import commands as cm


def describe(cmd: cm.Command) -> str:
    if isinstance(cmd, cm.PlaceEntry):
        price = "" if cmd.price is None else f" price={cmd.price}"
        return (f"POST /fapi/v1/order {cmd.symbol} {cmd.side.value} {cmd.order_type.value}"
                f" quantity={cmd.quantity}{price} newClientOrderId={cmd.client_id}")
    if isinstance(cmd, cm.PlaceProtection):
        kind = "STOP_MARKET" if cmd.leg.name == "SL" else "TAKE_PROFIT_MARKET"
        return (f"POST /fapi/v1/algoOrder {cmd.symbol} {cmd.side.value} {kind} quantity={cmd.quantity}"
                f" triggerPrice={cmd.trigger_price} clientAlgoId={cmd.client_id}")
    if isinstance(cmd, cm.ClosePosition):
        return (f"POST /fapi/v1/order {cmd.symbol} {cmd.side.value} MARKET reduceOnly quantity={cmd.quantity}"
                f" newClientOrderId={cmd.client_id}")
    if isinstance(cmd, cm.CancelProtection):
        return f"DELETE /fapi/v1/algoOrder clientAlgoId={cmd.client_id}"
    if isinstance(cmd, cm.QueryEntry | cm.QueryClose):
        return f"GET /fapi/v1/order {cmd.symbol} origClientOrderId={cmd.client_id}"
    if isinstance(cmd, cm.QueryProtection):
        return f"GET /fapi/v1/algoOrder clientAlgoId={cmd.client_id}"
    if isinstance(cmd, cm.QueryPosition):
        return f"GET /fapi/v3/positionRisk {cmd.symbol}"
    if isinstance(cmd, cm.PersistPending):
        return f"journal: save {cmd.pending.status.value}"
    if isinstance(cmd, cm.ArchivePending):
        return f"archive: {cmd.reason}"
    if isinstance(cmd, cm.CancelEntry):
        return f"DELETE /fapi/v1/order {cmd.symbol} origClientOrderId={cmd.client_id}"
    if isinstance(cmd, cm.ScheduleCheck):
        return f"check again at {time.strftime('%H:%M:%S', time.localtime(cmd.at / 1000))}"
    return f"ALERT: {cmd.message}"
