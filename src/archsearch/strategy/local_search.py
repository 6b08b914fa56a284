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

On a multi-objective study the search is Pareto local search (Paquete, Chiarandini &
Stützle 2004), with restarts::

    archive = the non-dominated of `initial_samples` random architectures
    repeat:
        pick the archive member whose neighbourhood is least explored (ties: at random)
        evaluate its next unseen neighbour (each member's neighbours in a fixed random
            order); one that no archive member dominates joins the archive and drops
            the members it dominates
        every member's neighbourhood evaluated (a Pareto local optimum set): restart
            from the non-dominated of `restart_samples` new random architectures

Domination is constrained domination (Deb et al. 2002), so without a feasible architecture
the archive holds the one of smallest violation and the search climbs towards feasibility.
Exploring the least explored member first, instead of a whole neighbourhood at a time as
in the original algorithm, is for anytime behaviour (Dubois-Lacoste, López-Ibáñez &
Stützle, "Anytime Pareto local search", EJOR 2015, study how the choice of the member to
explore shapes it): a member new to the archive, often one that dominates its parent, is
explored next, much as the single-objective climb moves to the first improvement (it did
better than a random member or whole neighbourhoods in tuning runs on NAS-Bench-201,
seeds 1000-1049, kept apart from the seeds benchmarks/RESULTS.md reports).
``guided=True`` fits its additive model to one score, so a multi-objective study drives it
through ParEGO's scalarisation (``multi_objective`` is False for it); unwrapped, it refuses
a multi-objective result with a ``ConfigError``.
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


class _Judged(NamedTuple):
    """An evaluated architecture in a multi-objective study."""

    key: str
    genotype: Genotype
    scores: tuple[float, ...] | None  # None: the trial failed
    violation: float


def _weakly_dominates(a: _Judged, b: _Judged) -> bool:
    """Constrained domination, or equality: ``a`` is at least as good as ``b`` (neither
    failed)."""
    if a.violation > 0 or b.violation > 0:
        return a.violation <= b.violation
    assert a.scores is not None and b.scores is not None
    return all(x >= y for x, y in zip(a.scores, b.scores, strict=True))


class _ParetoLocalSearch:
    """Pareto local search with restarts: the multi-objective mode of ``LocalSearch``.

    State comes from ``tell`` alone (finished trials in finish order): the archive, and
    for each member its neighbours in a permutation fixed by the seed and its key, and
    those of them not yet evaluated.  ``ask`` keeps one cache, each member's count of
    leading neighbours already seen, which only ever grows and which a resumed search,
    starting from 0, recomputes the same.  An evaluated point offered to the archive
    brings its evaluated neighbours with it: the ones it does not dominate are free
    candidates (the single-objective climb's free improvements)."""

    def __init__(self, space: SearchSpace, seed: int, initial_samples: int,
                 restart_samples: int) -> None:
        self.space = space
        self.seed = seed
        self.initial_samples = initial_samples
        self.restart_samples = restart_samples
        self.known: dict[str, _Judged] = {}
        self.archive: dict[str, _Judged] = {}  # in the order members joined
        self.order: dict[str, list[tuple[Genotype, str]]] = {}  # members' neighbours
        self.unexplored: dict[str, set[str]] = {}  # members' neighbours not evaluated
        self.cursor: dict[str, int] = {}  # a cache for ask: leading neighbours seen
        self.batch: list[_Judged] = []  # random samples since the last (re)start
        self.fronts: list[list[_Judged]] = []  # archives fully explored, in order

    def tell(self, point: _Judged) -> None:
        if point.key in self.known:
            return
        self.known[point.key] = point
        for left in self.unexplored.values():
            left.discard(point.key)
        if not self.archive:
            self.batch.append(point)
            wanted = self.restart_samples if self.fronts else self.initial_samples
            if len(self.batch) < wanted or all(p.scores is None for p in self.batch):
                return
            batch, self.batch = self.batch, []
            for sample in batch:
                self._offer(sample)
        else:
            self._offer(point)
        if not any(self.unexplored.values()):  # a Pareto local optimum set
            self.fronts.append(list(self.archive.values()))
            self.archive, self.order, self.unexplored, self.cursor = {}, {}, {}, {}

    def _offer(self, point: _Judged) -> None:
        """``point`` joins the archive unless a member is at least as good; then each of
        its evaluated neighbours is offered in turn."""
        queue = [point]
        while queue:
            candidate = queue.pop(0)
            if candidate.scores is None or candidate.key in self.archive:
                continue
            if any(_weakly_dominates(m, candidate) for m in self.archive.values()):
                continue
            for member in [m for m in self.archive.values() if _weakly_dominates(candidate, m)]:
                for table in (self.archive, self.order, self.unexplored, self.cursor):
                    table.pop(member.key, None)
            order = self._shuffled_neighbours(candidate)
            self.archive[candidate.key] = candidate
            self.order[candidate.key] = order
            self.unexplored[candidate.key] = {k for _, k in order if k not in self.known}
            self.cursor[candidate.key] = 0
            queue.extend(self.known[k] for _, k in order if k in self.known)

    def _shuffled_neighbours(self, point: _Judged) -> list[tuple[Genotype, str]]:
        rng = np.random.default_rng(stable_seed(self.seed, point.key))
        neighbours = self.space.neighbours(point.genotype)
        return [(neighbours[i], self.space.key(neighbours[i]))
                for i in rng.permutation(len(neighbours))]

    def ask(self, seen: set[str], rng: np.random.Generator) -> Genotype | None:
        least: list[str] = []
        fewest = -1
        for key, order in self.order.items():
            i = self.cursor[key]
            while i < len(order) and order[i][1] in seen:
                i += 1
            self.cursor[key] = i
            if i == len(order):
                continue
            if not least or i < fewest:
                least, fewest = [key], i
            elif i == fewest:
                least.append(key)
        if not least:  # sampling, or what is left is pending elsewhere
            return random_unseen(self.space, seen, rng)
        chosen = least[int(rng.integers(len(least)))] if len(least) > 1 else least[0]
        return self.order[chosen][fewest][0]


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

    Once a trial with several scores finishes, the search is Pareto local search (see the
    module's notes; ``pareto_archive`` and ``pareto_sets`` show its state).  Trials that
    failed before it count as the first random samples.  On a single-objective study an
    infeasible trial counts as a failed one (it never improves on a centre).

    >>> from archsearch.space import ChainSpace
    >>> LocalSearch(ChainSpace("vector"), seed=0).initial_samples
    10
    """

    name = "local-search"

    @property
    def multi_objective(self) -> bool:  # type: ignore[override]
        """Pareto local search on a multi-objective study; the guided variant's model fits
        one score, so a multi-objective study drives it through ParEGO instead."""
        return not self.guided

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
        self._pareto: _ParetoLocalSearch | None = None  # on a multi-objective study

    @property
    def centre(self) -> tuple[float, Genotype] | None:
        """The architecture whose neighbourhood is being explored, with its fitness."""
        return None if self._centre is None else (self._centre.fitness, self._centre.genotype)

    @property
    def local_optima(self) -> list[tuple[float, Genotype]]:
        """Centres whose every neighbour was evaluated without improvement, in order."""
        return [(p.fitness, p.genotype) for p in self._optima]

    @property
    def pareto_archive(self) -> list[Genotype]:
        """Multi-objective: the archive being explored, in the order members joined."""
        return [] if self._pareto is None else [p.genotype for p in self._pareto.archive.values()]

    @property
    def pareto_sets(self) -> list[list[Genotype]]:
        """Multi-objective: the archives fully explored (Pareto local optimum sets)."""
        return [] if self._pareto is None else [
            [p.genotype for p in front] for front in self._pareto.fronts]

    # -- the record ------------------------------------------------------------------------
    def tell(self, trial: FrozenTrial) -> None:
        if self._pareto is None and trial.scores is not None and len(trial.scores) > 1:
            self._start_pareto()
        if self._pareto is not None:
            if not trial.cached:
                self._pareto.tell(_Judged(trial.key, trial.genotype, trial.scores,
                                          trial.violation))
            return
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

    def _start_pareto(self) -> None:
        if self.guided:
            raise ConfigError("local-search guided=true orders neighbours by a model of one "
                              "score and cannot run on a multi-objective study; use "
                              "local-search (Pareto local search) or another strategy")
        self._pareto = _ParetoLocalSearch(self.space, self.seed, self.initial_samples,
                                          self.restart_samples)
        for point in self._known.values():  # trials that failed before: random samples
            self._pareto.tell(_Judged(point.key, point.genotype, None, 0.0))

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
        if self._pareto is not None:
            return self._pareto.ask(seen, rng)
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
