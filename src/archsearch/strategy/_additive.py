"""An additive model of fitness: one ridge regression over the space's one-hot encoding.

It says "an edge with a 3x3 convolution scores higher" and nothing subtler, which is what
a hill climber needs to try its most promising neighbour first.  The sufficient
statistics (X'X, X'y, sums) grow by one outer product per evaluated trial, so a refit is
one small linear solve however long the record, and a resumed study that replays the
record in the same order rebuilds the same model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype


class AdditiveModel:
    """Score ~ mean + the sum of one learned effect per (decision, value).

    ``ridge`` shrinks the effect of a value seen only a few times towards zero (so an
    unseen value is predicted at the mean).  Failed trials (-inf) are not added: they
    say nothing about the sizes of effects.
    """

    def __init__(self, space: SearchSpace, ridge: float = 1.0) -> None:
        self.space = space
        self.ridge = ridge
        self.count = 0
        self._gram: np.ndarray | None = None  # X'X
        self._moment = np.zeros(0)  # X'y
        self._sum_x = np.zeros(0)
        self._sum_y = 0.0
        self._weights: np.ndarray | None = None  # solved lazily, dropped on add

    def add(self, genotype: Genotype, score: float) -> None:
        if not np.isfinite(score):
            return
        x = self.space.encode(genotype).astype(np.float64)
        if self._gram is None:
            self._gram = np.zeros((x.size, x.size))
            self._moment, self._sum_x = np.zeros(x.size), np.zeros(x.size)
        self._gram += np.outer(x, x)
        self._moment += score * x
        self._sum_x += x
        self._sum_y += score
        self.count += 1
        self._weights = None

    def predict(self, genotypes: Sequence[Genotype]) -> np.ndarray | None:
        """Predicted score of each genotype relative to the mean score seen; None before
        two scores were added."""
        if self.count < 2 or self._gram is None:
            return None
        if self._weights is None:
            # Ridge on centred scores: X'(y - mean) = X'y - mean * sum(x).
            target = self._moment - (self._sum_y / self.count) * self._sum_x
            self._weights = np.linalg.solve(self._gram + self.ridge * np.eye(len(target)), target)
        if not genotypes:
            return np.zeros(0)
        return np.stack([self.space.encode(g) for g in genotypes]).astype(np.float64) @ self._weights
