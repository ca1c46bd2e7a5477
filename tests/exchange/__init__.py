"""Tests of the Binance USDⓈ-M adapter (bot_cli.exchange)."""
