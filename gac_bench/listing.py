"""Listings (`gac-bench methods | splits | weights`) that fit the terminal: a table when it fits, else one block per
row, the short fields on the first line and each long field wrapped and indented below."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence

SHORT_FIELD_CHARS = 24  # fields this short go on a row's first line


def terminal_width() -> int:
    """Columns of the terminal (COLUMNS where set), 100 when unknown."""
    return shutil.get_terminal_size((100, 24)).columns


def format_listing(rows: Sequence[Sequence[object]], headers: Sequence[str], width: int | None = None) -> str:
    """A github-style table when every line fits ``width``, else blocks that do."""
    from tabulate import tabulate

    width = width or terminal_width()
    table = tabulate(rows, headers=list(headers), tablefmt="github")
    if max(map(len, table.splitlines()), default=0) <= width:
        return table
    return "\n\n".join(_block([str(v) for v in row], headers, width) for row in rows)


def _block(values: list[str], headers: Sequence[str], width: int) -> str:
    short = [v for i, v in enumerate(values) if i == 0 or len(v) <= SHORT_FIELD_CHARS]
    first = "  ".join(short)
    lines = [first if len(first) <= width else textwrap.shorten(first, width)]
    for i, (head, value) in enumerate(zip(headers, values)):
        if i == 0 or len(value) <= SHORT_FIELD_CHARS or not value:
            continue
        lines += textwrap.wrap(f"{head}: {value}", width, initial_indent="    ", subsequent_indent="      ",
                               break_long_words=True, break_on_hyphens=False)  # fmt: skip
    return "\n".join(lines)
