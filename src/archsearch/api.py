"""The short way in: ``create_study`` for a search written in Python, ``run`` for a YAML
config (what ``archsearch run`` does).

    import archsearch
    study = archsearch.create_study(space, strategy="local-search", storage="runs/my.db", seed=0)
    study.optimize(evaluate, trials=30)     # evaluate(genotype[, context]) -> float or dict
    print(study.best_trial.genotype)
    study = archsearch.run("examples/digits.yaml")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archsearch import registry
from archsearch.build import (
    build_components,
    build_executor,
    build_study,
    check_components,
    load_data,
)
from archsearch.config import Component, Config, check_params, load_config
from archsearch.errors import ConfigError
from archsearch.estimation.base import Estimator
from archsearch.execution.base import Executor
from archsearch.loop import Budget, Callback
from archsearch.space.base import SearchSpace
from archsearch.storage import Storage, open_storage
from archsearch.strategy.base import Strategy
from archsearch.study import Study


def _build(kind: str, spec: Any, params: Mapping[str, Any] | None, **injected: Any) -> Any:
    """A component from a registered name, an import path, a class, or an instance."""
    params = dict(params or {})
    if isinstance(spec, (str, type)) or callable(getattr(spec, "func", None)):
        target = registry.resolve(kind, spec) if isinstance(spec, str) else spec
        check_params(f"{kind} ({spec if isinstance(spec, str) else spec.__name__})", target,
                     params)
        return registry.construct(kind, target, params, **injected)
    if params:
        raise ConfigError(f"{kind} settings are for a {kind} given by name or class, "
                          f"not for an instance of {type(spec).__name__}")
    return spec


def create_study(
    space: SearchSpace | str,
    strategy: Strategy | str | type = "random",
    estimator: Estimator | Callable[..., Any] | str | type | None = None,
    *,
    storage: Storage | str | os.PathLike[str] | None = None,
    name: str = "study",
    seed: int = 0,
    objective: str | None = None,
    direction: str | None = None,
    objectives: Any = None,
    constraints: Any = None,
    data: Any = None,
    space_params: Mapping[str, Any] | None = None,
    strategy_params: Mapping[str, Any] | None = None,
    estimator_params: Mapping[str, Any] | None = None,
    trial_timeout: float | None = None,
    stop_after_failures: int = 5,
    scheduler: Any = None,
    scheduler_params: Mapping[str, Any] | None = None,
) -> Study:
    """A new study, or the stored one of that ``name`` resumed (the record's seed and
    objective must match).

    ``space``, ``strategy`` and ``estimator`` may each be a registered name (see
    ``archsearch list``), an import path ``package.module:Class``, a class, or an instance;
    names and classes are built with the ``*_params`` given and, where their constructor
    takes them, the space, the ``seed`` (given once, here) and the dataset.  ``estimator``
    may also be a plain function ``evaluate(genotype[, context]) -> float | {metric:
    value}``, or left out and given to ``optimize``.  ``data`` is a ``Dataset`` or what
    ``archsearch.data.load_dataset`` takes (``"digits"``, an image folder, a ``.npz``).
    ``storage`` is a SQLite path (None: in memory).  ``objectives`` (a list such as
    ``["val_accuracy:max", "flops:min"]``) makes a multi-objective study, ``constraints``
    (``{"params": {"max": 2e5}}``) bounds what is feasible.  ``scheduler`` (a name such as
    ``"asha"``, ``"median"``, ``"hyperband"``, a class, or an instance; see
    ``archsearch.fidelity``) spends the estimator's epochs on the promising trials.
    """
    dataset = data
    if isinstance(data, (str, os.PathLike)):
        from archsearch.data import load_dataset

        dataset = load_dataset(data)
    space_obj = _build("space", space, space_params)
    if not isinstance(space_obj, SearchSpace):
        raise ConfigError(f"space must be a SearchSpace, got {type(space_obj).__name__}")
    strategy_obj = _build("strategy", strategy, strategy_params, space=space_obj, seed=seed,
                          dataset=dataset)
    if getattr(strategy_obj, "seed", seed) != seed:
        raise ConfigError(f"the strategy was built with seed {strategy_obj.seed} but the study's "
                          f"seed is {seed}: give the seed once, here (a strategy given by name "
                          "or class is built with it)")
    estimator_obj: Any = estimator
    if isinstance(estimator, (str, type)):
        estimator_obj = _build("estimator", estimator, estimator_params, space=space_obj,
                               dataset=dataset)
    elif estimator_params:
        raise ConfigError("estimator_params are for an estimator given by name or class")
    scheduler_obj = None if scheduler is None else _build("scheduler", scheduler,
                                                         scheduler_params)
    store = storage if isinstance(storage, Storage) else open_storage(
        None if storage is None else Path(storage))
    return Study(space_obj, strategy_obj, estimator_obj, store, name=name, seed=seed,
                 objective=objective, direction=direction, objectives=objectives,
                 constraints=constraints, trial_timeout=trial_timeout,
                 stop_after_failures=stop_after_failures, dataset=dataset,
                 scheduler=scheduler_obj)


@dataclass
class PreparedRun:
    """A config made live: the study (holding its record's lease) and how to run it."""

    config: Config
    study: Study
    executor: Executor
    budget: Budget


def with_overrides(config: Config, *, storage: str | None = None, trials: int | None = None,
                   seed: int | None = None, timeout: float | None = None,
                   executor: str | None = None, workers: int | None = None) -> Config:
    """``config`` with the command line's overrides, and its storage defaulted to
    ``runs/<name>.db``.  ``workers`` alone asks for that many trials in flight: one is
    the serial executor, more the process executor."""
    overrides: dict[str, Any] = {"storage": storage, "trials": trials, "seed": seed,
                                 "timeout": timeout}
    study = replace(config.study, **{k: v for k, v in overrides.items() if v is not None})
    if study.storage is None:
        study = replace(study, storage=f"runs/{study.name}.db")
    config = replace(config, study=study)
    if executor is None and workers is None:
        return config
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    name = executor or config.executor.name
    if executor is None and name == "serial" and workers is not None and workers > 1:
        name = "processes"
    if executor is None and workers == 1 and name != "ray":
        name = "serial"
    params = dict(config.executor.params) if name == config.executor.name else {}
    if workers is not None:
        params["workers"] = workers
    if name == "serial":
        params.pop("workers", None)  # one at a time is what serial means
    check_params(f"executor ({name})", registry.resolve("executor", name), params)
    return replace(config, executor=Component(name, params))


def prepare(config: Config | str | os.PathLike[str], *,
            progress: Callable[[int, int], None] | None = None, **overrides: Any) -> PreparedRun:
    """Load and check ``config`` (every component is built once without data, so a bad
    setting is an error before any data loads), load its data, open its study."""
    if not isinstance(config, Config):
        config = load_config(Path(config))
    config = with_overrides(config, **overrides)
    check_components(config)
    dataset = load_data(config, progress)
    study = build_study(config, build_components(config, dataset))
    budget = Budget(trials=config.study.trials, seconds=config.study.timeout)
    return PreparedRun(config, study, build_executor(config), budget)


def run(config: Config | str | os.PathLike[str], *, callbacks: Iterable[Callback] = (),
        log: Callable[[str], None] | None = None, **overrides: Any) -> Study:
    """Run (or resume) the search a YAML config describes, as ``archsearch run`` does, and
    return its study.  ``overrides``: ``storage``, ``trials``, ``seed``, ``timeout``,
    ``executor``, ``workers``."""
    prepared = prepare(config, **overrides)
    with prepared.study as study:
        study.optimize(budget=prepared.budget, callbacks=callbacks, executor=prepared.executor,
                       max_retries=prepared.config.study.max_retries, log=log)
    return study
