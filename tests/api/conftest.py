"""A paper venue with BTCUSDT at 97,000 for the API's end-to-end tests (daemons started by each test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, cluster_at


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        c.set_price("BTCUSDT", "97000")
        yield c
