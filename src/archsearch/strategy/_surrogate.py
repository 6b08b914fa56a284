"""What the predictor-guided strategies (``bananas``, ``gp-bo``) share: the initial design,
the iterations and their batches, candidate generation, and the encoding.

The loop, as BANANAS runs it (White et al., AAAI 2021; REFERENCES.md section 9.1)::

    evaluate `initial_samples` random architectures (or, with `warm_start`, the best of a
        pool scored by a zero-cost proxy)
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
state: ``ask`` reads everything from ``trials``.  The warm start's pool and its scores
depend on the seed alone (``ProxyRankedSearch``), so a warm-started initial design resumes
exactly too.

Warm start (``warm_start``, a proxy name): the initial design is the pool of a
``ProxyRankedSearch`` (``warm_pool`` architectures drawn from the seed, scored by the
proxy on a minibatch of the dataset, or read from the shipped NAS-Bench-201 table)
proposed best-scored first, in place of random architectures (a proxy used to warm up a
search, as in Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021).
The proxy only picks the initial design: it is not a feature of the surrogate, since
every mutation candidate of every iteration would then need its own proxy computation,
free on the table but a network built and run per candidate on a trainable space.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace, TrainableSpace
from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201Space
from archsearch.strategy._history import random_unseen, stable_seed
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.strategy.encodings import nb201_path_encoding
from archsearch.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from archsearch.data.dataset import Dataset
    from archsearch.strategy.proxy_ranked import ProxyRankedSearch

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


class _WarmStart:
    """The warm start's ``ProxyRankedSearch``, built at its first use and kept.

    Copies share it (``copy.deepcopy`` returns it as is): it is a function of the space,
    the seed and the settings alone, so sharing changes no proposal, and ParEGO, which
    copies its inner strategy afresh for every ask, then scores the pool once per process
    (and copies no dataset)."""

    def __init__(self, space: SearchSpace, seed: int, dataset: Dataset | None, proxy: str,
                 pool: int) -> None:
        self.space = space
        self.seed = seed
        self.dataset = dataset
        self.proxy = proxy
        self.pool = pool
        self.search: ProxyRankedSearch | None = None

    def __deepcopy__(self, memo: dict[int, object]) -> _WarmStart:
        return self

    def ranked(self) -> ProxyRankedSearch:
        if self.search is None:
            from archsearch.strategy.proxy_ranked import ProxyRankedSearch

            self.search = ProxyRankedSearch(self.space, self.seed, self.dataset,
                                            proxy=self.proxy, pool=self.pool)
        return self.search


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

    ``warm_start`` (a proxy of ``archsearch.estimation.zero_cost.PROXIES``; None: off)
    replaces the random initial design: while fewer than ``initial_samples`` trials have
    finished, each ask proposes the best-scored member, not yet evaluated or pending, of
    the pool of ``ProxyRankedSearch(space, seed, dataset, proxy=warm_start,
    pool=warm_pool)`` (a random unseen architecture once the pool is used up), so a serial
    study evaluates the pool's top ``initial_samples`` first.  The proxy is scored on a
    minibatch of ``dataset`` (the study's data, injected), or, without data on the
    NAS-Bench-201 table's own space, read from the shipped table.  Everything after the
    initial design is unchanged: the proxy is not a surrogate feature (a mutation
    candidate would need its own proxy computation, free on the table but a network
    built and run per candidate on a trainable space).  ``proxy_seconds`` is the time the
    warm start's scoring took in this process.  An unknown proxy, a ``warm_pool`` that is
    not an integer >= 1, or a space that cannot build networks is refused at
    construction; a trainable space without data at the first ask (a config is checked by
    building it without data).
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
        dataset: Dataset | None = None,
        warm_start: str | None = None,
        warm_pool: int = 1000,
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
        check_int(self.name, warm_pool=warm_pool)
        if warm_start is not None:
            from archsearch.estimation.zero_cost import PROXIES

            if warm_start not in PROXIES:
                raise ConfigError(f"{self.name}: unknown warm_start proxy {warm_start!r}; "
                                  f"choose from {', '.join(PROXIES)}")
            if not isinstance(space, TrainableSpace):
                raise ConfigError(f"{self.name}: warm_start scores networks, and the "
                                  f"{space.name} space cannot build them (no build_network)")
        self.initial_samples = initial_samples
        self.queries_per_iteration = queries_per_iteration
        self.num_candidates = num_candidates
        self.patience_factor = patience_factor
        self.encoding = encoding
        self.warm_start = warm_start
        self.warm_pool = warm_pool
        self._warm = (None if warm_start is None
                      else _WarmStart(space, seed, dataset, warm_start, warm_pool))
        # The current iteration's candidates, best first, with the key of what made them.
        self._batch_key: tuple[object, ...] | None = None
        self._batch: list[tuple[Genotype, str]] = []
        self._fit_seconds = 0.0

    @property
    def fit_seconds(self) -> float:
        """Seconds spent fitting the surrogate in this process (0 before the first fit)."""
        return self._fit_seconds

    @property
    def proxy_seconds(self) -> float:
        """Seconds the warm start's proxy scoring took in this process (0 without a warm
        start, and before its first ask)."""
        if self._warm is None or self._warm.search is None:
            return 0.0
        return self._warm.search.proxy_seconds

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
        elif self._warm is not None:  # the initial design: the proxy's best unseen
            return self._warm_proposal(trials, rng)
        return random_unseen(self.space, seen, rng)

    def _warm_proposal(self, trials: Sequence[FrozenTrial],
                       rng: np.random.Generator) -> Genotype | None:
        assert self._warm is not None
        try:
            return self._warm.ranked().ask(trials, rng)
        except ConfigError as error:  # no data, or a proxy no network could be scored by
            raise ConfigError(f"{self.name} with warm_start={self.warm_start!r}: "
                              f"{error}") from None

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
        ``patience_factor`` parents (ties: the earlier finished first).

        Departure: when those parents' neighbourhoods hold nothing unseen (a long search
        on a finite space: NB201 cells have 24 one-edge neighbours), the next best
        parents are mutated until one candidate is found, rather than proposing a
        repeat (the reference) or falling back to random search."""
        parents = sorted(data, key=lambda p: -p.score)
        keys = set(seen)
        out: list[tuple[Genotype, str]] = []
        for rank, parent in enumerate(parents):
            if len(out) >= self.num_candidates or (out and rank >= self.patience_factor):
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
