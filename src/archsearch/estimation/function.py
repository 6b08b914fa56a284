"""A plain function as an estimator, as Optuna takes an objective function."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from archsearch.errors import ConfigError, TrialFailed
from archsearch.estimation.base import Estimator, TrialContext
from archsearch.space.genotype import Genotype


class FunctionEstimator(Estimator):
    """Wraps ``evaluate(genotype)`` or ``evaluate(genotype, context)``, which returns a
    number (recorded as the study's objective) or a mapping ``metric -> value`` (which
    must hold the objective).

    >>> est = FunctionEstimator(lambda g: len(g), objective="size")
    >>> est.evaluate(Genotype.of({"a": 1, "b": 2}), TrialContext(0, 0))
    {'size': 2.0}
    """

    def __init__(self, function: Callable[..., Any], objective: str = "val_accuracy",
                 direction: str = "maximize") -> None:
        if not callable(function):
            raise ConfigError(f"an estimator must be callable, got {type(function).__name__}")
        self.function = function
        self.objective = objective
        self.direction = direction
        self._takes_context = _positional_count(function) >= 2

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        result = (self.function(genotype, context) if self._takes_context
                  else self.function(genotype))
        if isinstance(result, Mapping):
            return result
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            return {self.objective: float(result)}
        raise TrialFailed(f"the evaluate function returned a {type(result).__name__}; return "
                          "a number or a mapping of metric name -> number")


def _positional_count(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: give it the genotype
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(1 for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
