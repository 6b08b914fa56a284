"""What the predictor-guided strategies (``bananas``, ``gp-bo``) share: the initial design,
the iterations and their batches, candidate generation, and the encoding.

The loop, as BANANAS runs it (White et al., AAAI 2021; REFERENCES.md section 9.1)::

    evaluate `initial_samples` random architectures
    repeat (one iteration per `queries_per_iteration` finished trials):
        fit a surrogate to the finished trials
        candidates = unseen mutations of the best architecture (then of the next best,
                     up to `patience_factor` parents) until `num_candidates` are found
        propose the `queries_per_iteration` candidates the acquisition rates best

A subclass supplies the surrogate and the acquisition (``_rank``); everything else is here,
so two subclasses differ in nothing else.

Exact resume: the proposals are a function of the record and the seed alone.  Iteration
``j`` starts when ``initial_samples + queries_per_iteration * j`` trials have finished,
and its batch is computed from exactly those first finished trials (in finish order: a
set that never changes once reached; in a serial study, trial-number order), with
random numbers drawn from generators seeded by ``(seed, j)``, never from the per-ask
``rng``.  The batch is cached for the iteration, so the surrogate is fitted once per
iteration; a new process recomputes the same batch from the record.  ``tell`` keeps no
state: ``ask`` reads everything from ``trials``.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201Space
from archsearch.strategy._history import random_unseen, stable_seed
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.strategy.encodings import nb201_path_encoding
from archsearch.trial import FrozenTrial, TrialState

#: ``encoding`` settings: ``auto`` is ``path`` on NAS-Bench-201, ``space`` elsewhere.
ENCODINGS = ("auto", "path", "space")


class Point(NamedTuple):
    """An evaluated architecture the surrogate learns from."""

    key: str
    genotype: Genotype
    score: float  # larger is better


def check_int(owner: str, **values: int) -> None:
    """Each value is an int >= 1, or a ``ConfigError`` naming it."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{owner}: {name} must be an integer >= 1, got {value!r}")


class SurrogateSearch(Strategy):
    """The shared loop of a predictor-guided search (see the module docstring).

    Several trials in flight: a pending architecture is never proposed again, and the
    surrogate learns from finished trials only (no constant liar or fantasies).  An ask
    proposes the best-rated candidate of the current iteration that is neither finished
    nor pending; when all of them are (several workers can use up a batch before the next
    iteration starts), the next-best candidates of the iteration follow, then random
    unseen architectures.  Failed trials, pruned ones and any without a ``score``
    (infeasible) are no training data, but count as finished for the iteration
    bookkeeping and are never candidates.  ``ask`` returns None only when the space is
    exhausted.  ``fit_seconds`` is the time spent fitting the surrogate in this process.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        initial_samples: int = 10,
        queries_per_iteration: int = 10,
        num_candidates: int = 100,
        patience_factor: int = 5,
        encoding: str = "auto",
    ) -> None:
        super().__init__(space, seed)
        check_int(self.name, initial_samples=initial_samples,
                  queries_per_iteration=queries_per_iteration, num_candidates=num_candidates,
                  patience_factor=patience_factor)
        if encoding not in ENCODINGS:
            raise ConfigError(f"{self.name}: unknown encoding {encoding!r}; choose from "
                              f"{', '.join(ENCODINGS)}")
        if encoding == "path" and not isinstance(space, NB201Space):
            raise ConfigError(f"{self.name}: the path encoding is NAS-Bench-201's; the "
                              f"{space.name} space takes encoding='space' or 'auto'")
        self.initial_samples = initial_samples
        self.queries_per_iteration = queries_per_iteration
        self.num_candidates = num_candidates
        self.patience_factor = patience_factor
        self.encoding = encoding
        # The current iteration's candidates, best first, with the key of what made them.
        self._batch_key: tuple[object, ...] | None = None
        self._batch: list[tuple[Genotype, str]] = []
        self._fit_seconds = 0.0

    @property
    def fit_seconds(self) -> float:
        """Seconds spent fitting the surrogate in this process (0 before the first fit)."""
        return self._fit_seconds

    # -- proposals ---------------------------------------------------------------------
    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        seen = seen_keys(trials)
        finished = sorted((t for t in trials if t.finished),
                          key=lambda t: (t.finish_order or 0, t.number))
        if len(finished) >= self.initial_samples:
            iteration = (len(finished) - self.initial_samples) // self.queries_per_iteration
            used = finished[:self.initial_samples + self.queries_per_iteration * iteration]
            for genotype, key in self._candidates_of(iteration, used):
                if key not in seen:
                    return genotype
        return random_unseen(self.space, seen, rng)

    def _candidates_of(self, iteration: int,
                       used: list[FrozenTrial]) -> list[tuple[Genotype, str]]:
        """Iteration ``iteration``'s candidates, best-rated first (cached)."""
        fingerprint = (iteration, *((t.key, t.score) for t in used))
        if fingerprint != self._batch_key:
            self._batch = self._compute_batch(iteration, used)
            self._batch_key = fingerprint
        return self._batch

    def _compute_batch(self, iteration: int,
                       used: list[FrozenTrial]) -> list[tuple[Genotype, str]]:
        points: dict[str, Point] = {}
        for t in used:
            if (t.state is TrialState.COMPLETE and t.score is not None and not t.cached
                    and t.key not in points and np.isfinite(t.score)):
                points[t.key] = Point(t.key, t.genotype, float(t.score))
        if len(points) < 2:  # nothing to learn from yet: random architectures
            return []
        data = list(points.values())
        rng = np.random.default_rng(stable_seed(self.name, self.seed, iteration, "candidates"))
        candidates = self._mutations(data, {t.key for t in used}, rng)
        if not candidates:
            return []
        encode = self._encoder()
        x_train = np.stack([encode(p.genotype) for p in data])
        y_train = np.array([p.score for p in data])
        x_candidates = np.stack([encode(g) for g, _ in candidates])
        start = time.perf_counter()
        order = self._rank(x_train, y_train, x_candidates,
                           stable_seed(self.name, self.seed, iteration, "surrogate"))
        self._fit_seconds += time.perf_counter() - start
        return [candidates[i] for i in order]

    def _mutations(self, data: list[Point], seen: set[str],
                   rng: np.random.Generator) -> list[tuple[Genotype, str]]:
        """Unseen mutations of the best points, as the reference's ``get_candidates``
        (``num_arches_to_mutate`` 1, ``mutation_rate`` 1): ``num_candidates`` mutations of
        the best point, duplicates and seen ones dropped; while fewer than
        ``num_candidates`` are found, the same for the next best, up to
        ``patience_factor`` parents (ties: the earlier finished first)."""
        parents = sorted(data, key=lambda p: -p.score)[:self.patience_factor]
        keys = set(seen)
        out: list[tuple[Genotype, str]] = []
        for parent in parents:
            if len(out) >= self.num_candidates:
                break
            for _ in range(self.num_candidates):
                child = self.space.mutate(parent.genotype, rng)
                key = self.space.key(child)
                if key not in keys:
                    keys.add(key)
                    out.append((child, key))
        return out

    def _encoder(self) -> Callable[[Genotype], np.ndarray]:
        if self.encoding == "path" or (self.encoding == "auto"
                                       and isinstance(self.space, NB201Space)):
            return nb201_path_encoding
        return self.space.encode

    @abstractmethod
    def _rank(self, x_train: np.ndarray, y_train: np.ndarray, x_candidates: np.ndarray,
              seed: int) -> np.ndarray:
        """Fit the surrogate to ``(x_train, y_train)`` (scores: larger is better) and
        return the candidates' indices, most promising first.  ``seed`` (from the study
        seed and the iteration) is the only source of randomness."""
