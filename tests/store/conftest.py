"""Stores on one state dir with a fixed clock, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot_cli.state_store import PendingEntryStore


NOW_MS = 1_718_000_000_000

OpenStore = Callable[..., PendingEntryStore]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def open_store(state_dir: Path) -> Iterator[OpenStore]:
    """Open stores on the state dir (fixed clock) and close them after the test."""
    stores: list[PendingEntryStore] = []

    def open_(**kwargs: Any) -> PendingEntryStore:
        kwargs.setdefault("clock_ms", lambda: NOW_MS)
        store = PendingEntryStore(state_dir, **kwargs)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()
