"""From a validated ``Config`` to live components and a ``Study``.

Components are built twice on the way: once without data (``check_components``, when
the config is loaded, so a bad setting is an error before any data loads), then with it.
A constructor gets the values archsearch supplies (``registry.INJECTED``: the space, the
seed, the dataset) only where its signature names them, so an estimator of a user's own
receives the dataset just as the training estimator does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from archsearch import registry
from archsearch.config import Component, Config
from archsearch.errors import ConfigError
from archsearch.estimation.base import Estimator
from archsearch.execution.base import Executor
from archsearch.space.base import SearchSpace
from archsearch.storage import Storage, open_storage
from archsearch.strategy.base import Strategy
from archsearch.study import Study


@dataclass
class Components:
    space: SearchSpace
    strategy: Strategy
    estimator: Estimator
    dataset: Any = None
    scheduler: Any = None


def component(kind: str, spec: Component, **injected: Any) -> Any:
    """The component ``spec`` names, built with its settings and the injected values."""
    target = registry.resolve(kind, spec.name)
    return registry.construct(kind, target, dict(spec.params), **injected)


def resolved_space(config: Config, modality: str | None) -> Component:
    """The config's space with what the data decides filled in: a space that takes a
    ``modality`` and was not given one gets the data's."""
    params = dict(config.space.params)
    target = registry.resolve("space", config.space.name)
    takes_modality = any(name == "modality" for name, _, _ in registry.settings(target))
    if modality is not None and "modality" not in params and takes_modality:
        params["modality"] = modality
    return Component(config.space.name, params)


def build_components(config: Config, dataset: Any = None, *,
                     modality: str | None = None) -> Components:
    """Space, strategy and estimator of ``config``; with ``dataset`` None (a check before
    loading data), ``modality`` stands in for the data's."""
    if dataset is not None:
        modality = dataset.modality
    space = component("space", resolved_space(config, modality))
    strategy = component("strategy", config.strategy, space=space, seed=config.study.seed,
                         dataset=dataset)
    estimator = component("estimator", config.estimator, space=space, dataset=dataset)
    scheduler = None if config.scheduler is None else component("scheduler", config.scheduler)
    return Components(space, strategy, estimator, dataset, scheduler)


def check_components(config: Config) -> None:
    """Build every component without data, so that a setting out of range is an error now,
    before any data loads."""
    modality = None
    if config.data is not None:
        from archsearch.data import peek_modality

        modality = peek_modality(config.data)
    build_components(config, None, modality=modality)
    build_executor(config)


def load_data(config: Config, progress: Callable[[int, int], None] | None = None) -> Any:
    if config.data is None:
        return None
    from archsearch.data import load_dataset  # numpy loaders only, no torch

    return load_dataset(config.data, progress=progress)


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


def build_study(config: Config, components: Components, storage: Storage | None = None) -> Study:
    """The study named in the config, resumed if the storage already holds it (with the
    same search configuration: anything else is refused)."""
    space = resolved_space(config, getattr(components.dataset, "modality", None))
    config = replace(config, space=space)  # record what the data decided, e.g. the modality
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
    return Study(
        components.space, components.strategy, components.estimator, storage,
        name=config.study.name, seed=config.study.seed,
        config={"search": config.search_part(), "full": config.to_dict()},
        trial_timeout=config.study.trial_timeout,
        stop_after_failures=config.study.stop_after_failures,
        objectives=config.study.objectives, constraints=config.study.constraints,
        dataset=components.dataset, scheduler=components.scheduler,
    )


def build_executor(config: Config) -> Executor:
    """The executor the config names (serial by default)."""
    executor: Executor = component("executor", config.executor)
    return executor
