"""A monitor sees the one question that matters: is every position protected right now?

`bot run` with `[metrics] enabled`, scraped over HTTP as Prometheus would, while an entry's legs
are refused by a burst of 429s on the algo endpoint (the entry is bare), then once they land.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import cluster_at, free_port, wait_for
from tests.e2e.test_bracket import SYMBOL


pytestmark = pytest.mark.e2e


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).raise_for_status().text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def when(samples: Samples, condition: Callable[[Samples], bool]) -> Samples | None:
    return samples if condition(samples) else None


def bare(samples: Samples, name: str) -> float:
    key = (name, (("position_side", "BOTH"), ("side", "BUY"), ("symbol", SYMBOL)))
    return samples.get(key, -1.0)


def test_the_unprotected_gauge_shows_a_bare_entry_and_falls_to_zero_once_its_stop_is_live(tmp_path: Path) -> None:
    port = free_port()
    with cluster_at(tmp_path, position_mode="one-way") as c:
        with c.config.open("a") as f:
            f.write(f"\n[metrics]\nenabled = true\nport = {port}\n")
        c.set_price(SYMBOL, "97000")
        c.start_daemon()
        assert c.daemon_lines(f"metrics on http://127.0.0.1:{port}/metrics")
        c.add_faults("rate_limit_429:algoOrder@POST")

        c.enter_async(SYMBOL, "buy", "0.010", sl="90000", tp="99000")  # a market entry: filled at once

        seen = wait_for(lambda: when(scrape(port), lambda s: bare(s, "botcli_unprotected_quantity") > 0),
                        "the unprotected gauge to show the bare entry")  # fmt: skip
        assert seen is not None
        assert bare(seen, "botcli_unprotected_quantity") == 0.010
        wait_for(lambda: bare(scrape(port), "botcli_unprotected_seconds") > 0.5, "the bare seconds to count")
        assert seen[("botcli_conditional_orders_limit", ())] == 200

        c.clear_faults()
        after = wait_for(lambda: when(scrape(port), lambda s: bare(s, "botcli_unprotected_quantity") == 0),
                         "the gauge back to 0 once the stop-loss is live")  # fmt: skip
        assert after is not None
        assert bare(after, "botcli_unprotected_seconds") == 0
        assert after[("botcli_fill_to_protection_seconds_count", ())] >= 1
        assert after[("botcli_fill_to_protection_seconds_sum", ())] > 0.5  # it waited out the 429s
        assert after[("botcli_entries", (("state", "PROTECTED"),))] == 1
        assert after[("botcli_stream_connected", ())] == 1
        c.collect_enters()
        # every metric the shipped alert rules name is one the daemon exports
        rules = (Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml").read_text(encoding="utf-8")
        named = set(re.findall(r"\bbotcli_[a-z_]+", rules))
        assert named
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        exported = {family.name for family in text_string_to_metric_families(text)}  # with or without samples
        assert named <= exported, named - exported


def test_a_metrics_port_that_is_taken_stops_bot_run_with_one_line(tmp_path: Path) -> None:
    with cluster_at(tmp_path, position_mode="one-way") as c:
        with c.config.open("a") as f:
            f.write(f"\n[metrics]\nenabled = true\nport = {c.port}\n")  # the venue's own port

        run = c.spawn_cli("run-taken", "run", "--no-live")
        code = run.popen.wait(30)

        errors = [line for line in run.log().splitlines() if line.startswith("error:")]
        assert code == 1
        assert errors == [f"error: cannot listen on 127.0.0.1:{c.port} (Address already in use): set metrics.port"]
