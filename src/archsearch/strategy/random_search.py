"""Random search: uniform samples from the space, never a repeat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archsearch.space.genotype import Genotype
from archsearch.strategy._history import random_unseen
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial


class RandomSearch(Strategy):
    """Sample uniformly; skip architectures already evaluated or pending.

    When the space is nearly exhausted, rejection sampling would spin, so the strategy
    enumerates what is left and picks among it; it returns None once nothing is left.
    """

    name = "random"

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        return random_unseen(self.space, seen_keys(trials), rng)
