"""The daemon's ears: what the user stream owes after a REST answer, and when it is deaf.

A REST answer that shows one of our orders changed means the stream owes a report of it. Owed
past DEAF_AFTER_MS with nothing heard about it: deaf. Any report of that id settles it; hearing
anything after being deaf says so once.
"""

from __future__ import annotations

from pathlib import Path

from bot_cli.runtime.ears import DEAF_AFTER_MS, Ears
from tests.fakes import FakeExchange
from tests.runtime.test_unclaimed import daemon_over


def test_an_owed_report_not_heard_in_time_makes_the_stream_deaf_once() -> None:
    ears = Ears()
    ears.expect("e1-sl1", sent_at=1_000, now=1_050)

    assert ears.check(1_050 + DEAF_AFTER_MS - 1) is False
    assert ears.check(1_050 + DEAF_AFTER_MS) is True
    assert ears.deaf
    assert ears.check(1_050 + DEAF_AFTER_MS + 1) is False  # said once


def test_the_owed_report_heard_in_time_settles_it() -> None:
    ears = Ears()
    ears.expect("e1-sl1", sent_at=1_000, now=1_050)

    assert ears.hear("e1-sl1", 1_060) == 0  # it was not deaf

    assert ears.check(1_050 + DEAF_AFTER_MS) is False
    assert ears.owed == {}


def test_a_report_heard_before_the_answer_owes_nothing() -> None:
    """The stream may beat the REST answer: heard after the send, nothing is owed."""
    ears = Ears()
    ears.hear("e1-sl1", 1_020)

    ears.expect("e1-sl1", sent_at=1_000, now=1_050)

    assert ears.owed == {}


def test_a_report_heard_before_the_send_does_not_count_for_it() -> None:
    ears = Ears()
    ears.hear("e1-sl1", 900)

    ears.expect("e1-sl1", sent_at=1_000, now=1_050)

    assert "e1-sl1" in ears.owed


def test_hearing_after_deaf_says_so_once_and_forgets_what_was_owed() -> None:
    ears = Ears()
    ears.expect("e1-sl1", sent_at=1_000, now=1_050)
    ears.expect("e2-sl1", sent_at=1_000, now=1_050)
    assert ears.check(1_050 + DEAF_AFTER_MS)

    assert ears.hear(None, 9_000) == 1_050 + DEAF_AFTER_MS  # deaf since then
    assert ears.hear(None, 9_001) == 0
    assert not ears.deaf
    assert ears.owed == {}


def test_ids_heard_long_ago_are_forgotten_and_recent_ones_kept() -> None:
    """Memory stays bounded over a day of reports; what was heard in the last minute is kept."""
    ears = Ears()
    for k in range(1_000):  # one report a second for 1,000 s
        ears.hear(f"e{k}-sl1", k * 1_000)

    assert len(ears.heard) < 200
    assert all(f"e{k}-sl1" in ears.heard for k in range(940, 1_000))


def test_the_daemon_tells_since_when_the_stream_was_deaf_when_it_speaks_again(tmp_path: Path) -> None:
    """The notice says how long it was deaf: the time it went deaf, not the time it spoke."""
    daemon, _ = daemon_over(tmp_path, FakeExchange())
    told: list[tuple[bool, int]] = []
    daemon.on_deaf = lambda deaf, since: told.append((deaf, since))
    daemon.ears.expect("e1-sl1", sent_at=1_000, now=1_050)
    assert daemon.ears.check(1_050 + DEAF_AFTER_MS)

    daemon._heard("e1-sl1", 60_000)

    assert told == [(False, 1_050 + DEAF_AFTER_MS)]
