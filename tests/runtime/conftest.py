"""Report the crash matrix's count in pytest's summary, where a quiet run still shows it.

The count is asserted, not only reported: each scenario run checks that it crashed once at
every boundary of its uncrashed run (commands + 1 points, tests/runtime/test_crash_matrix.py).
"""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.runtime.test_crash_matrix import CHECKED

    if CHECKED:
        terminalreporter.write_line(
            f"crash matrix: {sum(CHECKED)} crash points checked over {len(CHECKED)} scenario runs, "
            "every invariant held at every one"
        )
