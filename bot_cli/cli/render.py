"""One renderer: rich tables for people, JSON for programs, plain columns for big lists.

Colour and styles follow https://no-color.org: with NO_COLOR set (non-empty) nothing
drawn here carries an ANSI style, not even bold or italic.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal


if TYPE_CHECKING:
    from rich.console import Console


RICH_ROW_LIMIT = 200  # beyond this a rich table costs more than it helps


def no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def console(stderr: bool = False, soft_wrap: bool = True) -> Console:
    from rich.console import Console  # rich only when something is drawn: listings start faster

    # rich's own NO_COLOR support drops colours but keeps bold and italic; no colour
    # system at all drops every style.
    colors: Literal["auto"] | None = None if no_color() else "auto"
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap, color_system=colors)


def print_json(payload: Any) -> None:
    """Indented for a person at a terminal, compact for a program."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(payload, indent=indent) + "\n")


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: dict[int, str] | None = None
) -> None:
    """A rich table on a terminal; aligned plain text otherwise or when it is long."""
    if sys.stdout.isatty() and len(rows) <= RICH_ROW_LIMIT:
        from rich.table import Table

        t = Table(title=title, title_justify="left")
        for h in headers:
            t.add_column(h)
        for row in rows:
            t.add_row(*row)
        console().print(t)
        return
    sys.stdout.write(plain(headers, rows))


def plain(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; a cell with several lines continues on the lines below its row."""
    if any("\n" in cell for row in rows for cell in row):
        rows = [line for row in rows for line in _unfold(row)]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers).rstrip()]
    lines.extend(fmt.format(*row).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


def _unfold(row: Sequence[str]) -> list[list[str]]:
    cells = [cell.split("\n") for cell in row]
    depth = max(len(c) for c in cells)
    return [[c[k] if k < len(c) else "" for c in cells] for k in range(depth)]


def error(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    from rich.markup import escape

    from bot_cli.errors import one_line

    console(stderr=True).print(f"[bold red]error:[/] {escape(one_line(message))}", markup=True)


def warn(message: str) -> None:
    from rich.markup import escape

    console(stderr=True).print(f"[yellow]warning:[/] {escape(message)}", markup=True)


_MINUTE_S, _HOUR_S, _DAY_S = 60, 3600, 86400


def end(code: int, note: str) -> None:
    """Leave as an entry's result says: 1 is an error (its note the line), another code exits
    with the note as a warning, 0 returns (after the note, if any)."""
    import typer

    from bot_cli.errors import BotError

    if code == 1:
        raise BotError(note)
    if note:
        warn(note)
    if code:
        raise typer.Exit(code)


def age(seconds: float) -> str:
    """Seconds below two minutes, minutes below two hours, hours below two days, then days."""
    if seconds < 2 * _MINUTE_S:
        return f"{seconds:.0f}s"
    if seconds < 2 * _HOUR_S:
        return f"{seconds / _MINUTE_S:.0f}m"
    if seconds < 2 * _DAY_S:
        return f"{seconds / _HOUR_S:.1f}h"
    return f"{seconds / _DAY_S:.1f}d"


def conventions(app: Any) -> None:
    """Help and usage errors drawn with rich only on a terminal (or with FORCE_COLOR); plain
    text otherwise, so a log or a pipe gets no boxes. NO_COLOR drops every style there too."""
    terminal = sys.stdout.isatty() and sys.stderr.isatty()
    if not (terminal or os.environ.get("FORCE_COLOR")):
        app.rich_markup_mode = None
        return
    if no_color():
        from typer import rich_utils

        rich_utils.COLOR_SYSTEM = None
