"""Zero-cost-ranked search: score many untrained networks with a proxy, train the best.

The method, as the zero-cost papers run it::

    pool    = N distinct random architectures
    scores  = proxy(untrained network, one minibatch) for each of them
    propose the pool best-first; each proposal is trained (evaluated) by the study

Mellor et al. (NASWOT, ICML 2021) score N random architectures (N = 100 by default) and
keep the top one without training anything.  Abdelfattah et al. ("Zero-Cost Proxies for
Lightweight NAS", ICLR 2021) use a proxy to prune or warm up a search, and report that
it then trains far fewer networks to reach the same accuracy.  Here the proxy orders the
pool and the study's estimator (training, usually) judges each proposal, so the search
spends its budget on the architectures the proxy likes best.  See ``REFERENCES.md``
section 10 for the proxies and their rank correlation with trained accuracy (synflow,
the default, correlates best on NAS-Bench-201).

Departures from the references, named:

* the pool is drawn once, at the first ``ask``, and every architecture in it is scored
  before the first proposal: ``pool`` is N;
* after the pool, the search goes on with random unseen architectures (the references
  stop at the pool);
* an architecture whose network cannot be built or scored (an error from torch, or
  ``TrialFailed``, e.g. naswot on a network without activations) scores NaN and ranks
  last in the pool: its trial would fail anyway, and the study records why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from archsearch.data.dataset import Dataset
from archsearch.errors import ArchsearchError, ConfigError, TrialFailed
from archsearch.estimation.zero_cost import PROXIES, ZeroCostEstimator
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy._history import random_unseen, stable_seed
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial

#: Draws per pool slot before the pool stops growing: collecting every one of n equally
#: likely architectures takes about n ln n draws (ln 1000 = 6.9), and conditional spaces
#: sample some architectures more often than others, so the margin is wide.
DRAWS_PER_SLOT = 20


def pool_seed(seed: int, position: int) -> int:
    """The seed of the pool's ``position``-th network (its initialisation and its
    minibatch): 32 bits, like a trial's seed, the same in every process."""
    return stable_seed("zero-cost-ranked", seed, position) % 2**32


class ProxyRankedSearch(Strategy):
    """Proposes the architectures of a random pool in the order of a zero-cost proxy.

    At the first ``ask`` the strategy draws ``pool`` distinct architectures from the space
    (``space.sample`` with ``numpy.random.default_rng(seed)``, distinct by ``space.key``;
    fewer when ``DRAWS_PER_SLOT * pool`` draws did not find that many; the whole space,
    completed in enumeration order, when it is not larger than ``pool``) and scores each
    with ``proxy`` through a ``ZeroCostEstimator`` on ``dataset``: the network
    initialised, and its minibatch of ``batch_size`` training examples drawn, with
    ``pool_seed(seed, position)``.  The score equals what the estimator's ``evaluate``
    reports for that seed.  Every ``ask`` then proposes the best-scored pool member not
    yet evaluated or pending (ties go to the earlier one in the pool); once the pool is
    used up, a random unseen architecture from the ``rng`` the study gives; None when the
    whole space has been tried.  ``proxy_seconds`` is the time the scoring took (building
    the networks and drawing the batches included), ``scored`` the number of
    architectures scored.

    Resume: the pool and its scores are the strategy's only state, and they depend on
    the seed alone, so a fresh object given the same record proposes what an
    uninterrupted one would.  They are recomputed in every process that runs the search,
    so a resumed study pays the proxy cost again, once.

    The proposals ignore every trial's scores, so the strategy is ``multi_objective``:
    on a study with several objectives it proposes by proxy as on one, and is not wrapped
    in ParEGO (which rebuilds its inner strategy for every ask, and so would score the
    pool again at every ask).

    Without a dataset, on the NAS-Bench-201 table's own space (``NB201Space()``: C=16,
    N=5, as ``archsearch bench --space nb201`` searches it), the scores are read from the
    shipped proxy table (``archsearch.tabular.nb201_proxies``: each cell's proxy at the
    initialisation seeded by its index, not by its pool position), so a tabular search
    ranks by proxy without a network or an image; ``proxy_seconds`` is then the lookup's
    time, and the table's ``nb201_proxy_info`` says what computing it cost.

    Elsewhere a dataset is needed to score, but not to construct: a config is checked by
    building every component without data, so a missing dataset is a ``ConfigError`` at
    the first ``ask``.  An unknown proxy, a space that cannot build networks, or a bad
    ``batch_size`` or ``device`` are refused at construction.

    >>> from archsearch.space import ChainSpace
    >>> ProxyRankedSearch(ChainSpace("image"), seed=0, proxy="naswot").pool
    1000
    """

    name = "zero-cost-ranked"
    multi_objective: ClassVar[bool] = True
    #: Without data it refuses to ask (the NB201 table's own space aside).
    needs_data: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        dataset: Dataset | None = None,
        *,
        proxy: str = "synflow",
        pool: int = 1000,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        super().__init__(space, seed)
        if proxy not in PROXIES:
            raise ConfigError(f"zero-cost-ranked: unknown proxy {proxy!r}; choose from "
                              f"{', '.join(PROXIES)}")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ConfigError(f"zero-cost-ranked: pool must be an integer >= 1, got {pool!r}")
        self.proxy = proxy
        self.pool = pool
        self.batch_size = batch_size
        self.device = device
        # Checks the space, batch_size and device now; the dataset may come later (None).
        self._estimator = ZeroCostEstimator(dataset, space, proxy=proxy,
                                            batch_size=batch_size, device=device)
        self._members: list[Genotype] | None = None  # the pool, scored on first use
        self._keys: list[str] = []
        self._ranking: list[int] = []  # pool positions, best first
        self._scores: list[float] = []
        self._proxy_seconds = 0.0

    @property
    def proxy_seconds(self) -> float:
        """Seconds spent scoring the pool in this process (0 before the first ask)."""
        return self._proxy_seconds

    @property
    def scored(self) -> int:
        """Architectures scored in this process (0 before the first ask)."""
        return len(self._scores)

    def scored_pool(self) -> list[tuple[Genotype, float]]:
        """The pool in the order it was drawn, with each member's proxy score (NaN where
        scoring failed); draws and scores it if that is not done yet."""
        members = self._ready()
        return list(zip(members, self._scores, strict=True))

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        members = self._ready()
        seen = seen_keys(trials)
        for position in self._ranking:
            if self._keys[position] not in seen:
                return members[position]
        return random_unseen(self.space, seen, rng)

    # -- the pool ----------------------------------------------------------------------
    def _ready(self) -> list[Genotype]:
        if self._members is None:
            table = self._table()
            if self._estimator.dataset is None and table is None:
                raise ConfigError(
                    "zero-cost-ranked scores networks on a minibatch of training data and "
                    "was given no dataset: pass data= to create_study (data: in a config), "
                    "or dataset= to ProxyRankedSearch")
            members = self._draw()
            start = time.perf_counter()
            outcomes: list[float | Exception] = (
                [self._score(g, pool_seed(self.seed, i)) for i, g in enumerate(members)]
                if table is None else [float(table[self._index(g)]) for g in members])
            self._proxy_seconds = time.perf_counter() - start
            scores = [s if isinstance(s, float) else math.nan for s in outcomes]
            if members and all(isinstance(s, Exception) for s in outcomes):
                # Nothing to rank by: a setting is wrong, not one architecture.
                first = str(outcomes[0]).partition("\n")[0]  # torch's can run to pages
                raise ConfigError(f"zero-cost-ranked could not score any of the "
                                  f"{len(members)} architectures with {self.proxy}: {first}")
            self._scores = scores
            self._keys = [self.space.key(g) for g in members]
            # sorted is stable: ties keep pool order.
            self._ranking = sorted(range(len(members)), key=lambda i: _rank(scores[i]))
            self._members = members
        return self._members

    def _table(self) -> np.ndarray | None:
        """The shipped scores of every NB201 cell, when they can stand in for computing:
        no dataset, the table's own network (``NB201Space()``, C=16, N=5), and the proxy in
        the table (``archsearch.tabular.nb201_proxies``)."""
        from archsearch.space.nb201 import NB201Space

        space = self.space
        if (self._estimator.dataset is not None or not isinstance(space, NB201Space)
                or (space.channels, space.cells_per_stage) != (16, 5)):
            return None
        from archsearch.tabular.nb201_proxies import load_nb201_proxy, nb201_proxy_names

        return load_nb201_proxy(self.proxy) if self.proxy in nb201_proxy_names() else None

    def _index(self, genotype: Genotype) -> int:
        from archsearch.space.nb201 import NB201Space

        assert isinstance(self.space, NB201Space)
        return self.space.index(genotype)

    def _draw(self) -> list[Genotype]:
        """``pool`` distinct architectures (fewer in a smaller space), from the seed alone."""
        rng = np.random.default_rng(self.seed)
        target = min(self.pool, self.space.size())
        members: list[Genotype] = []
        keys: set[str] = set()
        for _ in range(DRAWS_PER_SLOT * target):
            if len(members) == target:
                break
            genotype = self.space.sample(rng)
            key = self.space.key(genotype)
            if key not in keys:
                keys.add(key)
                members.append(genotype)
        if len(members) < target == self.space.size():
            # The pool is the whole space, which sampling may not finish in a space that
            # samples some architectures far more often than others: complete it.
            members += [g for g in self.space.enumerate() if self.space.key(g) not in keys]
        return members

    def _score(self, genotype: Genotype, seed: int) -> float | Exception:
        """The proxy as ``ZeroCostEstimator.evaluate`` computes it for ``seed``, without
        the parameter and FLOP counts that ``evaluate`` adds (a forward pass each); the
        error when the network cannot be built or scored."""
        estimator = self._estimator
        try:
            model = estimator.network(genotype, seed)
            x, y = estimator.batch(seed)
            with torch.random.fork_rng(devices=[]):  # as evaluate: a proxy that draws
                torch.manual_seed(seed)
                return float(PROXIES[self.proxy](model, x, y))
        except TrialFailed as error:
            return error
        except ArchsearchError:  # said on purpose (a setting, a genotype): not the network
            raise
        except (RuntimeError, ValueError) as error:  # what torch raises on a bad network
            return error


def _rank(score: float) -> tuple[bool, float]:
    """The sort key of a score: best first, NaN (unscored) after every number."""
    return (True, 0.0) if math.isnan(score) else (False, -score)
