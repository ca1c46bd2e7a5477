"""A paper venue belongs to the state dir it serves: a command with another state dir that finds
it on its port refuses in one line naming both, and neither moves its prices nor trades on it,
unless venue.rest_url names that venue on purpose."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import BOT, Cluster, cluster_at


pytestmark = pytest.mark.e2e


def bot(c: Cluster, state: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**c.env, "BOT_STATE_DIR": str(state), "BOT_CONFIG": str(config or c.config)}
    return subprocess.run([BOT, *args], env=env, cwd=c.root, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip


@pytest.mark.parametrize("args", [
    pytest.param(("paper", "price", "BTCUSDT", "3333"), id="bot paper price"),
    pytest.param(("enter", "BTCUSDT", "buy", "0.010", "--sl", "90000"), id="bot enter"),
])
def test_another_state_dirs_command_refuses_the_venue_naming_both(tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "a").mkdir()
    with cluster_at(tmp_path / "a") as c:
        # Arrange
        c.set_price("BTCUSDT", "97000")
        other = tmp_path / "b" / "state"

        # Act
        done = bot(c, other, *args)

        # Assert: one line naming the venue's state dir and this one; the venue untouched
        assert done.returncode == 1, done
        (line,) = done.stderr.splitlines()
        assert f"serves {(c.state_dir / 'paper').resolve()}, not this state dir's ({other / 'paper'})" in line
        assert "venue.rest_url" in line
        state = c.state()
        assert state["prices"]["BTCUSDT"] == "97000.00"
        assert state["openOrders"] == state["recentOrders"] == []
        assert not (other / "pending_entries.jsonl").exists()


def test_its_own_state_dir_uses_it_and_rest_url_names_it_on_purpose(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with cluster_at(tmp_path / "a") as c:
        own = bot(c, c.state_dir, "paper", "price", "BTCUSDT", "96000")
        named = tmp_path / "named.toml"
        named.write_text(c.config.read_text().replace("[venue]\n", f"[venue]\nrest_url = '{c.url}'\n", 1))
        on_purpose = bot(c, tmp_path / "b" / "state", "paper", "price", "BTCUSDT", "95000", config=named)

        assert own.returncode == 0, own.stderr
        assert on_purpose.returncode == 0, on_purpose.stderr
        assert c.state()["prices"]["BTCUSDT"] == "95000.00"
