"""What a study optimises: one or more objectives (a metric and a direction) and optional
constraints (bounds on metrics), and how a trial's metrics are judged against them.

A single-objective study is the case of one objective.  Strategies compare *scores*: the
objective values oriented so that larger is better (the negated value of a minimised
objective).  A trial that breaks a constraint is complete but infeasible; its
``violation`` (the sum, over the broken bounds, of how far outside the bound the metric
lies, relative to the bound's size) orders infeasible trials for constrained domination
(Deb et al. 2002): a feasible trial beats an infeasible one, and of two infeasible ones
the smaller violation wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ConfigError

DIRECTIONS = ("maximize", "minimize")
_SHORT = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}


@dataclass(frozen=True)
class Objective:
    """A metric and whether larger (``maximize``) or smaller (``minimize``) is better."""

    metric: str
    direction: str = "maximize"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"an objective names a metric, got {self.metric!r}")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"objective {self.metric!r}: direction must be maximize or "
                              f"minimize, got {self.direction!r}")

    def oriented(self, value: float) -> float:
        """The score of a value: larger is better whatever the direction."""
        return value if self.direction == "maximize" else -value

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


@dataclass(frozen=True)
class Bound:
    """A constraint: ``metric`` must lie in ``[min, max]`` (either side may be open)."""

    metric: str
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise ConfigError(f"constraint on {self.metric!r}: give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigError(f"constraint on {self.metric!r}: min {self.min} > max {self.max}")

    def violation(self, value: float) -> float:
        """0 inside the bound; outside, the distance to it relative to the bound's size
        (absolute for a bound of 0), so that bounds in seconds and in parameters add up."""
        over = 0.0
        if self.max is not None and value > self.max:
            over = (value - self.max) / (abs(self.max) or 1.0)
        if self.min is not None and value < self.min:
            over = (self.min - value) / (abs(self.min) or 1.0)
        return over

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


def parse_objectives(spec: Any) -> tuple[Objective, ...]:
    """Objectives from a config or a call: an ``Objective``, a metric name (maximised), a
    ``"metric:max"`` / ``"metric:min"`` string, a mapping ``{metric, direction}``, or a
    list of these."""
    items = spec if isinstance(spec, Sequence) and not isinstance(spec, str) else [spec]
    out = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str):
            metric, _, direction = item.partition(":")
            if direction and direction not in _SHORT:
                raise ConfigError(f"objective {item!r}: write metric:max or metric:min")
            out.append(Objective(metric, _SHORT[direction or "max"]))
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - {"metric", "direction"})
            if unknown or "metric" not in item:
                raise ConfigError(f"an objective is {{metric: ..., direction: maximize|minimize}}, "
                                  f"got {dict(item)!r}")
            direction = _SHORT.get(str(item.get("direction", "maximize")), str(item.get("direction")))
            out.append(Objective(str(item["metric"]), direction))
        else:
            raise ConfigError(f"cannot read an objective from {item!r}")
    if not out:
        raise ConfigError("a study needs at least one objective")
    metrics = [o.metric for o in out]
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"an objective is named twice in {metrics}")
    return tuple(out)


def parse_constraints(spec: Mapping[str, Any] | Sequence[Bound] | None) -> tuple[Bound, ...]:
    """Constraints from ``{metric: {min: .., max: ..}}`` (or a list of ``Bound``)."""
    if spec is None:
        return ()
    if isinstance(spec, Mapping):
        out = []
        for metric, bound in spec.items():
            if not isinstance(bound, Mapping) or not set(bound) <= {"min", "max"}:
                raise ConfigError(f"constraint {metric!r}: expected {{min: ..., max: ...}}, "
                                  f"got {bound!r}")
            for key, value in bound.items():
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ConfigError(f"constraint {metric}.{key}: expected a number, got {value!r}")
            out.append(Bound(str(metric), bound.get("min"), bound.get("max")))
        return tuple(out)
    if all(isinstance(b, Bound) for b in spec):
        return tuple(spec)
    raise ConfigError(f"cannot read constraints from {spec!r}")


@dataclass(frozen=True)
class Assessment:
    """How one trial's metrics stand against the study's objectives and constraints."""

    values: tuple[float, ...]
    scores: tuple[float, ...]
    feasible: bool
    violation: float


def assess(metrics: Mapping[str, float], objectives: Sequence[Objective],
           constraints: Sequence[Bound]) -> Assessment | str:
    """The trial's objective values, scores and feasibility, or (a string) why it cannot
    be judged: an objective or constrained metric missing or not finite."""
    values = []
    for objective in objectives:
        if objective.metric not in metrics:
            reported = ", ".join(sorted(metrics)) or "nothing"
            return (f"objective {objective.metric!r} is missing from the estimator's metrics "
                    f"(it reported {reported})")
        value = float(metrics[objective.metric])
        if not math.isfinite(value):
            return f"objective {objective.metric!r} is {value}"
        values.append(value)
    violation = 0.0
    for bound in constraints:
        if bound.metric not in metrics:
            reported = ", ".join(sorted(metrics)) or "nothing"
            return (f"constrained metric {bound.metric!r} "
                    f"is missing from the estimator's metrics (it reported {reported})")
        violation += bound.violation(float(metrics[bound.metric]))
    scores = tuple(o.oriented(v) for o, v in zip(objectives, values, strict=True))
    return Assessment(tuple(values), scores, violation == 0.0, violation)
