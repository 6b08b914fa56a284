"""The names a config (or ``create_study``) may use for spaces, strategies, estimators,
executors and schedulers, and the classes behind them.

A name is one of:

* a built-in short name (the tables below; import paths, loaded on use, so importing
  archsearch imports neither torch nor the optional packages);
* a name another installed package adds through an entry point in the group
  ``archsearch.spaces`` / ``archsearch.strategies`` / ``archsearch.estimators`` /
  ``archsearch.executors`` / ``archsearch.schedulers``
  (``[project.entry-points."archsearch.strategies"]`` in its ``pyproject.toml``:
  ``my-search = "my_package.search:MySearch"``);
* a name given at run time with ``register(kind, name, target)``;
* an import path ``package.module:Class``.

A class may take a parameter from its name: ``optuna:tpe`` is ``OptunaStrategy`` with
``sampler="tpe"``, because ``OptunaStrategy.name_argument == "sampler"``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from archsearch.errors import ConfigError, MissingExtra

KINDS = ("space", "strategy", "estimator", "executor", "scheduler")

#: The entry-point group of each kind.
GROUPS = {kind: f"archsearch.{'strategies' if kind == 'strategy' else kind + 's'}"
          for kind in KINDS}

BUILTIN: dict[str, dict[str, str]] = {
    "space": {
        "chain": "archsearch.space.chain:ChainSpace",
        "multi-branch": "archsearch.space.chain:MultiBranchSpace",
        "darts": "archsearch.space.cells:DartsSpace",
        "nb201": "archsearch.space.nb201:NB201Space",
        "nbgraph": "archsearch.tabular.nbgraph:NBGraphSpace",
    },
    "strategy": {
        "random": "archsearch.strategy.random_search:RandomSearch",
        "grid": "archsearch.strategy.grid:GridSearch",
        "regularized-evolution": "archsearch.strategy.regularized_evolution:RegularizedEvolution",
        "bananas": "archsearch.strategy.bananas:Bananas",
        "gp-bo": "archsearch.strategy.gp_search:GaussianProcessSearch",
        "evolution": "archsearch.strategy.evolution:Evolution",
        "reinforce": "archsearch.strategy.reinforce:Reinforce",
        "local-search": "archsearch.strategy.local_search:LocalSearch",
        "parego": "archsearch.strategy.scalarized:ParEGO",
        "nsga2": "archsearch.strategy.nsga2:NSGA2",
        "zero-cost-ranked": "archsearch.strategy.proxy_ranked:ProxyRankedSearch",
        "optuna": "archsearch.strategy.optuna_sampler:OptunaStrategy",
        "darts": "archsearch.oneshot.search:DartsSearch",
        "gdas": "archsearch.oneshot.search:GdasSearch",
    },
    "estimator": {
        "training": "archsearch.estimation.training:TrainingEstimator",
        "nb201": "archsearch.tabular.nb201:NB201Estimator",
        "nbgraph": "archsearch.tabular.nbgraph:NBGraphEstimator",
        "zero-cost": "archsearch.estimation.zero_cost:ZeroCostEstimator",
    },
    "scheduler": {
        "median": "archsearch.fidelity.pruners:MedianPruner",
        "asha": "archsearch.fidelity.pruners:SuccessiveHalvingPruner",
        "successive-halving": "archsearch.fidelity.drivers:SuccessiveHalvingDriver",
        "hyperband": "archsearch.fidelity.drivers:HyperbandDriver",
    },
    "executor": {
        "serial": "archsearch.execution.base:SerialExecutor",
        "processes": "archsearch.execution.processes:ProcessExecutor",
        "ray": "archsearch.execution.ray_executor:RayExecutor",
    },
}

_RUNTIME: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}

T = TypeVar("T")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")


def register(kind: str, name: str, target: Any = None) -> Any:
    """Add ``name`` for ``target`` (a class, a factory, or an import path string) in this
    process.  Without ``target`` it is a class decorator:

    >>> from archsearch.strategy import RandomSearch
    >>> @register("strategy", "my-random")
    ... class MyRandom(RandomSearch):
    ...     pass
    >>> resolve("strategy", "my-random") is MyRandom
    True
    """
    _check_kind(kind)
    if target is None:
        def decorate(cls: T) -> T:
            _RUNTIME[kind][name] = cls
            return cls
        return decorate
    _RUNTIME[kind][name] = target
    return target


@functools.cache
def _entry_points(kind: str) -> dict[str, str]:
    """Names installed packages add, as ``name -> "module:attr"`` (read once)."""
    return {ep.name: ep.value for ep in entry_points(group=GROUPS[kind])}


def available(kind: str) -> dict[str, str]:
    """Every name of ``kind`` with where it comes from (an import path), sorted: built-in
    ones, then entry points, then names registered at run time; a later source wins."""
    _check_kind(kind)
    table = dict(BUILTIN[kind])
    table.update(_entry_points(kind))
    for name, target in _RUNTIME[kind].items():
        table[name] = target if isinstance(target, str) else _path_of(target)
    return dict(sorted(table.items()))


def resolve(kind: str, name: str) -> Any:
    """The class (or factory) ``name`` stands for; a ``ConfigError`` listing the known
    names when there is none, a ``MissingExtra`` when it needs a package not installed."""
    _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{kind}: expected a name, got {name!r}")
    if name in _RUNTIME[kind]:
        target = _RUNTIME[kind][name]
        return _load(target) if isinstance(target, str) else target
    table = available(kind)
    if name in table:
        return _load(table[name])
    head, sep, argument = name.partition(":")
    if sep and head in table:  # a registered name with an argument, optuna:tpe
        target = _load(table[head])
        parameter = getattr(target, "name_argument", None)
        if parameter is None:
            raise ConfigError(f"{kind} {head!r} takes no ':' argument (got {name!r})")
        return functools.partial(target, **{parameter: argument})
    if sep:  # an import path, package.module:Class
        return _load(name)
    raise ConfigError(f"unknown {kind} {name!r}; known: {', '.join(table)} "
                      "(or an import path package.module:Class)")


def _load(path: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{path!r} is not an import path of the form package.module:Class")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):  # the module itself is missing
            raise ConfigError(f"cannot import {module!r} (named by {path!r}): {error}") from None
        raise MissingExtra(f"{path} needs a package that is not installed: {error}") from None
    target: Any = loaded
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{module!r} has no {attr!r} (named by {path!r})")
        target = getattr(target, part)
    return target


def _path_of(target: Any) -> str:
    func = target.func if isinstance(target, functools.partial) else target
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


def settings(target: Any) -> list[tuple[str, str, str]]:
    """The settings a config may give ``target``: ``(name, type, default)`` for every
    constructor parameter but those archsearch supplies itself (``INJECTED``), taken from
    the signature (``"required"`` for a parameter without a default)."""
    preset: set[str] = set()
    if isinstance(target, functools.partial):
        preset = set(target.keywords)
        target = target.func
    out = []
    for name, parameter in inspect.signature(target).parameters.items():
        if name in INJECTED or name in preset or parameter.kind in (
                parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = parameter.annotation
        kind = annotation if isinstance(annotation, str) else getattr(
            annotation, "__name__", str(annotation))
        default = "required" if parameter.default is parameter.empty else repr(parameter.default)
        out.append((name, "" if annotation is parameter.empty else kind, default))
    return out


#: Constructor parameters archsearch supplies itself (from the study): a config may not
#: set them.  ``space``, ``seed`` and ``dataset`` go to strategies, ``space`` and
#: ``dataset`` to estimators, each only where its constructor declares them.
INJECTED = frozenset({"self", "space", "seed", "dataset"})


def construct(kind: str, target: Callable[..., T], params: dict[str, Any],
              **injected: Any) -> T:
    """``target(**injected, **params)``, passing only the injected values its signature
    names; a bad value is a ``ConfigError`` naming the component."""
    func = target.func if isinstance(target, functools.partial) else target
    accepted = inspect.signature(func).parameters
    given = {k: v for k, v in injected.items() if k in accepted}
    try:
        return target(**given, **params)
    except ConfigError:
        raise
    except ValueError as error:  # a setting out of range, said by the constructor
        raise ConfigError(f"{kind}: {error}") from None
