"""Tables and numbers that fit a narrow (80-column) terminal, for ``archsearch show`` and
the end of ``archsearch run``.

A table keeps one line per row: every column but the last is as wide as its widest value
(a header wraps at its spaces instead), and the last one (the architecture) gets the
width that is left, its text cut with ``…``.  ``show --json`` and the report keep every
number and the full architecture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich import box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

#: Cost metrics shown beside the objectives, where a trial recorded them.
COST_METRICS = ("params", "flops", "latency_seconds", "latency")
#: The last column never gets narrower than this, even when the terminal is too narrow.
MIN_LAST_WIDTH = 12

_HEADERS = {"val_accuracy": "val acc", "test_accuracy": "test acc",
            "latency_seconds": "latency", "train_seconds": "train s"}


def header(metric: str) -> str:
    """A metric's column title: ``test_accuracy`` -> ``test acc``."""
    return _HEADERS.get(metric) or metric.replace("accuracy", "acc").replace("_", " ")


def number(value: float, digits: int = 4) -> str:
    """``digits`` significant digits; whole numbers from 100 up with thousands separators."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def si(value: float) -> str:
    """A count with a k/M/G suffix and 3 significant digits: ``608576`` -> ``609k``."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return number(value)


def metric_text(metric: str, value: float) -> str:
    """How a table shows ``metric``: counts with a suffix, seconds of latency in ms,
    accuracies (fractions) with 4 decimals, anything else with 4 significant digits."""
    if metric in ("params", "flops"):
        return si(value)
    if metric.endswith("seconds") and metric.startswith("latency") and abs(value) < 1:
        return f"{value * 1e3:.3g}ms"
    if "accuracy" in metric and 0 <= value <= 1:
        return f"{value:.4f}"
    return number(value)


def room(headers: Sequence[str], rows: Sequence[Sequence[str | Text]], width: int) -> int:
    """What a ``fitted_table`` of ``width`` columns leaves for one more, last column
    after the columns ``headers`` holding ``rows``."""
    used = sum(_column_width(title, [row[k] for row in rows]) for k, title in enumerate(headers))
    return max(width - used - 2 * len(headers), MIN_LAST_WIDTH)  # columns sit 2 apart


def fitted_table(headers: Sequence[str], rows: Sequence[Sequence[str | Text]], width: int,
                 *, styles: Sequence[str | None] | None = None) -> Table:
    """A borderless table of ``rows`` at most ``width`` columns wide, one line per row
    (a cell of the last column may hold a second line, e.g. a failed trial's error)."""
    widths = [_column_width(title, [row[k] for row in rows])
              for k, title in enumerate(headers[:-1])]
    natural = max([cell_len(headers[-1]), *(_width(row[-1]) for row in rows)])
    widths.append(min(natural, room(headers[:-1], [row[:-1] for row in rows], width)))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  padding=(0, 1), header_style="bold")
    for k, (title, w) in enumerate(zip(headers, widths, strict=True)):
        last = k == len(headers) - 1
        table.add_column(title, width=w, no_wrap=last, overflow="ellipsis" if last else "fold")
    for k, row in enumerate(rows):
        cells = [cell if isinstance(cell, Text) else Text(cell) for cell in row]
        table.add_row(*cells, style=styles[k] if styles else None)
    return table


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    if cell_len(text) <= width:
        return text
    text = text[:width]
    while text and cell_len(text) > width - 1:
        text = text[:-1]
    return text + "…"


def _column_width(title: str, cells: Sequence[str | Text]) -> int:
    """The widest cell; a title wider than that wraps at its spaces."""
    longest_word = max((cell_len(word) for word in title.split()), default=1)
    return max([longest_word, *(_width(cell) for cell in cells)])


def _width(cell: str | Text) -> int:
    plain = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in plain.splitlines()), default=0)
