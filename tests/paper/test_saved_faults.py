"""Fault switches are part of the venue's saved state: a restart keeps them, one-shot actions are
not saved, a ``:once`` switch that fired stays gone, config switches are not doubled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from bot_cli.paper.server import start_in_process
from bot_cli.paper.service import PaperExchange
from bot_cli.paper.wal import durable_state
from tests.paper import ENTRY, KEY_HEADER, Clock, signed


def opened(tmp_path: Path, clock: Clock, **kwargs: Any) -> PaperExchange:
    exchange = PaperExchange(tmp_path, clock=clock, volatility=0.0, **kwargs)
    exchange.open()
    return exchange


def test_switches_survive_a_restart_and_one_shot_actions_are_not_saved(tmp_path: Path) -> None:
    """Switches set while running are on after a restart; drop_stream, expire_listen_key not."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    for spec in ("unknown_503:order", "drop_stream", "late_visibility:3", "expire_listen_key",
                 "slow_response:algoOrder#2:20", "lost_response:order:once", "drop_stream:30"):
        first.add_fault(spec)
    first.close()

    # Act
    second = opened(tmp_path, clock)

    # Assert
    kept = ["unknown_503:order", "late_visibility:3", "slow_response:algoOrder#2:20",
            "lost_response:order:once", "drop_stream:30"]
    assert second.faults.specs() == kept
    assert durable_state(tmp_path)["faults"] == kept
    second.close()


def test_clearing_is_saved_too(tmp_path: Path) -> None:
    """A clear reaches the disk at once: the restarted venue has no switch on."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    first.add_fault("unknown_503:order")
    first.clear_faults()
    on_disk = durable_state(tmp_path)["faults"]
    first.close()

    # Act
    second = opened(tmp_path, clock)

    # Assert
    assert on_disk == []
    assert second.faults.specs() == []
    second.close()


def test_switches_saved_in_the_snapshot_and_in_the_log_both_come_back(tmp_path: Path) -> None:
    """The first change of a run goes into the snapshot, later ones into the log: both reload."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    first.add_fault("timeout_1007:order")  # a log line (the open wrote the snapshot)
    first.close()
    second = opened(tmp_path, clock)  # its open writes a snapshot holding the switch
    second.add_fault("rate_limit_429:algoOrder")
    second.close()

    # Act
    third = opened(tmp_path, clock)

    # Assert
    assert third.faults.specs() == ["timeout_1007:order", "rate_limit_429:algoOrder"]
    third.close()


def test_config_switches_are_not_doubled_and_come_back_after_a_clear(tmp_path: Path) -> None:
    """Config faults are switched on at each start unless already on (saved), never twice."""
    # Arrange
    clock = Clock()
    config = ("late_visibility:2", "unknown_503:algoOrder")
    first = opened(tmp_path, clock, faults=config)
    first.close()
    second = opened(tmp_path, clock, faults=config)
    doubled = second.faults.specs()
    second.clear_faults()
    second.close()

    # Act
    third = opened(tmp_path, clock, faults=config)

    # Assert
    assert doubled == list(config)
    assert third.faults.specs() == list(config)
    third.close()


def test_a_once_switch_that_fired_is_gone_from_disk_before_the_answer(tmp_path: Path) -> None:
    """429 :once and lost-answer :once fire, and the saved list loses them before the client
    hears anything; a restart does not bring them back."""
    # Arrange
    clock = Clock()
    seen: dict[str, object] = {}

    async def main() -> None:
        handle = await start_in_process(tmp_path, volatility=0.0, clock=clock)
        try:
            handle.exchange.add_fault("rate_limit_429:time@GET:once")
            handle.exchange.add_fault("unknown_503:order:once")
            async with httpx.AsyncClient(base_url=handle.rest_url, headers=KEY_HEADER) as client:
                seen["429"] = (await client.get("/fapi/v1/time")).status_code
                seen["after_429"] = durable_state(tmp_path)["faults"]
                answer = await client.post(f"/fapi/v1/order?{signed(ENTRY, clock())}")
                seen["503"] = answer.status_code
                seen["after_503"] = durable_state(tmp_path)["faults"]
        finally:
            await handle.stop()

    # Act
    asyncio.run(main())
    again = opened(tmp_path, clock)

    # Assert
    assert (seen["429"], seen["after_429"]) == (429, ["unknown_503:order:once"])
    assert (seen["503"], seen["after_503"]) == (503, [])
    assert again.faults.specs() == []
    again.close()


def test_a_saved_switch_this_version_cannot_read_is_dropped_not_fatal(tmp_path: Path) -> None:
    """An unknown spec in the saved state is skipped; orders and other switches load."""
    # Arrange
    clock = Clock()
    first = opened(tmp_path, clock)
    first.add_fault("unknown_503:order")  # one log line after the open's snapshot
    first.close()
    log = tmp_path / "paper" / "exchange.log"
    text = log.read_text().replace('"unknown_503:order"', '"from_the_future:x","unknown_503:order"')
    log.write_text(text)

    # Act
    second = opened(tmp_path, clock)

    # Assert
    assert second.faults.specs() == ["unknown_503:order"]
    second.close()
