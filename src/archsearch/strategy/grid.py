"""Grid search: every architecture of the space once, in enumeration order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial


class GridSearch(Strategy):
    """Walk the enumeration; ``shuffle=True`` walks a permutation fixed by the seed.

    Raises ``SpaceTooLarge`` (naming the size) at the first ask for a space too large to
    enumerate.  The walk is rebuilt from the record: it skips every key already seen, so
    a resumed study continues where it stopped.
    """

    name = "grid"

    def __init__(self, space: SearchSpace, seed: int = 0, shuffle: bool = False) -> None:
        super().__init__(space, seed)
        self.shuffle = shuffle
        self._walk: Iterator[Genotype] | None = None

    def _start(self) -> Iterator[Genotype]:
        if not self.shuffle:
            return self.space.enumerate()
        everything = list(self.space.enumerate())
        order = np.random.default_rng(self.seed).permutation(len(everything))
        return (everything[i] for i in order)

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        if self._walk is None:
            self._walk = self._start()
        seen = seen_keys(trials)
        for genotype in self._walk:
            if self.space.key(genotype) not in seen:
                return genotype
        return None
