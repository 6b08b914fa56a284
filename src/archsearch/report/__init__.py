"""``archsearch report``: one self-contained HTML page per study, or per ``archsearch bench``
output directory, to look at a search rather than read it.

Plots are Plotly's (plotly.js's basic bundle, shipped in ``assets/``), its script inlined
so the page needs no network; architecture drawings are SVG that
``assets/diagram.js`` draws from the specs of ``archsearch.report.diagram``.

>>> from pathlib import Path
>>> from archsearch.report import write_report
>>> summary = write_report(Path("runs/digits.db"), Path("digits.html"))  # doctest: +SKIP
>>> summary.bytes, summary.trials  # doctest: +SKIP
(1234776, 20)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from archsearch.report.errors import ReportError

__all__ = ["ReportError", "ReportSummary", "write_report"]


@dataclass(frozen=True)
class ReportSummary:
    """What ``write_report`` wrote: the file, its size, and the trials it shows (a bench
    directory's: its runs)."""

    out: Path
    bytes: int
    trials: int


def write_report(path: Path, out: Path, *, study: str | None = None) -> ReportSummary:
    """Write the report of ``path`` (a study database, or an ``archsearch bench`` output
    directory) to ``out``.  ``study`` names the study of a database holding several.

    Raises ``ReportError`` for input it cannot read or an ``out`` it cannot write, in one
    line."""
    from archsearch.report.html import render

    path, out = Path(path), Path(out)
    if path.is_dir():
        if study is not None:
            raise ReportError(f"{path} is a bench output directory: it holds no named studies")
        from archsearch.report.bench_page import bench_page

        page = bench_page(path)
    else:
        from archsearch.report.study_data import load_study_record
        from archsearch.report.study_page import study_page

        page = study_page(load_study_record(path, study))
    data = render(page).encode("utf-8")
    _write(out, data)
    return ReportSummary(out=out, bytes=len(data), trials=page.trials)


def _write(out: Path, data: bytes) -> None:
    """Write whole or not at all: into a temporary file beside ``out``, then renamed, so a
    failure leaves no half page (nor a half-overwritten old one)."""
    if out.is_dir():
        raise ReportError(f"cannot write the report to {out}: it is a directory")
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, out)
    except OSError as err:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report to {out}: {err.strerror or err}") from None
