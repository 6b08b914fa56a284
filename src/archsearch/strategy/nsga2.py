"""NSGA-II, Deb, Pratap, Agarwal & Meyarivan, "A fast and elitist multiobjective genetic
algorithm: NSGA-II", IEEE Transactions on Evolutionary Computation 6(2), 2002.

    population = N random architectures
    repeat (one generation):
        N children, each: a binary tournament on (constrained front, crowding distance)
            picks a parent; with probability `crossover_rate` a second tournament picks
            another and the child is their crossover, else it is a mutation of the
            parent; evaluate them
        population = the best N of population + children (elitist, "mu + lambda"):
            whole fronts under constrained domination, the last one cut by crowding
            distance, the lonelier members kept

Constrained domination is the paper's section IV: a feasible architecture beats an
infeasible one, and of two infeasible ones the smaller constraint violation wins
(``archsearch.pareto.constrained_ranks``).  Crossover and mutation are the space's own
operators, so it runs on any space.  On a single-objective study it is an elitist genetic
algorithm with binary tournaments.

Departures from the paper, whose operators are real-coded (simulated binary crossover,
then polynomial mutation of every child): a child is a crossover *or* a mutation, and a
crossover child already evaluated or pending is mutated (``unseen_or_mutant``).  The
space's ``mutate`` makes one edit, the discrete counterpart of the paper's per-variable
mutation rate of 1/n; applied after every crossover as well, it made the search worse in
tuning runs on NAS-Bench-201 (accuracy against FLOPs, seeds 1000-1049, kept apart from
the seeds benchmarks/RESULTS.md reports).

Defaults: a population of N = 20 with generations of 20 children, and the paper's
``crossover_rate`` of 0.9.  Deb used N = 100 for continuous test problems evaluated by
the tens of thousands; a NAS budget of 100-300 queries would run one to three such
generations.  N = 20 runs 14 generations in 300 queries and still covers a two-objective
front (NAS-Bench-201's accuracy-FLOPs front has 17 architectures); in the same tuning
runs, populations of 10 to 30 were within noise of each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy._history import (
    mutant,
    random_unseen,
    rank_and_crowding,
    unseen_or_mutant,
)
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial


class _Member(NamedTuple):
    birth: int  # order in which it finished: larger is younger
    genotype: Genotype
    scores: tuple[float, ...] | None  # None: the trial failed
    violation: float


class NSGA2(Strategy):
    """NSGA-II over any space, for any number of objectives (one included), with
    constraints by constrained domination.

    The first ``population_size`` finished trials are the initial population (random
    architectures never seen before); every further ``population_size`` finished trials are
    one generation's children, and the next population is chosen when the last of them
    finishes.  Generations are counted in finish order, so replaying ``tell`` rebuilds the
    same populations, and the tournaments draw on the ask's ``rng``: a resumed study
    proposes what an uninterrupted one would.  Failed trials form the last front (they are
    kept only when nothing better fills the population); repeats answered from the record
    (``cached``) are not counted.  A child already evaluated or pending is mutated again
    (``unseen_or_mutant``); asks made while a generation's children are still running (in
    parallel) breed more children from the same population.

    >>> from archsearch.space import ChainSpace
    >>> NSGA2(ChainSpace("vector"), seed=0).get_params()
    {'seed': 0, 'population_size': 20, 'crossover_rate': 0.9}
    """

    name = "nsga2"
    multi_objective: ClassVar[bool] = True

    def __init__(
        self, space: SearchSpace, seed: int = 0, population_size: int = 20,
        crossover_rate: float = 0.9,
    ) -> None:
        super().__init__(space, seed)
        if population_size < 2:
            raise ConfigError(f"population_size must be >= 2, got {population_size}")
        if not 0.0 <= crossover_rate <= 1.0:
            raise ConfigError(f"crossover_rate must be in [0, 1], got {crossover_rate}")
        self.population_size = population_size
        self.crossover_rate = crossover_rate
        self._born = 0
        self._generation = 0
        self._population: list[_Member] = []
        self._children: list[_Member] = []
        # The population's tournament keys, set when it is formed: front, -crowding.
        self._keys: list[tuple[int, float]] = []

    @property
    def generation(self) -> int:
        """Completed generations (0 while the initial population is evaluated)."""
        return self._generation

    @property
    def population(self) -> list[tuple[tuple[float, ...] | None, Genotype]]:
        """The current members as (scores, genotype), best first (front, then crowding
        distance); empty until the initial population has finished."""
        return [(m.scores, m.genotype) for m in self._population] if self._keys else []

    # -- the record ------------------------------------------------------------------------
    def tell(self, trial: FrozenTrial) -> None:
        if trial.cached:
            return
        member = _Member(self._born, trial.genotype, trial.scores, trial.violation)
        self._born += 1
        if not self._keys:  # the initial population
            self._population.append(member)
            if len(self._population) == self.population_size:
                self._select(self._population)
            return
        self._children.append(member)
        if len(self._children) == self.population_size:
            self._select(self._population + self._children)
            self._children = []
            self._generation += 1

    def _select(self, pool: list[_Member]) -> None:
        """Elitist survival: the ``population_size`` best of ``pool`` by front, then
        crowding distance within the front (ties: the younger survives)."""
        ranks, crowding = rank_and_crowding([(m.scores, m.violation) for m in pool])
        order = sorted(range(len(pool)),
                       key=lambda i: (ranks[i], -crowding[i], -pool[i].birth))
        kept = order[: self.population_size]
        self._population = [pool[i] for i in kept]
        self._keys = [(int(ranks[i]), -float(crowding[i])) for i in kept]

    # -- proposals ---------------------------------------------------------------------------
    def _tournament(self, rng: np.random.Generator) -> Genotype:
        """Binary tournament: of two distinct members drawn at random, the one in the
        better front, else the lonelier (crowded comparison); the first drawn if equal."""
        n = len(self._population)
        i = int(rng.integers(n))
        j = (i + 1 + int(rng.integers(n - 1))) % n
        return self._population[j if self._keys[j] < self._keys[i] else i].genotype

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        seen = seen_keys(trials)
        if not self._keys:  # the initial population is still being evaluated
            return random_unseen(self.space, seen, rng)
        parent = self._tournament(rng)
        if rng.random() < self.crossover_rate:
            child = self.space.crossover(parent, self._tournament(rng), rng)
            return unseen_or_mutant(self.space, child, seen, rng)
        return mutant(self.space, parent, seen, rng)
