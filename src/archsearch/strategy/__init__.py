"""Search strategies: what to try next.  Each one is a small ask/tell class.

``Reinforce``, ``ProxyRankedSearch`` and ``Bananas`` (torch), ``GaussianProcessSearch``
(scikit-learn) and ``OptunaStrategy`` (the ``optuna`` extra) are imported on first use,
so importing this package imports none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

from archsearch.strategy.base import Strategy
from archsearch.strategy.evolution import Evolution
from archsearch.strategy.grid import GridSearch
from archsearch.strategy.local_search import LocalSearch
from archsearch.strategy.nsga2 import NSGA2
from archsearch.strategy.random_search import RandomSearch
from archsearch.strategy.regularized_evolution import RegularizedEvolution

_LAZY = {
    "Reinforce": "archsearch.strategy.reinforce",
    "OptunaStrategy": "archsearch.strategy.optuna_sampler",
    "ProxyRankedSearch": "archsearch.strategy.proxy_ranked",
    "Bananas": "archsearch.strategy.bananas",
    "GaussianProcessSearch": "archsearch.strategy.gp_search",
}

__all__ = ["NSGA2", "Evolution", "GridSearch", "LocalSearch", "RandomSearch",
           "RegularizedEvolution", "Strategy", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archsearch.strategy' has no attribute {name!r}")
