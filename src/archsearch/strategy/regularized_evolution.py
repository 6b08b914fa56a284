"""Regularized (aging) evolution, Real et al. 2019.

The whole algorithm, as in the authors' notebook::

    population = P random architectures            # a FIFO queue
    repeat:
        sample = S members drawn with replacement  # a tournament
        parent = the best of sample
        child  = mutate(parent); evaluate it
        append child; remove the OLDEST member     # aging, not the worst

Removing the oldest rather than the worst is the "regularization": a model survives only
through descendants that keep scoring well, so a lucky evaluation cannot dominate forever.

Departures from the notebook: the default tournament is S = 10 of P = 20, tuned on
NAS-Bench-201 and NAS-Bench-Graph (benchmark seeds 1000-1099, kept apart from the seeds
that benchmarks/RESULTS.md reports; smaller tournaments, such as the S = 3 of the NB201
scripts' example, explore more and converge later); and a child already evaluated is
replaced by another mutation of the same parent (up to 8 tries) before the search walks
further away, so children stay one edit from their parent as long as that is cheap.

On a multi-objective study, or one with constraints once an infeasible trial arrives, the
tournament's winner is the sampled member in the best front under constrained
domination within the population, then the one with the largest crowding distance in its
front: NSGA-II's crowded comparison (Deb et al. 2002) in place of the scalar fitness.
Aging and mutation are unchanged.  A single-objective study without
infeasible trials keeps the scalar tournament above, draw for draw.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy._history import fitness, judgement, mutant, random_unseen, rank_and_crowding
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial


class RegularizedEvolution(Strategy):
    """Aging evolution with a population of ``population_size`` and tournaments of
    ``sample_size``; children come from the space's own ``mutate``.

    The population is the last ``population_size`` finished trials in finish order, so it
    is rebuilt exactly by replaying ``tell``.  Failed trials join it as the worst members
    (they still age out); repeats answered from the record (``cached``) do not join twice.
    A child whose key was already evaluated or is pending is replaced by another mutation
    of the parent (8 tries), then by mutations of the child (a short walk away from the
    parent); after 100 tries a random unseen architecture is proposed instead.

    With several objectives (or an infeasible trial) the tournament compares members by
    (constrained front, crowding distance) within the population, computed once per
    change of the population; ``population`` then reports the fitness of a trial without
    a single score, -inf.

    >>> from archsearch.space import ChainSpace
    >>> RegularizedEvolution(ChainSpace("vector"), seed=0, population_size=10).sample_size
    10
    """

    name = "regularized-evolution"
    multi_objective: ClassVar[bool] = True

    def __init__(
        self, space: SearchSpace, seed: int = 0, population_size: int = 20, sample_size: int = 10,
    ) -> None:
        super().__init__(space, seed)
        if population_size < 1 or sample_size < 1:
            raise ConfigError("population_size and sample_size must be >= 1, got "
                              f"{population_size} and {sample_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        # (fitness, genotype), oldest first; deque(maxlen) drops the oldest on append.
        self._population: deque[tuple[float, Genotype]] | None = None
        # Multi-objective or constrained: each member's (scores, violation), and the
        # population's tournament keys (front, -crowding), None until recomputed.
        self._judged: deque[tuple[tuple[float, ...] | None, float]] = deque(
            maxlen=population_size)
        self._pareto = False
        self._keys: list[tuple[int, float]] | None = None

    @property
    def population(self) -> list[tuple[float, Genotype]]:
        """The current members as (fitness, genotype), oldest first."""
        return list(self._members())

    def _members(self) -> deque[tuple[float, Genotype]]:
        if self._population is None:
            self._population = deque(maxlen=self.population_size)
        return self._population

    def tell(self, trial: FrozenTrial) -> None:
        if not trial.cached:
            self._members().append((fitness(trial), trial.genotype))
            self._judged.append(judgement(trial))
            self._keys = None
            if trial.scores is not None and (len(trial.scores) > 1 or not trial.feasible):
                self._pareto = True

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        population = self._members()
        seen = seen_keys(trials)
        # Until P architectures were started, the population is still being seeded.
        seeding = len(population) < self.population_size and len(trials) < self.population_size
        if seeding or not population:
            return random_unseen(self.space, seen, rng)
        drawn = rng.integers(len(population), size=self.sample_size)
        if self._pareto:
            keys = self._tournament_keys()
            parent = population[min(drawn, key=lambda i: keys[i])][1]
            return mutant(self.space, parent, seen, rng)
        parent = max((population[i] for i in drawn), key=lambda member: member[0])[1]
        return mutant(self.space, parent, seen, rng)

    def _tournament_keys(self) -> list[tuple[int, float]]:
        """Each member's (front, -crowding distance) within the population: smaller wins."""
        if self._keys is None:
            ranks, crowding = rank_and_crowding(list(self._judged))
            self._keys = [(int(r), -float(c)) for r, c in zip(ranks, crowding, strict=True)]
        return self._keys
