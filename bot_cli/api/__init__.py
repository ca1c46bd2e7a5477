"""The Python API for strategies (see ``bot_cli.api.Client``)."""
