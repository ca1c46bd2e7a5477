"""`bot pending drop` beside a daemon, through the real command line against `bot paper serve`.

Each interleaving is made deterministic by a hook at the moment it matters: the prompt (the
operator reading the question) or the drop's compare-and-swap. The "daemon" there is a second
PendingEntryStore on the state dir, and an order sent to the venue under the entry's client id.
What the drop decided on is what it archives, or nothing; with --force, what it cancels is what
the exchange shows once the question is answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer

from bot_cli.core.engine import request_entry, step
from bot_cli.core.events import EntryClaimed
from bot_cli.core.ids import make_pending_id
from bot_cli.core.model import EntrySpec, OrderType, Pending, Side
from bot_cli.state_store import PendingEntryStore
from bot_cli.store.codec import decode, encode
from tests.cli.test_cancel_close import order_status
from tests.cli.test_enter import SL, TP, Venue, bot, start_venue, stop_venue
from tests.e2e.harness import signed_send


pytestmark = pytest.mark.e2e
NOW = 1_764_000_000_000
SPEC = EntrySpec("BTCUSDT", Side.BUY, Decimal("0.010"), OrderType.LIMIT, Decimal(96000), Decimal(SL), Decimal(TP))
_entropy = itertools.count(1)  # one venue for the module: every entry has ids of its own


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    v = start_venue(tmp_path_factory.mktemp("venue"))
    yield v
    stop_venue(v)


def requested(state: Path) -> Pending:
    """An entry `bot enter` left for the daemon to send: REQUESTED, nothing on the exchange."""
    p, _ = request_entry(make_pending_id(NOW, next(_entropy)), SPEC, NOW, 5000)
    with PendingEntryStore(state) as store:
        store.save(p.pending_id, encode(p))
    return p


def daemon_claims(state: Path, p: Pending) -> None:
    """What `bot run` does with a REQUESTED entry: SUBMITTING on disk first, then the order."""
    with PendingEntryStore(state) as daemon:
        q, _ = step(p, EntryClaimed(p.pending_id), NOW + 10)
        assert daemon.update(p.pending_id, encode(q))


def send_entry_order(venue: Venue, p: Pending) -> None:
    """The entry order under its client id, resting below the market."""
    signed_send(venue.http, "POST", "/fapi/v1/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
        "price": "96000", "newClientOrderId": f"{p.pending_id}-e"})  # fmt: skip


def while_asked(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """The operator answers yes; ``meanwhile`` happens while the question is on the screen."""
    def confirm(text: str, *args: Any, **kwargs: Any) -> bool:
        meanwhile()
        return True

    monkeypatch.setattr(typer, "confirm", confirm)


def before_the_archive(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """``meanwhile`` happens once, just before the drop's compare-and-swap takes the lock."""
    real, todo = PendingEntryStore.remove_if, [meanwhile]

    def remove_if(
        self: PendingEntryStore, key: str, reason: str, *, expected: Mapping[str, Any],
        record: Mapping[str, Any] | None = None,
    ) -> bool:
        while todo:
            todo.pop()()
        return real(self, key, reason, expected=expected, record=record)

    monkeypatch.setattr(PendingEntryStore, "remove_if", remove_if)


def journal_status(state: Path, pid: str) -> str:
    with PendingEntryStore(state) as store:
        return decode(store.load_all()[pid]).status.value


def archive(state: Path) -> list[dict[str, Any]]:
    with PendingEntryStore(state) as store:
        return store.archived()


def test_a_claim_while_the_operator_reads_the_prompt_is_refused(
    venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTED when shown (safe: no --force needed), claimed by the daemon before the answer:
    exit 1, one line naming the entry and what it is now; the daemon's record stays, nothing is
    archived, nothing printed as dropped."""
    state = tmp_path / "state"
    p = requested(state)
    while_asked(monkeypatch, lambda: daemon_claims(state, p))
    code, out, err = bot(venue, state, "pending", "drop", p.pending_id)
    assert code == 1
    assert out == ""
    assert err == (f"error: {p.pending_id} changed while deciding (now SUBMITTING): nothing was dropped;"
                   " look again with `bot pending list`\n")
    assert journal_status(state, p.pending_id) == "SUBMITTING"
    assert archive(state) == []


def test_force_leaves_the_order_of_an_entry_the_daemon_claimed_alone(
    venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--force --yes, the daemon claims and sends the entry after the exchange was read, just
    before the archive: refused, and its order (the daemon's now) is not cancelled."""
    state = tmp_path / "state"
    p = requested(state)

    def claim_and_send() -> None:
        daemon_claims(state, p)
        send_entry_order(venue, p)

    before_the_archive(monkeypatch, claim_and_send)
    code, out, err = bot(venue, state, "pending", "drop", p.pending_id, "--force", "--yes")
    assert code == 1
    assert "cancelled" not in out
    assert err.startswith(f"error: {p.pending_id} changed while deciding (now SUBMITTING): nothing was dropped")
    assert err.count("\n") == 1
    assert order_status(venue, f"{p.pending_id}-e") == "NEW"
    assert journal_status(state, p.pending_id) == "SUBMITTING"
    assert archive(state) == []


def test_force_cancels_what_the_exchange_shows_after_the_prompt(
    venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal shows nothing working when the question is asked; an order under the entry's
    id appears while it is on the screen. The exchange is read after the answer: that order is
    cancelled, and the entry dropped."""
    state = tmp_path / "state"
    p = requested(state)
    while_asked(monkeypatch, lambda: send_entry_order(venue, p))
    code, out, err = bot(venue, state, "pending", "drop", p.pending_id, "--force")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"{p.pending_id}: cancelled on the exchange: {p.pending_id}-e"
    assert out.splitlines()[1].startswith(f"dropped 1: {p.pending_id} ")
    assert order_status(venue, f"{p.pending_id}-e") == "CANCELED"
    assert [(a["id"], a["rec"]["status"]) for a in archive(state)] == [(p.pending_id, "DROPPED")]
