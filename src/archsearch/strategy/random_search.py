"""Random search: uniform samples from the space, never a repeat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.space.base import SpaceTooLarge
from archsearch.space.genotype import Genotype
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial

#: Rejection sampling gives up after this many repeats in a row and lists what is left.
_MAX_REJECTIONS = 64


class RandomSearch(Strategy):
    """Sample uniformly; skip architectures already evaluated or pending.

    When the space is nearly exhausted, rejection sampling would spin, so the strategy
    enumerates what is left and picks among it; it returns None once nothing is left.
    """

    name = "random"

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        seen = seen_keys(trials)
        if len(seen) >= self.space.size():
            return None
        for _ in range(_MAX_REJECTIONS):
            genotype = self.space.sample(rng)
            if self.space.key(genotype) not in seen:
                return genotype
        try:
            left = [g for g in self.space.enumerate() if self.space.key(g) not in seen]
        except SpaceTooLarge:
            return genotype  # a huge space that keeps repeating: let the study dedupe it
        return left[int(rng.integers(len(left)))] if left else None
