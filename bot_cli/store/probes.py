"""The verdicts of `bot probe`: what the venue's unwritten rules turned out to be on this account.

One JSON file in the state dir, ``probes.json``, atomically replaced: the latest verdict of each
probe on each venue (a verdict found on the testnet says nothing about the live venue, nor the
paper venue of another state dir). Features that depend on a rule read it here: the dead-man
switch arms on a live venue only after ``deadman`` saw the legs survive.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bot_cli.store.atomic import replace_durable


NAME = "probes.json"


class ProbesUnreadable(Exception):
    """probes.json exists but is not what this module writes."""


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str  # the probe: deadman, gte-gtc, stop-before-position
    verdict: str  # a short word, e.g. legs-survive
    detail: str  # one line: what was seen
    at: str  # when (UTC, ISO 8601)
    venue: str  # which venue it was found on (``venue_key``)


def venue_key(kind: str, rest_url: str, paper_id: str | None = None) -> str:
    """The venue a verdict belongs to: a paper venue by its state's id, Binance by its URL."""
    return f"paper {paper_id}" if kind == "paper" else f"binance {rest_url}"


def load(state_dir: Path) -> list[Verdict]:
    """Every saved verdict; none if the file is missing. Raises ProbesUnreadable if it is damaged."""
    try:
        data = json.loads((state_dir / NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise ProbesUnreadable(
            f"{state_dir / NAME} cannot be read ({err}): move it away and run `bot probe` again"
        ) from None
    try:
        return [Verdict(**row) for row in data["verdicts"]]
    except (KeyError, TypeError) as err:
        raise ProbesUnreadable(
            f"{state_dir / NAME} is not a verdict file ({err}): move it away and run `bot probe` again"
        ) from None


def on_venue(state_dir: Path, venue: str) -> dict[str, Verdict]:
    """The verdicts found on ``venue``, by probe name."""
    return {v.name: v for v in load(state_dir) if v.venue == venue}


def save(state_dir: Path, verdicts: list[Verdict]) -> None:
    """Keep the newest verdict per probe and venue."""
    new = {(v.venue, v.name) for v in verdicts}
    kept = [v for v in load(state_dir) if (v.venue, v.name) not in new] + verdicts
    rows = [asdict(v) for v in sorted(kept, key=lambda v: (v.venue, v.name))]
    replace_durable(state_dir / NAME, json.dumps({"verdicts": rows}, indent=1, sort_keys=True).encode())
