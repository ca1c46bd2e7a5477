"""The venue's imports: the package loads nothing, the exchange no web stack, and the layers
of the state machine depend one way."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

import bot_cli.paper


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


PAPER = Path(bot_cli.paper.__file__).parent
# Outside the venue it may use the pure core, the errors and the state store's file primitives:
# never the bot's runtime, adapters, CLI or API (it stands in for Binance, it is not the bot).
# And the log filter that cuts a listenKey from any line, theirs or ours (bot_cli.redact: re and
# logging only).
ALLOWED_OUTSIDE = ("bot_cli.core", "bot_cli.errors", "bot_cli.store", "bot_cli.redact")
# The exchange state machine, bottom up: none of these imports the ones after it.
STATE_MACHINE = ("records", "ledger", "margin", "funding", "book", "matching")
# The venue's layers, as bot_cli/paper/__init__.py describes them: a module imports from its own
# layer and the ones before it, never from a later one.
LAYERS = (
    ("market", "records", "leverage", "account", "rules", "faults", "auth", "shapes", "shapes_account", "info",
     "history", "klines", "quotes"),
    ("ledger", "margin", "funding", "shapes_market", "book", "matching"),
    ("persist", "snapshot", "wal", "hub", "service", "endpoint", "handlers", "handlers_account", "handlers_market",
     "market_feed"),
    ("app", "stream", "market_stream", "server"),
)  # fmt: skip


def imports_of(module: str) -> set[str]:
    """Every module ``bot_cli/paper/<module>.py`` imports, at its top or inside a function."""
    tree = ast.parse((PAPER / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("module", sorted(p.stem for p in PAPER.glob("*.py")))
def test_the_venue_imports_no_part_of_the_bot(module: str) -> None:
    """A venue module imports the core, the errors and the store's primitives, nothing else of the bot."""
    # Act
    outside = {m for m in imports_of(module) if m.startswith("bot_cli.") and not m.startswith("bot_cli.paper")}

    # Assert
    assert {m for m in outside if not m.startswith(ALLOWED_OUTSIDE)} == set()


@pytest.mark.parametrize(("lower", "upper"), list(itertools.combinations(STATE_MACHINE, 2)))
def test_the_state_machine_depends_one_way(lower: str, upper: str) -> None:
    """The book never calls into matching (which drives it); nothing lower imports what is above it."""
    # Act
    imported = imports_of(lower)

    # Assert
    assert f"bot_cli.paper.{upper}" not in imported


def test_every_venue_module_has_a_layer() -> None:
    """A new module is placed in a layer (here and in the package docstring) before it is used."""
    # Act
    placed = sorted(m for layer in LAYERS for m in layer)

    # Assert
    assert placed == sorted(p.stem for p in PAPER.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize(("index", "layer"), list(enumerate(LAYERS)))
def test_no_layer_imports_a_later_one(index: int, layer: tuple[str, ...]) -> None:
    """Values < state machine < running exchange < web stack: imports only go up this list."""
    # Arrange
    later = {f"bot_cli.paper.{m}" for below in LAYERS[index + 1 :] for m in below}

    # Act
    found = {m: sorted(imports_of(m) & later) for m in layer}

    # Assert
    assert {m: bad for m, bad in found.items() if bad} == {}
