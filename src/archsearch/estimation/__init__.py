"""Performance estimation: how good a candidate is, and at what cost.

The interface (``Estimator``, ``TrialContext``, ``TrialFailed``) is torch-free; the
training estimator and the cost metrics import torch, lazily, on first use, so a table
lookup never pays for it.
"""

from __future__ import annotations

import importlib
from typing import Any

from archsearch.estimation.base import (
    Estimator,
    Evaluation,
    TrialContext,
    TrialFailed,
    TrialTimeout,
)

_LAZY = {
    "TrainingEstimator": "archsearch.estimation.training",
    "count_flops": "archsearch.estimation.cost",
    "count_parameters": "archsearch.estimation.cost",
    "latency_stats": "archsearch.estimation.cost",
    "LatencyResult": "archsearch.estimation.cost",
    "FunctionEstimator": "archsearch.estimation.function",
}

__all__ = ["Estimator", "Evaluation", "TrialContext", "TrialFailed", "TrialTimeout", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archsearch.estimation' has no attribute {name!r}")
