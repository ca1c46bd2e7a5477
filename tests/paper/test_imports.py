"""What importing the venue costs: the package loads nothing, the state machine no web stack."""

from __future__ import annotations

import subprocess
import sys

import pytest


WEB_STACK = ("starlette", "uvicorn")
# The modules a bot command or a test may load without serving anything.
QUIET_MODULES = (
    "bot_cli.paper.book",
    "bot_cli.paper.matching",
    "bot_cli.paper.service",
    "bot_cli.paper.persist",
    "bot_cli.paper.handlers",
    "bot_cli.paper.info",
    "bot_cli.paper.market_feed",
)


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    probe = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(out.split())


def test_importing_the_package_loads_none_of_its_modules() -> None:
    """`import bot_cli.paper` runs no venue code: its public names load on first use."""
    # Act
    loaded = loaded_after("import bot_cli.paper")

    # Assert
    assert sorted(m for m in loaded if m.startswith("bot_cli.paper.")) == []


def test_the_keys_load_without_the_exchange() -> None:
    """The credentials a client needs come without the exchange or the web stack."""
    # Act
    loaded = loaded_after("from bot_cli.paper import PAPER_API_KEY, PAPER_API_SECRET")

    # Assert
    assert "bot_cli.paper.service" not in loaded
    assert not loaded & set(WEB_STACK)


@pytest.mark.parametrize("module", QUIET_MODULES)
def test_the_state_machine_and_service_load_no_web_stack(module: str) -> None:
    """Only the HTTP/WebSocket modules (app, stream, market_stream, server) import starlette/uvicorn."""
    # Act
    loaded = loaded_after(f"import {module}")

    # Assert
    assert not loaded & set(WEB_STACK)
