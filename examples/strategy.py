"""A minimal strategy on the paper venue, through bot_cli's Python API.

    bot run &                            # the daemon: it sends and protects what we enter
    python examples/strategy.py          # state dir ./state, config ./bot.toml if present

Every 10 s it reads BTCUSDT's mark price; when the price crosses above the mean of the last
five reads, it buys 0.010 with a stop-loss 0.5% below and a take-profit 1% above. The
idempotency key names the signal (the crossing's 10 s bucket), so a restart of this script, or
a retry after an error, never enters the same signal twice. Without `bot run` the API sends the
entry itself and follows it until it is protected (``entry.watched`` says when nothing will).
"""

from __future__ import annotations

import time
from collections import deque
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import httpx

from bot_cli.api import Client, EntryRefused
from bot_cli.config import load_config


SYMBOL, QTY, TICK = "BTCUSDT", Decimal("0.010"), Decimal("0.1")
EVERY_S, WINDOW = 10, 5


def mark_price(rest_url: str) -> Decimal:
    answer = httpx.get(f"{rest_url}/fapi/v1/premiumIndex", params={"symbol": SYMBOL}, timeout=5)
    answer.raise_for_status()
    return Decimal(answer.json()["markPrice"])  # a string on the wire: never through float


def on_tick(price: Decimal, rounding: str) -> Decimal:
    return (price / TICK).to_integral_value(rounding=rounding) * TICK


def main() -> None:
    config = load_config(None)
    bot = Client("state", config)
    seen: deque[Decimal] = deque(maxlen=WINDOW)
    while True:
        price = mark_price(config.rest_url())
        mean = sum(seen, Decimal(0)) / len(seen) if seen else price
        if len(seen) == WINDOW and seen[-1] <= mean < price:
            enter(bot, price, key=f"cross-up-{SYMBOL}-{int(time.time()) // EVERY_S}")
        seen.append(price)
        time.sleep(EVERY_S)


def enter(bot: Client, price: Decimal, key: str) -> None:
    try:
        entry = bot.enter(SYMBOL, "buy", QTY, key=key,
                          stop_loss=on_tick(price * Decimal("0.995"), ROUND_DOWN),
                          take_profit=on_tick(price * Decimal("1.01"), ROUND_UP))  # fmt: skip
    except EntryRefused as refused:  # nothing was written or sent
        print(f"refused ({refused.field}): {refused}")
        return
    again = " (already entered)" if entry.duplicate else ""
    print(f"entry {entry.id}: {entry.status.value}{again} {entry.note}".rstrip())
    if not entry.watched:
        print("nothing protects a fill until `bot run` starts: start it")


if __name__ == "__main__":
    main()
