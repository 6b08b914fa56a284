"""From a validated ``Config`` to live components and a ``Study``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archsearch import registry
from archsearch.config import Config, ConfigError
from archsearch.estimation.base import Estimator
from archsearch.execution.base import Executor
from archsearch.space.base import SearchSpace
from archsearch.storage import Storage, StorageError, open_storage
from archsearch.strategy.base import Strategy
from archsearch.study import Study


@dataclass
class Components:
    space: SearchSpace
    strategy: Strategy
    estimator: Estimator
    dataset: Any = None


def build_components(
    config: Config, progress: Callable[[int, int], None] | None = None
) -> Components:
    dataset = None
    if config.data is not None:
        from archsearch.data import load_dataset  # imports torch-free numpy loaders only

        dataset = load_dataset(config.data, progress=progress)
    space_params = dict(config.space.params)
    if config.space.name in ("chain", "multi-branch") and dataset is not None:
        space_params.setdefault("modality", dataset.modality)
    space = registry.resolve("space", config.space.name)(**space_params)
    strategy = registry.resolve("strategy", config.strategy.name)(
        space, seed=config.study.seed, **config.strategy.params)
    estimator_cls = registry.resolve("estimator", config.estimator.name)
    if config.estimator.name == "training":
        estimator = estimator_cls(dataset=dataset, space=space, **config.estimator.params)
    else:
        estimator = estimator_cls(**config.estimator.params)
    return Components(space, strategy, estimator, dataset)


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return None if old == new else f"{path}: {old!r} -> {new!r}"


def build_study(
    config: Config, components: Components, storage: Storage | None = None
) -> Study:
    """The study named in the config, resumed if the storage already holds it."""
    storage = storage if storage is not None else open_storage(config.study.storage)
    if config.study.name in storage.study_names():
        stored = storage.load_study(config.study.name).config
        if "search" in stored:
            diff = _first_difference(stored["search"], config.search_part())
            if diff:
                raise ConfigError(
                    f"storage holds study {config.study.name!r} with another configuration "
                    f"({diff}); use a new storage path or study name"
                )
    try:
        return Study(
            components.space, components.strategy, components.estimator, storage,
            name=config.study.name, seed=config.study.seed,
            config={"search": config.search_part(), "full": config.to_dict()},
            trial_timeout=config.study.trial_timeout,
        )
    except StorageError as err:
        raise ConfigError(str(err)) from None


def build_executor(config: Config) -> Executor:
    """The executor the config names (serial by default)."""
    return registry.resolve("executor", config.executor.name)(**config.executor.params)
