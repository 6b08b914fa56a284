"""What the benchmark-table estimators share: a table with one row per architecture, in
the order of ``space.enumerate()``, looked up by the architecture's index in the space."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from archsearch.estimation.base import Estimator, TrialContext
from archsearch.space.genotype import Genotype


@dataclass(frozen=True)
class TableOptimum:
    """What a benchmark table says is attainable, for regret: the best architecture by
    the search metric, its test value, and the best test value in the whole table."""

    genotype: Genotype
    val: float
    test_at_best_val: float
    best_test_genotype: Genotype
    best_test: float


class IndexedSpace(Protocol):
    """A space whose architectures are numbered like the rows of a table."""

    def index(self, genotype: Genotype) -> int: ...
    def from_index(self, index: int) -> Genotype: ...


class TableEstimator(Estimator):
    """Answers every architecture from a published table: no training, no randomness."""

    objective = "val_accuracy"
    direction = "maximize"
    space: IndexedSpace

    def __init__(self) -> None:
        self._key_index: dict[str, int] = {}  # memoised: the bench looks keys up often

    @abstractmethod
    def lookup_index(self, index: int) -> dict[str, float]:
        """The metrics of ``space.from_index(index)``."""

    @abstractmethod
    def objective_values(self) -> np.ndarray:
        """The objective of every architecture, indexed like ``space.enumerate()``."""

    def evaluate(self, genotype: Genotype, context: TrialContext | None = None
                 ) -> Mapping[str, float]:
        return self.lookup_index(self.space.index(genotype))

    def lookup_key(self, key: str) -> dict[str, float]:
        """The metrics of the architecture whose ``space.key`` is ``key`` (memoised)."""
        index = self._key_index.get(key)
        if index is None:
            index = self._key_index[key] = self.space.index(Genotype.from_json(key))
        return self.lookup_index(index)

    def oracle(self, test_metric: str = "test_accuracy") -> TableOptimum:
        """What the table says is attainable, for regret: the best architecture by the
        objective (ties broken by the better ``test_metric``, then the first), its test
        value, and the best test value of any architecture."""
        sign = 1.0 if self.direction == "maximize" else -1.0
        best, best_index = (-math.inf, -math.inf), 0
        best_test, best_test_index = -math.inf, 0
        for index in range(len(self.objective_values())):
            metrics = self.lookup_index(index)
            search, test = sign * metrics[self.objective], sign * metrics[test_metric]
            if (search, test) > best:
                best, best_index = (search, test), index
            if test > best_test:
                best_test, best_test_index = test, index
        return TableOptimum(self.space.from_index(best_index), sign * best[0], sign * best[1],
                            self.space.from_index(best_test_index), sign * best_test)

    def optimum(self) -> tuple[Genotype, float]:
        """The best architecture by the objective and its value (the first one, if tied)."""
        values = self.objective_values()
        best = int(np.argmax(values))
        return self.space.from_index(best), float(values[best])
