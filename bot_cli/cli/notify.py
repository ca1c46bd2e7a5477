"""`bot notify test`: one test message through every configured sink, one line per sink."""

from __future__ import annotations

import typer

from bot_cli.cli.context import AppContext
from bot_cli.errors import BotError


NOTHING_CONFIGURED = (
    "no notification sink configured: set notify.webhook_url, or notify.telegram_chat_id "
    "with BOT_TELEGRAM_TOKEN in the environment"
)

app = typer.Typer(
    no_args_is_help=True,
    help="Alerts to a person: a JSON webhook and Telegram (the notify section of the config).",
)


@app.command("test")
def send_test(ctx: typer.Context) -> None:
    """Send one test message through every configured sink now; print one line per sink.

    Exit 0 if every sink took it, 1 if any failed or none is configured.
    Example: BOT_TELEGRAM_TOKEN=123:abc bot --config bot.toml notify test
    """
    import asyncio
    import os
    import time

    from bot_cli.notify import Message, Origin, deliver_once, formats, sinks_from_config

    obj: AppContext = ctx.obj
    cfg = obj.config
    sinks = sinks_from_config(cfg.notify, os.environ, str(cfg.path or "config"))
    if not sinks:
        raise BotError(NOTHING_CONFIGURED)
    probe, origin = formats.probe(), Origin.here()
    msg = Message(probe.kind, probe.text, probe.fields, time.time(), origin.host, origin.pid)
    results = asyncio.run(deliver_once(sinks, msg, cfg.notify.timeout_s))
    for r in results:  # a failure is an error: on stderr, where a script looks for one
        if r.ok:
            typer.echo(f"{r.where}: ok ({r.detail})")
        else:
            typer.echo(f"{r.where}: failed: {r.detail}", err=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)
