"""The report's one error: input it cannot make a page of, or a page it cannot write."""

from __future__ import annotations

from archsearch.errors import ArchsearchError


class ReportError(ArchsearchError, ValueError):
    """Not a study database nor a bench output, no such study (or several and none named),
    or an output path that cannot be written; stated in one line."""
