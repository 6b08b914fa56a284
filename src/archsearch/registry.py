"""Names a config may use, mapped to the classes behind them.

Entries are import paths, resolved on use, so importing archsearch imports neither torch
nor the optional benchmark packages.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

SPACES = {
    "chain": "archsearch.space.chain:ChainSpace",
    "multi-branch": "archsearch.space.chain:MultiBranchSpace",
    "darts": "archsearch.space.cells:DartsSpace",
    "nb201": "archsearch.tabular.nb201:NB201Space",
    "nbgraph": "archsearch.tabular.nbgraph:NBGraphSpace",
}

STRATEGIES = {
    "random": "archsearch.strategy.random_search:RandomSearch",
    "grid": "archsearch.strategy.grid:GridSearch",
    "regularized-evolution": "archsearch.strategy.regularized_evolution:RegularizedEvolution",
    "evolution": "archsearch.strategy.evolution:Evolution",
    "reinforce": "archsearch.strategy.reinforce:Reinforce",
    "local-search": "archsearch.strategy.local_search:LocalSearch",
}

#: One-shot searches: they train a supernet instead of asking and telling, so the
#: ask/tell conformance suite (which iterates ``STRATEGIES``) does not apply to them.
#: ``archsearch run`` hands them to ``archsearch.oneshot.runner.run_oneshot``.
ONESHOT = ("darts", "gdas")
ONESHOT_STRATEGY = "archsearch.oneshot.runner:OneShotStrategy"

#: ``optuna:<sampler>`` drives an Optuna sampler (optional extra ``archsearch[optuna]``).
OPTUNA_PREFIX = "optuna:"
OPTUNA_STRATEGY = "archsearch.strategy.optuna_sampler:OptunaStrategy"

ESTIMATORS = {
    "training": "archsearch.estimation.training:TrainingEstimator",
    "nb201": "archsearch.tabular.nb201:NB201Estimator",
    "nbgraph": "archsearch.tabular.nbgraph:NBGraphEstimator",
}

EXECUTORS = {
    "serial": "archsearch.execution.base:SerialExecutor",
    "processes": "archsearch.execution.processes:ProcessExecutor",
    "ray": "archsearch.execution.ray_executor:RayExecutor",
}

KINDS = {"space": SPACES, "strategy": STRATEGIES, "estimator": ESTIMATORS, "executor": EXECUTORS}


def resolve(kind: str, name: str) -> Any:
    """The class registered as ``name``; a ValueError listing the known names otherwise."""
    table = KINDS[kind]
    if kind == "strategy" and name in ONESHOT:
        return functools.partial(_load(ONESHOT_STRATEGY), method=name)
    if kind == "strategy" and name.startswith(OPTUNA_PREFIX):
        cls = _load(OPTUNA_STRATEGY)
        sampler = name[len(OPTUNA_PREFIX):]
        _load("archsearch.strategy.optuna_sampler:check_sampler")(sampler)  # a clear ValueError
        return functools.partial(cls, sampler=sampler)
    if name not in table:
        known = sorted([*table, *ONESHOT]) if kind == "strategy" else sorted(table)
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    return _load(table[name])


def is_oneshot(strategy: str) -> bool:
    """Whether ``strategy`` names a one-shot search (not an ask/tell strategy)."""
    return strategy in ONESHOT


def _load(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)
