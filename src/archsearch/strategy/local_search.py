"""Local search with random restarts (White, Nolen & Savani, UAI 2021).

    centre = the best of `initial_samples` random architectures
    repeat:
        evaluate the centre's unseen neighbours, in a random order
        the first one that scores better becomes the centre
        none does (a local optimum): restart from the best of `restart_samples`
        new random architectures

On NAS-Bench-201 this simple hill climber is among the strongest strategies, because the
landscape is smooth: most good cells are a few edits away from other good cells.  What
it loses is spent at local optima: every neighbour must be queried to know one (24 on
NAS-Bench-201), and the table's second-best cell is a local optimum two edits from the
best.

``guided=True`` is this library's variant, not the paper's: an additive model of the
record (one ridge regression over the one-hot decisions, ``_additive.py``) orders the
neighbours, most promising first, and picks each restart as the best-rated unseen one of
100 random architectures.  The climb itself and the test for a local optimum are
unchanged.  benchmarks/RESULTS.md compares both on NAS-Bench-201 and NAS-Bench-Graph;
the model and the restart candidates make a guided query cost a few milliseconds of
strategy time instead of a fraction of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy._additive import AdditiveModel
from archsearch.strategy._history import fitness, random_unseen, stable_seed
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial

#: Random architectures the model chooses a restart from.
RESTART_CANDIDATES = 100


class _Point(NamedTuple):
    fitness: float
    key: str
    genotype: Genotype


class LocalSearch(Strategy):
    """First-improvement hill climbing over the space's ``neighbours``, with restarts.

    All state comes from ``tell`` (finished trials in finish order), so a resumed study
    continues exactly.  The neighbours of a centre are visited in a permutation fixed by
    the seed and the centre's key, not by the trial's rng, for the same reason.  Neighbours
    already evaluated are not queried again, but their known scores count: if one is
    better than a new centre, the search moves there at once.  Pending neighbours (other
    workers) are skipped; with nothing left to propose locally, a random architecture fills
    the gap.  Failed trials never count as improvements.  The guided variant's model is
    fitted on the evaluated trials only, so it too is rebuilt exactly from the record.

    >>> from archsearch.space import ChainSpace
    >>> LocalSearch(ChainSpace("vector"), seed=0).initial_samples
    10
    """

    name = "local-search"

    def __init__(
        self, space: SearchSpace, seed: int = 0, initial_samples: int = 10,
        restart_samples: int = 1, guided: bool = False,
    ) -> None:
        super().__init__(space, seed)
        if initial_samples < 1 or restart_samples < 1:
            raise ConfigError("initial_samples and restart_samples must be >= 1, got "
                              f"{initial_samples} and {restart_samples}")
        self.guided = guided
        self.initial_samples = initial_samples
        self.restart_samples = restart_samples
        self._known: dict[str, _Point] = {}  # every evaluated architecture, by key
        self._model = AdditiveModel(space)  # of the known points (guided only)
        self._batch: list[_Point] = []  # random samples since the last (re)start
        self._centre: _Point | None = None
        self._order: list[tuple[Genotype, str]] = []  # the centre's neighbours, shuffled
        self._unexplored: set[str] = set()  # the centre's neighbours not yet evaluated
        self._cursor = 0  # a cache for ask: neighbours before it are known to be seen
        self._optima: list[_Point] = []

    @property
    def centre(self) -> tuple[float, Genotype] | None:
        """The architecture whose neighbourhood is being explored, with its fitness."""
        return None if self._centre is None else (self._centre.fitness, self._centre.genotype)

    @property
    def local_optima(self) -> list[tuple[float, Genotype]]:
        """Centres whose every neighbour was evaluated without improvement, in order."""
        return [(p.fitness, p.genotype) for p in self._optima]

    # -- the record ------------------------------------------------------------------------
    def tell(self, trial: FrozenTrial) -> None:
        if trial.cached or trial.key in self._known:
            return
        point = _Point(fitness(trial), trial.key, trial.genotype)
        self._known[point.key] = point
        if self.guided:
            self._model.add(point.genotype, point.fitness)
        if self._centre is None:
            self._batch.append(point)
            wanted = self.restart_samples if self._optima else self.initial_samples
            if len(self._batch) >= max(1, wanted):
                # max keeps the first of equals: the earliest finished
                self._move(max(self._batch, key=lambda p: p.fitness))
            return
        if point.key in self._unexplored:
            self._unexplored.discard(point.key)
            if point.fitness > self._centre.fitness:  # first improvement: move at once
                self._move(point)
                return
        if not self._unexplored:
            self._restart()

    def _move(self, centre: _Point) -> None:
        while True:
            order = self._shuffled_neighbours(centre)
            # A neighbour evaluated earlier that beats the centre is a free improvement.
            better = next((self._known[key] for _, key in order if key in self._known
                           and self._known[key].fitness > centre.fitness), None)
            if better is None:
                break
            centre = better
        if self.guided:  # the model orders only the final centre's neighbours
            order = self._by_prediction(order)
        self._centre, self._order, self._cursor = centre, order, 0
        self._unexplored = {key for _, key in order if key not in self._known}
        self._batch = []
        if not self._unexplored:
            self._restart()

    def _shuffled_neighbours(self, centre: _Point) -> list[tuple[Genotype, str]]:
        """The centre's neighbours with their keys, in a permutation fixed by the seed and
        the centre's key."""
        rng = np.random.default_rng(stable_seed(self.seed, centre.key))
        neighbours = self.space.neighbours(centre.genotype)
        return [(neighbours[i], self.space.key(neighbours[i]))
                for i in rng.permutation(len(neighbours))]

    def _by_prediction(self, order: list[tuple[Genotype, str]]) -> list[tuple[Genotype, str]]:
        """``order`` sorted by the additive model's prediction, best first; the random
        order breaks ties (a stable sort), and stays as it is before the model can fit."""
        predicted = self._model.predict([g for g, _ in order])
        if predicted is None:
            return order
        return [order[i] for i in np.argsort(-predicted, kind="stable")]

    def _restart(self) -> None:
        assert self._centre is not None
        self._optima.append(self._centre)
        self._centre, self._order, self._unexplored, self._batch = None, [], set(), []

    # -- proposals ---------------------------------------------------------------------------
    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        seen = seen_keys(trials)
        # Keys only ever join ``seen``, so skipping past seen neighbours for good is safe
        # (and a resumed strategy, starting from 0, skips the same ones).
        while self._cursor < len(self._order):
            genotype, key = self._order[self._cursor]
            if key not in seen:
                return genotype
            self._cursor += 1
        if self.guided and self._optima:
            return self._predicted_restart(seen, rng)
        return random_unseen(self.space, seen, rng)

    def _predicted_restart(self, seen: set[str], rng: np.random.Generator) -> Genotype | None:
        """After a local optimum: of ``RESTART_CANDIDATES`` random architectures, the unseen
        one the additive model rates best (a restart aimed at a better basin)."""
        candidates = [self.space.sample(rng) for _ in range(RESTART_CANDIDATES)]
        predicted = self._model.predict(candidates)
        if predicted is not None:
            for i in np.argsort(-predicted, kind="stable"):
                if self.space.key(candidates[i]) not in seen:
                    return candidates[i]
        return random_unseen(self.space, seen, rng)
