"""The architecture as a test: what each layer of bot_cli may import.

core is pure (stdlib values only, no I/O); exchange knows nothing of store, cli, runtime or
the paper venue; store knows nothing of exchange, cli, runtime or the paper venue; the
runtime reaches every venue through bot_cli.venue, never the CLI or the paper venue's code;
the API, the signal inbox and the notifier never import the CLI (nor the runtime that serves
them); the paper venue never imports the runtime or the CLI; only the entry point imports the
CLI. The test walks the modules that exist, so layers not written yet pass trivially (and the
walk itself is checked to have found the core).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parent.parent / "bot_cli"

CORE_STDLIB = frozenset({
    "__future__", "collections", "collections.abc", "dataclasses", "decimal", "enum",
    "functools", "itertools", "re", "typing", "zlib",  # zlib: crc32, a pure hash for the retry jitter
})
CORE_FORBIDDEN = frozenset({
    "asyncio", "httpx", "websockets", "os", "io", "time", "random", "logging", "pathlib",
    "socket", "datetime", "secrets", "subprocess", "threading", "sys", "json", "uuid",
})
FORBIDDEN_LAYERS = {
    "exchange": ("bot_cli.store", "bot_cli.cli", "bot_cli.runtime", "bot_cli.paper"),
    "store": ("bot_cli.exchange", "bot_cli.cli", "bot_cli.runtime", "bot_cli.paper"),
    "runtime": ("bot_cli.cli", "bot_cli.paper"),
    "api": ("bot_cli.cli",),
    "inbox": ("bot_cli.cli", "bot_cli.runtime"),
    "notify": ("bot_cli.cli", "bot_cli.runtime"),
    "paper": ("bot_cli.runtime", "bot_cli.cli"),  # the venue is the far side of the wire
    "ops": ("bot_cli.cli", "bot_cli.paper", "typer", "rich"),  # returns results; never prints or asks
}
# The operator commands only parse and render: how a command reaches the venue, locks the state
# dir or drives an engine lives in bot_cli.ops. (`bot run` is the daemon's shell, `bot paper` the
# venue's, `bot config check --online` a probe: not operator commands.)
RENDER_ONLY = ("enter", "adopt", "exit", "recover", "pending", "status", "history")
ORCHESTRATION = ("bot_cli.connect", "bot_cli.runtime", "bot_cli.exchange.rest", "bot_cli.venue",
                 "bot_cli.store.lock", "bot_cli.state_store.DaemonLock", "bot_cli.state_store.lock_holder")


@dataclass(frozen=True)
class Import:
    module: str  # the module imported, absolute
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_in(source: str, package: str) -> list[Import]:
    """Every module the source imports, relative imports resolved against ``package``.

    ``from bot_cli.x import y`` yields bot_cli.x and bot_cli.x.y (y may be a module);
    ``from stdlib import name`` yields the stdlib module only.
    """
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append(Import(base, node.lineno))
            if _under(base, "bot_cli"):
                found += [Import(f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def imports_of(path: Path) -> list[Import]:
    return imports_in(path.read_text(encoding="utf-8"), _package_of(path))


def _py_files(sub: str) -> list[Path]:
    root = PACKAGE / sub
    if root.is_file():
        return [root]
    return sorted(root.rglob("*.py")) if root.is_dir() else []


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(PACKAGE.parent)) for p in paths]


CORE_FILES = _py_files("core")
ALL_FILES = sorted(PACKAGE.rglob("*.py"))


def test_the_walk_finds_the_core() -> None:
    """The layering checks below are not vacuous: the core modules are found and parsed."""
    # Arrange
    expected = {"model", "ids", "events", "commands", "engine", "protect", "reconcile"}

    # Act
    names = {p.stem for p in CORE_FILES}

    # Assert
    assert expected <= names
    assert any(i.module == "dataclasses" for p in CORE_FILES for i in imports_of(p))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("from . import model", ["bot_cli.core", "bot_cli.core.model"],
                     id="from . import"),
        pytest.param("from .ids import client_id",
                     ["bot_cli.core.ids", "bot_cli.core.ids.client_id"], id="from .module import"),
        pytest.param("from .. import cli", ["bot_cli", "bot_cli.cli"], id="from .. import"),
        pytest.param("from ..store.codec import decode",
                     ["bot_cli.store.codec", "bot_cli.store.codec.decode"], id="from ..pkg.mod"),
        pytest.param("import os.path as p", ["os.path"], id="import dotted as"),
        pytest.param("from typing import Any", ["typing"], id="stdlib from-import"),
        pytest.param("def f():\n    import time", ["time"], id="import inside a function"),
    ],
)
def test_import_resolution(source: str, expected: list[str]) -> None:
    """Relative, dotted and nested imports are all resolved, so none escapes the checks."""
    # Arrange
    package = "bot_cli.core"

    # Act
    resolved = [i.module for i in imports_in(source, package)]

    # Assert
    assert resolved == expected


IO_CALLS = frozenset({"open", "exec", "eval", "input", "print", "__import__", "breakpoint"})


def core_violations(source: str, package: str = "bot_cli.core") -> list[str]:
    """What a core module does that core must not: imports beyond the allow-list, I/O calls."""
    imported = imports_in(source, package)
    outside = [
        f"line {i.line}: imports {i.module}" for i in imported
        if i.module not in CORE_STDLIB and not _under(i.module, "bot_cli.core")
    ]
    forbidden = [
        f"line {i.line}: imports {i.module} (I/O)" for i in imported
        if any(_under(i.module, f) for f in CORE_FORBIDDEN)
    ]
    calls = [
        f"line {n.lineno}: calls {n.func.id}()" for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in IO_CALLS
    ]
    return outside + forbidden + calls


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        pytest.param("from decimal import Decimal", False, id="decimal: allowed"),
        pytest.param("from collections.abc import Callable", False, id="collections.abc: allowed"),
        pytest.param("from bot_cli.core.model import Pending", False, id="core itself: allowed"),
        pytest.param("from . import ids", False, id="relative core import: allowed"),
        pytest.param("import asyncio", True, id="asyncio"),
        pytest.param("import httpx", True, id="httpx"),
        pytest.param("from websockets import connect", True, id="websockets"),
        pytest.param("from os import path", True, id="os"),
        pytest.param("import io", True, id="io"),
        pytest.param("from time import time", True, id="time"),
        pytest.param("import random", True, id="random"),
        pytest.param("import logging", True, id="logging"),
        pytest.param("from pathlib import Path", True, id="pathlib"),
        pytest.param("import socket", True, id="socket"),
        pytest.param("import json", True, id="json: not on the allow-list"),
        pytest.param("from bot_cli.store.codec import encode", True, id="store from core"),
        pytest.param("from .. import exchange", True, id="relative outer layer"),
        pytest.param("def f():\n    import time", True, id="import hidden in a function"),
        pytest.param("def f(p):\n    return open(p)", True, id="open() call"),
        pytest.param("print('x')", True, id="print() call"),
    ],
)
def test_core_checker_flags_what_it_must(source: str, flagged: bool) -> None:
    """The checker used on core/ flags each forbidden import and I/O call (and only those)."""
    # Arrange
    module = source

    # Act
    found = core_violations(module)

    # Assert
    assert bool(found) is flagged, found


@pytest.mark.parametrize("path", CORE_FILES, ids=_ids(CORE_FILES))
def test_core_is_pure(path: Path) -> None:
    """core/ imports only the stdlib allow-list and bot_cli.core, and never calls open()."""
    # Arrange
    source = path.read_text(encoding="utf-8")

    # Act
    found = core_violations(source, _package_of(path))

    # Assert
    assert found == []


def layer_violations(source: str, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of a module that reach into a forbidden layer."""
    return [
        f"line {i.line}: imports {i.module}" for i in imports_in(source, package)
        if any(_under(i.module, f) for f in forbidden)
    ]


@pytest.mark.parametrize(
    ("layer", "source", "flagged"),
    [
        pytest.param("exchange", "from bot_cli.core.model import Side", False,
                     id="exchange->core ok"),
        pytest.param("exchange", "from bot_cli.store.codec import encode", True,
                     id="exchange->store"),
        pytest.param("exchange", "from ..runtime import engine", True, id="exchange->runtime"),
        pytest.param("exchange", "import bot_cli.cli", True, id="exchange->cli"),
        pytest.param("store", "from bot_cli.core.model import Pending", False, id="store->core ok"),
        pytest.param("store", "from bot_cli.exchange.wire import parse", True,
                     id="store->exchange"),
        pytest.param("store", "from .. import runtime", True, id="store->runtime (relative)"),
        pytest.param("runtime", "from bot_cli.cli.views import LogView", True, id="runtime->cli"),
        pytest.param("runtime", "from bot_cli.paper import server", True, id="runtime->paper"),
        pytest.param("runtime", "from bot_cli.exchange.wire import OrderUpdate", False, id="runtime->exchange ok"),
        pytest.param("api", "from bot_cli.cli import render", True, id="api->cli"),
        pytest.param("inbox", "from ..runtime import driver", True, id="inbox->runtime (relative)"),
        pytest.param("inbox", "from bot_cli.ops.checks import Market", False, id="inbox->ops ok"),
        pytest.param("notify", "import bot_cli.cli.run", True, id="notify->cli"),
        pytest.param("paper", "from bot_cli.runtime.engine import ExecutionEngine", True, id="paper->runtime"),
        pytest.param("paper", "from bot_cli.store.atomic import replace_durable", False, id="paper->store ok"),
        pytest.param("ops", "import typer", True, id="ops->typer"),
        pytest.param("ops", "from bot_cli.cli.render import table", True, id="ops->cli"),
        pytest.param("ops", "from bot_cli.runtime.engine import ExecutionEngine", False, id="ops->runtime ok"),
    ],
)
def test_layer_checker_flags_what_it_must(layer: str, source: str, flagged: bool) -> None:
    """The checker used on each layer flags imports of the layers it must not use (and only those)."""
    # Arrange
    package = f"bot_cli.{layer}"

    # Act
    found = layer_violations(source, package, FORBIDDEN_LAYERS[layer])

    # Assert
    assert bool(found) is flagged, found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_LAYERS))
def test_layers_import_no_layer_above_or_beside_them(layer: str) -> None:
    """Each layer in FORBIDDEN_LAYERS imports none of the layers listed for it."""
    # Arrange
    files = _py_files(layer)

    # Act
    bad = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in files
        if (found := layer_violations(path.read_text(encoding="utf-8"), _package_of(path),
                                      FORBIDDEN_LAYERS[layer]))
    }

    # Assert
    assert bad == {}


@pytest.mark.parametrize("command", RENDER_ONLY)
def test_an_operator_command_parses_and_renders_only(command: str) -> None:
    """cli/<command>.py reaches no venue, engine or lock itself: bot_cli.ops does that."""
    # Arrange
    path = PACKAGE / "cli" / f"{command}.py"

    # Act
    found = layer_violations(path.read_text(encoding="utf-8"), "bot_cli.cli", ORCHESTRATION)

    # Assert
    assert found == []


def test_the_render_only_check_flags_orchestration() -> None:
    """The check above is not vacuous: a command that connects or locks is flagged."""
    # Arrange
    sources = ["from bot_cli.connect import connect", "from bot_cli.runtime.engine import ExecutionEngine",
               "from bot_cli.state_store import DaemonLock", "from bot_cli.venue import VenueError"]

    # Act
    found = [layer_violations(s, "bot_cli.cli", ORCHESTRATION) for s in sources]

    # Assert
    assert all(found)


def test_only_the_entry_point_imports_the_cli() -> None:
    """Nothing imports bot_cli.cli except bot_cli/__main__.py and the cli package itself."""
    # Arrange
    exempt = {PACKAGE / "__main__.py", PACKAGE / "cli.py", *_py_files("cli")}

    # Act
    bad = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in ALL_FILES if path not in exempt
        if (found := layer_violations(path.read_text(encoding="utf-8"), _package_of(path),
                                      ("bot_cli.cli",)))
    }

    # Assert
    assert bad == {}


def test_core_never_imports_an_outer_layer() -> None:
    """No module of core imports store, exchange, runtime, cli, ops or paper (not even lazily)."""
    # Arrange
    outer = ("bot_cli.store", "bot_cli.exchange", "bot_cli.runtime", "bot_cli.cli",
             "bot_cli.ops", "bot_cli.paper", "bot_cli.state_store", "bot_cli.venue")

    # Act
    bad = [
        f"{path.name}:{i.line}: {i.module}"
        for path in CORE_FILES for i in imports_of(path)
        if any(_under(i.module, o) for o in outer)
    ]

    # Assert
    assert bad == []
