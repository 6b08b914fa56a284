"""What a report page holds, before it is HTML: the header's facts, the sections in order,
and the data the page's script draws from (figures, the trials table, architectures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    """One block of the page.  ``element`` is the id a browser test looks for (``#best-curve``);
    ``kind`` is ``plot`` (a figure in ``Page.data["figures"][element]``; without one, the
    block says ``empty``), ``drawings``, ``table`` or ``config``."""

    element: str
    heading: str
    kind: str = "plot"
    note: str = ""
    empty: str = "nothing to plot"


@dataclass
class Page:
    """A study's or a bench directory's report.  ``best_text`` goes into ``#best-value``
    (formatted as in the header), ``best_number`` into its ``data-value`` (full precision)."""

    title: str
    subtitle: str
    facts: list[tuple[str, str]]
    best_label: str
    best_text: str
    best_number: float | None
    sections: list[Section]
    config_text: str
    trials: int
    data: dict[str, Any] = field(default_factory=dict)
