"""Report the crash matrix's count in pytest's summary, where a quiet run still shows it."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.runtime.test_crash_matrix import CHECKED

    if CHECKED:
        terminalreporter.write_line(
            f"crash matrix: {sum(CHECKED)} crash points checked over {len(CHECKED)} scenario runs, "
            "every invariant held at every one"
        )
