"""The Python API without a venue: argument checks, keys used before, status, entries, requests.

Every case here must be answered before any connection is made, so the config points the
venue at a port nothing listens on: a test that tried to connect would fail loudly.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from bot_cli import api
from bot_cli.api import AsyncClient, Client, EntryRefused, NothingToDoError, Side, Status, UnknownEntryError
from bot_cli.config import Config, PaperConfig, VenueConfig
from bot_cli.core.model import EntrySpec, OrderType
from bot_cli.ops import enter as flow
from bot_cli.runtime import heartbeat
from bot_cli.state_store import DaemonLock, PendingEntryStore
from bot_cli.store import requests
from tests.inbox import claim_key, keys_written


NOWHERE = Config(venue=VenueConfig(rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9"))
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.MARKET, None,
                 Decimal(90000), Decimal(99000))  # fmt: skip


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_public_surface_is_what_the_docs_name() -> None:
    assert sorted(api.__all__) == sorted(
        ["AsyncClient", "Client", "DaemonStatus", "Entry", "EntryRefused", "NothingToDoError", "RequestResult",
         "Side", "Status", "UnknownEntryError"]
    )  # fmt: skip
    assert all(getattr(api, name) for name in api.__all__)


def test_bot_enter_and_the_api_follow_for_the_same_time() -> None:
    """`bot enter --timeout`'s default is spelled out in the CLI (to keep it light)."""
    cli_enter = importlib.import_module("bot_cli.cli.enter")  # the package exports the command
    assert cli_enter.FOLLOW_S == flow.FOLLOW_S
    assert cli_enter.EXIT_UNWATCHED == flow.EXIT_UNWATCHED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"quantity": 0.01}, "quantity", id="a float quantity (money is exact)"),
        pytest.param({"stop_loss": 90000.5}, "stop_loss", id="a float stop-loss"),
        pytest.param({"quantity": "ten"}, "quantity", id="not a number"),
        pytest.param({"quantity": "0"}, "quantity", id="zero"),
        pytest.param({"take_profit": "-1"}, "take_profit", id="negative"),
        pytest.param({"price": "NaN"}, "price", id="NaN"),
        pytest.param({"side": "long"}, "side", id="side"),
        pytest.param({"symbol": ""}, "symbol", id="empty symbol"),
        pytest.param({"key": ""}, "key", id="empty key"),
        pytest.param({"key": "a\nb"}, "key", id="unprintable key"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field_and_nothing_is_written(
    tmp_path: Path, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"symbol": "BTCUSDT", "side": "buy", "quantity": "0.010",
                               "stop_loss": "90000", **kwargs}  # fmt: skip
    with pytest.raises(EntryRefused) as refused:
        Client(tmp_path / "state", NOWHERE).enter(**args)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "state").exists()


def test_a_key_used_before_returns_its_entry_and_sends_nothing(tmp_path: Path) -> None:
    """No connection is made (the venue is nowhere): the first entry comes back as it stands."""
    with PendingEntryStore(tmp_path) as store:
        first = claim_key(store, "k", SPEC, now_ms()).pending

    again = Client(tmp_path, NOWHERE).enter("ETHUSDT", Side.SELL, "1", stop_loss="5000", key="k")

    assert again.duplicate
    assert again.id == first.pending_id
    assert (again.symbol, again.status) == ("BTCUSDT", Status.REQUESTED)
    assert again.quantity == Decimal("0.010")
    assert again.note == f"key 'k' was used by entry {first.pending_id} already: nothing was sent"
    assert len(keys_written(tmp_path)) == 1


def test_an_entry_that_would_net_against_another_is_refused_before_its_key_is_spent(tmp_path: Path) -> None:
    """A BUY waits REQUESTED on BTCUSDT (one-way); a SELL there is refused, naming the side."""
    with PendingEntryStore(tmp_path) as store:
        buy = claim_key(store, "first", SPEC, now_ms()).pending
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    paper = Config(paper=PaperConfig(port=port, volatility=0.0))

    with pytest.raises(EntryRefused) as refused:
        Client(tmp_path, paper).enter("BTCUSDT", "sell", "0.010", stop_loss="120000", key="second")

    assert refused.value.field == "side"
    assert f"BUY entry {buy.pending_id} (REQUESTED)" in str(refused.value)
    assert [line["key"] for line in keys_written(tmp_path)] == ["first"]
    with PendingEntryStore(tmp_path) as store:
        assert list(store.load_all()) == [buy.pending_id]


def test_status_without_a_daemon(tmp_path: Path) -> None:
    with PendingEntryStore(tmp_path) as store:
        claim_key(store, "k", SPEC, now_ms())

    status = Client(tmp_path, NOWHERE).status()

    assert not status.running
    assert status.pid is None
    assert status.entries == {"REQUESTED": 1}
    assert status.not_connected == "no daemon (`bot run`) is running"


def test_status_with_a_daemon_reads_its_heartbeat(tmp_path: Path) -> None:
    """The lock holder wrote the heartbeat: its venue and stream; an old one is stale."""
    beat = {"pid": os.getpid(), "venue": "paper", "stream": {"connected": True},
            "written_at": now_ms()}  # fmt: skip
    (tmp_path / heartbeat.NAME).write_text(json.dumps(beat))
    with DaemonLock(tmp_path):
        fresh = Client(tmp_path, NOWHERE).status()
        old = {**beat, "written_at": now_ms() - 60_000}
        (tmp_path / heartbeat.NAME).write_text(json.dumps(old))
        stale = Client(tmp_path, NOWHERE).status()
    gone = Client(tmp_path, NOWHERE).status()

    assert (fresh.pid, fresh.venue, fresh.stream_connected) == (os.getpid(), "paper", True)
    assert fresh.not_connected is None
    assert stale.not_connected is not None
    assert "heartbeat" in stale.not_connected
    assert not gone.running  # the heartbeat file is left, but nobody holds the lock


def test_entries_lists_the_journal_oldest_first(tmp_path: Path) -> None:
    with PendingEntryStore(tmp_path) as store:
        older = claim_key(store, "a", SPEC, now_ms() - 10).pending
        newer = claim_key(store, "b", SPEC, now_ms()).pending

    entries = Client(tmp_path, NOWHERE).entries()

    assert [e.id for e in entries] == [older.pending_id, newer.pending_id]
    assert entries[0].entry_client_id == f"{older.pending_id}-e"
    assert Client(tmp_path, NOWHERE).entry("bcnope00000000") is None
    assert Client(tmp_path / "none", NOWHERE).entries() == []


def test_a_request_without_a_daemon_waits_for_bot_run_and_says_so(tmp_path: Path) -> None:
    with PendingEntryStore(tmp_path) as store:
        pid = claim_key(store, "k", SPEC, now_ms()).pending.pending_id

    result = Client(tmp_path, NOWHERE).cancel(pid)

    assert (result.applied, result.verb) == (False, "cancel")
    assert result.entry is not None
    assert result.entry.id == pid
    assert result.note.startswith(f"no daemon is running: the cancel of {pid} waits")
    assert [(r.pending_id, r.verb) for r in requests.pending(tmp_path)] == [(pid, "cancel")]


@pytest.mark.parametrize(("verb", "words"), [
    pytest.param("cancel", "has nothing to cancel: its entry order is over (0.010 of 0.010 filled)",
                 id="cancel of a filled entry"),
    pytest.param("close", "nothing filled: nothing to close", id="close of an entry with nothing filled"),
])
def test_a_request_that_would_do_nothing_is_refused_as_the_cli_refuses_it(
    tmp_path: Path, verb: str, words: str
) -> None:
    from bot_cli.core.engine import step
    from bot_cli.core.events import EntryAccepted, EntryFilled
    from bot_cli.store.codec import encode

    with PendingEntryStore(tmp_path) as store:
        p = claim_key(store, "k", SPEC, now_ms()).pending
        if verb == "cancel":
            p = replace(p, status=Status.SUBMITTING)
            p, _ = step(p, EntryAccepted(p.pending_id, 1), now_ms())
            p, _ = step(p, EntryFilled(p.pending_id, 1, SPEC.quantity, Decimal(64000)), now_ms())
            store.save(p.pending_id, encode(p))

    with pytest.raises(NothingToDoError) as refused:
        getattr(Client(tmp_path, NOWHERE), verb)(p.pending_id)

    assert words in str(refused.value)
    assert requests.pending(tmp_path) == []


def test_a_request_for_an_unknown_entry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownEntryError, match="no entry bcnope0000 in"):
        Client(tmp_path, NOWHERE).cancel("bcnope0000")
    assert requests.pending(tmp_path) == []


def test_an_unreadable_record_is_no_entry_for_the_api_and_no_traceback(tmp_path: Path) -> None:
    """A record the bot cannot decode: not listed, not found, and nothing is asked for it."""
    with PendingEntryStore(tmp_path) as store:
        good = claim_key(store, "k", SPEC, now_ms()).pending
        store.save("bcbroken00001", {"rv": 1, "symbol": "BTCUSDT", "status": "NOPE"})
    client = Client(tmp_path, NOWHERE)

    listed = [e.id for e in client.entries()]
    found = client.entry("bcbroken00001")
    with pytest.raises(UnknownEntryError):
        client.cancel("bcbroken00001")

    assert listed == [good.pending_id]
    assert found is None
    assert requests.pending(tmp_path) == []


def test_the_blocking_client_refuses_to_run_inside_an_event_loop(tmp_path: Path) -> None:
    import asyncio

    async def inside() -> None:
        Client(tmp_path, NOWHERE).close("bcnope0000")

    with pytest.raises(RuntimeError, match="use AsyncClient"):
        asyncio.run(inside())
    assert AsyncClient(tmp_path, NOWHERE).entries() == []


def test_the_client_is_bot_cli_client() -> None:
    import bot_cli
    from bot_cli.api import AsyncClient, Client

    assert (bot_cli.Client, bot_cli.AsyncClient) == (Client, AsyncClient)
