"""The compatibility report: what the real clients' checks covered, printed after the run."""

from __future__ import annotations

from typing import Any

from tests.paper.compat import COMPAT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not COMPAT.calls:
        return
    terminalreporter.write_line(
        f"paper venue compatibility: {COMPAT.calls} calls checked against the official SDK's "
        f"models, {COMPAT.fields} fields validated strictly, "
        f"{len(COMPAT.mismatches)} mismatches"
    )
    for mismatch in COMPAT.mismatches:
        terminalreporter.write_line(f"  mismatch: {mismatch}")
