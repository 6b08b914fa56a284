"""An additive model of fitness: one ridge regression over the space's one-hot encoding.

It says "an edge with a 3x3 convolution scores higher" and nothing subtler, which is what
a hill climber needs to try its most promising neighbour first.  Fitting 300 points of 30
features takes well under a millisecond, so it is refitted whenever it is needed, from
the record alone (a resumed study refits the same model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype


class AdditiveModel:
    """Score ~ mean + the sum of one learned effect per (decision, value)."""

    def __init__(self, space: SearchSpace, weights: np.ndarray) -> None:
        self.space = space
        self.weights = weights

    @classmethod
    def fit(
        cls, space: SearchSpace, scored: Sequence[tuple[Genotype, float]], ridge: float = 1.0,
    ) -> AdditiveModel | None:
        """Fit on (genotype, score) pairs; None without two finite scores.  Failed trials
        (-inf) are left out: they say nothing about the sizes of effects.  ``ridge`` shrinks
        the effect of a value seen only a few times towards zero."""
        finite = [(g, s) for g, s in scored if np.isfinite(s)]
        if len(finite) < 2:
            return None
        x = np.stack([space.encode(g) for g, _ in finite]).astype(np.float64)
        y = np.array([s for _, s in finite], dtype=np.float64)
        y -= y.mean()
        weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
        return cls(space, weights)

    def predict(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        """Predicted score of each genotype, relative to the mean of the fitted scores."""
        if not genotypes:
            return np.zeros(0)
        return np.stack([self.space.encode(g) for g in genotypes]).astype(np.float64) @ self.weights
