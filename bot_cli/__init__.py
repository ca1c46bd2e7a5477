"""bot_cli: every filled entry gets its stop-loss and take-profit, exactly once, across crashes."""

__version__ = "0.1.0"
