"""YAML configuration: parsed once, at the edge, into small typed objects.

Every key is checked when the file is loaded: an unknown key, a wrong type or an
unknown space/strategy/estimator name is one ``ConfigError`` line naming it.  Component
parameters are checked against the constructor they will be passed to.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from archsearch import registry
from archsearch.errors import ConfigError
from archsearch.objectives import parse_constraints, parse_objectives


@dataclass(frozen=True)
class StudyConfig:
    name: str = "study"
    seed: int = 0
    storage: str | None = None
    trials: int | None = 20
    timeout: float | None = None
    trial_timeout: float | None = None
    max_retries: int = 2
    #: Stop when this many trials in a row, from the start of a run, fail for the same
    #: reason (0: never).
    stop_after_failures: int = 5
    #: What the study optimises (default: the estimator's own objective), e.g.
    #: ``[{metric: val_accuracy, direction: maximize}, {metric: flops, direction: minimize}]``
    #: or ``[val_accuracy:max, flops:min]``.
    objectives: list[Any] | None = None
    #: Bounds a feasible trial keeps: ``{latency_seconds: {max: 0.002}, params: {max: 2e5}}``.
    constraints: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.objectives is not None:
            parse_objectives(self.objectives)
        parse_constraints(self.constraints)
        for key, low in (("trials", 0), ("max_retries", 0), ("stop_after_failures", 0)):
            value = getattr(self, key)
            if value is not None and value < low:
                raise ConfigError(f"study.{key}: must be >= {low}, got {value}")
        for key in ("timeout", "trial_timeout"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"study.{key}: must be > 0 seconds, got {value}")


@dataclass(frozen=True)
class Component:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    study: StudyConfig
    space: Component
    strategy: Component
    estimator: Component
    data: str | None = None
    executor: Component = field(default_factory=lambda: Component("serial"))
    #: A multi-fidelity scheduler (``archsearch.fidelity``: median, asha, hyperband, ...).
    scheduler: Component | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML would spell it: ``parse_config(c.to_dict()) == c``."""
        out: dict[str, Any] = {"study": asdict(self.study), "data": self.data}
        for section in ("space", "strategy", "estimator", "executor", "scheduler"):
            component: Component | None = getattr(self, section)
            if component is not None:  # no scheduler: absent, so older records still match
                out[section] = {"name": component.name, **component.params}
        return out

    def search_part(self) -> dict[str, Any]:
        """What defines the search (not its budget or where it runs): must match to resume."""
        out = self.to_dict()
        out["study"] = {"seed": self.study.seed}
        for key in ("objectives", "constraints"):  # absent when not given: old records match
            if getattr(self.study, key) is not None:
                out["study"][key] = getattr(self.study, key)
        del out["executor"]
        return out


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence) \
            and origin is not str:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(
            _type_ok(v, args[0]) for v in value) if args else isinstance(value, (list, tuple))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True  # an annotation this checker does not model: the constructor decides


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")


def check_params(where: str, target: Any, params: Mapping[str, Any]) -> None:
    """Check ``params`` against the signature of ``target`` (a class or function)."""
    preset: set[str] = set()
    if isinstance(target, functools.partial):  # e.g. optuna:<sampler> presets the sampler
        preset = set(target.keywords)
        target = target.func
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    accepted = {n for n, p in signature.parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - registry.INJECTED - preset
    for key, value in params.items():
        if key not in accepted:
            raise ConfigError(f"{where}: unknown key {key!r}; accepted: {', '.join(sorted(accepted))}")
        if key in hints and not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{where}.{key}: expected {_describe(hints[key])}, got {value!r}")


def _component(section: str, raw: Any) -> Component:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"{section}: expected a mapping with a 'name' (or just a name)")
    params = {k: v for k, v in raw.items() if k != "name"}
    cls = registry.resolve(section, raw["name"])
    check_params(f"{section} ({raw['name']})", cls, params)
    return Component(raw["name"], params)


def _study(raw: Any) -> StudyConfig:
    if raw is None:
        return StudyConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("study: expected a mapping")
    hints = typing.get_type_hints(StudyConfig)
    known = {f.name for f in fields(StudyConfig)}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"study: unknown key {key!r}; accepted: {', '.join(sorted(known))}")
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"study.{key}: expected {_describe(hints[key])}, got {value!r}")
    return StudyConfig(**raw)


def parse_config(raw: Any) -> Config:
    """A validated ``Config`` from parsed YAML."""
    if not isinstance(raw, Mapping):
        raise ConfigError("the config must be a YAML mapping with space, strategy, estimator")
    allowed = {"study", "data", "space", "strategy", "estimator", "executor", "scheduler"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown top-level key {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}")
    for section in ("space", "strategy", "estimator"):
        if section not in raw:
            raise ConfigError(f"missing section {section!r}")
    data = raw.get("data")
    if data is not None and not isinstance(data, str):
        raise ConfigError(f"data: expected a dataset name or path, got {data!r}")
    config = Config(
        study=_study(raw.get("study")),
        space=_component("space", raw["space"]),
        strategy=_component("strategy", raw["strategy"]),
        estimator=_component("estimator", raw["estimator"]),
        data=data,
        executor=_component("executor", raw.get("executor", "serial")),
        scheduler=None if raw.get("scheduler") is None else _component("scheduler",
                                                                      raw["scheduler"]),
    )
    if config.estimator.name == "training" and config.data is None:
        raise ConfigError("data: the training estimator needs a dataset (e.g. data: digits)")
    return config


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(raw)
