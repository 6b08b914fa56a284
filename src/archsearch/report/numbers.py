"""Numbers on their way into the page: rounded (a 10,000-trial report must stay small, and
nobody reads the ninth digit of an accuracy) and made JSON-safe (``JSON.parse`` rejects
``NaN``), and formatted for the header as ``archsearch show`` formats them."""

from __future__ import annotations

import math
from typing import Any

from archsearch.terminal import number

#: Significant digits kept for every number in the page's data.
DIGITS = 6


def rounded(value: Any, digits: int = DIGITS) -> float | int | None:
    """``value`` to ``digits`` significant digits; None for a missing or non-finite number
    (the page draws a gap).  Integers stay integers (parameter counts, epochs)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        real = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(real):
        return None
    if real == int(real) and abs(real) < 2**53:
        return int(real)
    return float(f"{real:.{digits}g}")


def formatted(value: float | None) -> str:
    """A metric as the header shows it: ``1,234,567`` for a large whole number, else six
    significant digits (enough to compare with the record)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return number(value, digits=6)


def seconds_text(seconds: float) -> str:
    """A duration a reader takes in at once: ``42.0 s``, ``12.5 min``, ``3.1 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
