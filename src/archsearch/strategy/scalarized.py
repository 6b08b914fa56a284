"""ParEGO's scalarisation: any single-objective strategy on a multi-objective study.

Knowles, "ParEGO: a hybrid algorithm with on-line landscape approximation for expensive
multiobjective optimization problems", IEEE Transactions on Evolutionary Computation
10(1), 2006.  ParEGO turns the objectives into one with a weight vector drawn afresh at
every proposal, so that over a search the proposals spread along the Pareto front::

    at each ask:
        lambda = a weight vector drawn uniformly from ParEGO's lattice on the simplex:
                 {l / s : l_j in 0..s, sum_j l_j = s}
        each objective's cost normalised to [0, 1] over the feasible finished trials
                 (0 = the best seen, 1 = the worst; a constant objective is 0 everywhere)
        f(x) = max_j lambda_j c_j(x) + rho * sum_j lambda_j c_j(x)   (augmented
                 Tchebycheff, rho = 0.05); the trial's scalar score is -f(x)
        a fresh copy of the inner strategy is told every finished trial, in finish
        order, with that score; its ask is the proposal

Knowles fits a Gaussian process (EGO) to the scalarised costs; here the inner strategy is
whatever single-objective strategy was given (regularized evolution by default), and it
sees one study whose scores change with every ask.  Infeasible and failed trials get no
score (``None``), so the inner strategy ranks them below every feasible trial, as in a
single-objective study.  The lattice's ``divisions`` s default to Knowles' choices: 10
for two objectives (11 vectors), 4 for three (15); for more objectives, 3 (this
library's choice, not the paper's: C(s + k - 1, k - 1) vectors, 20 for four objectives).

Exact resume comes by construction: ``tell`` does nothing, and every ``ask`` rebuilds the
inner strategy from a pristine copy taken when the strategy was wrapped, by replaying the
finished trials of the record.  The price is O(n) inner ``tell``s per ask (O(n^2) over a
search of n trials), which is the cost of an ask: the inner strategy's own ``tell``
replayed (a strategy whose ``tell`` is expensive, such as REINFORCE's Adam step every 5
tells, pays it n times per ask; `benchmarks/strategy_overhead.py --objectives` measures it).

The inner strategy sees a single-objective record: every finished trial's ``score``,
``value``, ``scores`` and ``values`` hold its scalar (None without one).  The study wraps
every ask/tell strategy that is not ``multi_objective`` in ``ParEGO`` when it has several
objectives (``Study.__init__``; one-shot searches, which drive a supernet, are left
alone).  The inner strategy rebuilt at the last ask is ``ParEGO.current``; the strategy
given is never told anything.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy.base import Strategy
from archsearch.trial import FrozenTrial, TrialState

#: Knowles' lattice sizes s by number of objectives; others use ``_DEFAULT_DIVISIONS``.
KNOWLES_DIVISIONS = {2: 10, 3: 4}
_DEFAULT_DIVISIONS = 3


def lattice(objectives: int, divisions: int) -> np.ndarray:
    """ParEGO's weight vectors: every ``l / divisions`` with integer ``l_j >= 0`` summing
    to ``divisions``, one per row, in lexicographic order of ``l``."""
    rows = [c for c in itertools.product(range(divisions + 1), repeat=objectives - 1)
            if sum(c) <= divisions]
    return np.array([(*c, divisions - sum(c)) for c in rows], dtype=float) / divisions


def normalised_costs(scores: np.ndarray) -> np.ndarray:
    """Each column's cost in [0, 1]: 0 at its best (largest) score, 1 at its worst; a
    column whose scores are all equal is 0."""
    best, worst = scores.max(axis=0), scores.min(axis=0)
    span = best - worst
    costs = np.zeros_like(scores)
    varies = span > 0
    costs[:, varies] = (best[varies] - scores[:, varies]) / span[varies]
    return costs


def augmented_tchebycheff(costs: np.ndarray, weights: np.ndarray, rho: float) -> np.ndarray:
    """ParEGO's scalar cost of each row of ``costs`` (smaller is better)."""
    weighted = costs * weights
    return np.asarray(weighted.max(axis=1) + rho * weighted.sum(axis=1))


class ParEGO(Strategy):
    """A single-objective strategy driven by ParEGO's scalarisation on a multi-objective
    study: a fresh weight vector per ask, the inner strategy rebuilt from the record with
    the scalarised scores.

    ``inner`` is the strategy to drive: an instance (built on the same space and seed), or
    a registered name built with ``inner_params``.  ``rho`` is the augmented Tchebycheff
    function's weight of the sum (Knowles: 0.05), ``divisions`` the lattice's s (default:
    Knowles' choice for the number of objectives).

    >>> from archsearch.space import ChainSpace
    >>> ParEGO(ChainSpace("vector"), seed=0, inner="random").inner.name
    'random'
    """

    name = "parego"
    multi_objective: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        inner: Strategy | str = "regularized-evolution",
        inner_params: Mapping[str, Any] | None = None,
        rho: float = 0.05,
        divisions: int | None = None,
    ) -> None:
        super().__init__(space, seed)
        if isinstance(inner, str):
            from archsearch import registry

            target = registry.resolve("strategy", inner)
            inner = registry.construct("strategy", target, dict(inner_params or {}),
                                       space=space, seed=seed)
        elif inner_params:
            raise ConfigError("ParEGO: inner_params are for an inner strategy given by name")
        if not isinstance(inner, Strategy):
            raise ConfigError(f"ParEGO wraps a Strategy, got {type(inner).__name__}")
        if isinstance(inner, ParEGO):
            raise ConfigError("ParEGO would wrap ParEGO: give it a single-objective strategy")
        if inner.runs_own_search:
            raise ConfigError(f"ParEGO drives ask/tell strategies; {type(inner).__name__} "
                              "runs a search of its own (a one-shot search)")
        if inner.space is not space or inner.seed != seed:
            raise ConfigError("ParEGO: the inner strategy must be built on the same space "
                              f"and seed (seed {inner.seed}, expected {seed})")
        if not (math.isfinite(rho) and rho >= 0):
            raise ConfigError(f"ParEGO: rho must be >= 0, got {rho}")
        if divisions is not None and divisions < 1:
            raise ConfigError(f"ParEGO: divisions must be >= 1, got {divisions}")
        self.inner = inner
        self.rho = rho
        self.divisions = divisions
        # Taken before any tell: every ask starts again from it.  The space is shared,
        # not copied (it is immutable, and a copy per ask would cost more than the ask).
        self._pristine = self._copy(inner)
        self._current: Strategy | None = None

    @classmethod
    def wrap(cls, strategy: Strategy, **settings: Any) -> ParEGO:
        """``strategy`` (not yet told anything) driven by ParEGO, on its space and seed."""
        return cls(strategy.space, strategy.seed, inner=strategy, **settings)

    @property
    def current(self) -> Strategy | None:
        """The inner strategy as rebuilt for the last ask (None before the first)."""
        return self._current

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, "inner": self.inner.name or type(self.inner).__name__,
                "inner_params": {k: v for k, v in self.inner.get_params().items()
                                 if k != "seed"},
                "rho": self.rho, "divisions": self.divisions}

    def _copy(self, strategy: Strategy) -> Strategy:
        return copy.deepcopy(strategy, memo={id(self.space): self.space})

    # -- the scalarisation ---------------------------------------------------------------
    def weights(self, objectives: int, rng: np.random.Generator) -> np.ndarray:
        """A weight vector drawn uniformly from the lattice (one draw from ``rng``)."""
        s = self.divisions or KNOWLES_DIVISIONS.get(objectives, _DEFAULT_DIVISIONS)
        vectors = lattice(objectives, s)
        return vectors[int(rng.integers(len(vectors)))]

    def scalarised(
        self, trials: Sequence[FrozenTrial], weights: np.ndarray
    ) -> dict[int, float | None]:
        """Each finished trial's scalar score (larger is better) by number; None for a
        trial that failed or breaks a constraint."""
        usable = [t for t in trials if t.finished and t.state is TrialState.COMPLETE
                  and t.scores is not None and t.feasible]
        out: dict[int, float | None] = {t.number: None for t in trials if t.finished}
        if usable:
            scores = np.array([t.scores for t in usable], dtype=float)
            if scores.shape[1] != len(weights):
                raise ConfigError(f"ParEGO: trials have {scores.shape[1]} objectives, "
                                  f"the weights {len(weights)}")
            cost = augmented_tchebycheff(normalised_costs(scores), weights, self.rho)
            for t, c in zip(usable, cost.tolist(), strict=True):
                out[t.number] = -c
        return out

    # -- ask / tell ------------------------------------------------------------------------
    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        objectives = next((len(t.scores) for t in trials if t.scores is not None), 2)
        weights = self.weights(objectives, rng)
        scalar = self.scalarised(trials, weights)
        # The inner strategy sees a single-objective study: score, value, scores and
        # values all hold the scalar (None where the trial has no score).
        view = []
        for t in trials:
            if t.finished:
                s = scalar[t.number]
                one = None if s is None else (s,)
                t = replace(t, score=s, value=s, scores=one, values=one)
            view.append(t)
        inner = self._copy(self._pristine)
        for t in sorted((t for t in view if t.finished),
                        key=lambda t: (t.finish_order or 0, t.number)):
            inner.tell(t)
        self._current = inner
        return inner.ask(view, rng)

    def tell(self, trial: FrozenTrial) -> None:
        """Nothing: every ask rebuilds the inner strategy from the record."""
