"""The shared conformance suite: every registered space and strategy must pass it.

Adding a space or strategy to the factories below is all it takes to have it tested;
later issues' spaces (tabular, cell) and strategies (evolution, RL) register here too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping

from archsearch.estimation.base import Estimator, TrialContext
from archsearch.space import ChainSpace, Genotype, MultiBranchSpace, SearchSpace
from archsearch.space.cells import DartsSpace
from archsearch.strategy.base import Strategy


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _tabular_spaces() -> dict[str, Callable[[], SearchSpace]]:
    out: dict[str, Callable[[], SearchSpace]] = {}
    try:
        from archsearch.space.nb201 import NB201Space
        from archsearch.tabular.nbgraph import NBGraphSpace
    except ImportError:  # the tabular module is optional while it is being built
        return out
    out["nb201"] = NB201Space
    out["nbgraph"] = NBGraphSpace
    return out


#: Small instances of every space: small enough that grid search can enumerate them.
SPACES: Mapping[str, Callable[[], SearchSpace]] = {
    "chain-image": lambda: ChainSpace("image", max_depth=3, widths=(8, 16)),
    "chain-vector": lambda: ChainSpace("vector", max_depth=3, widths=(8, 16)),
    "multi-branch-image": lambda: MultiBranchSpace(
        "image", max_depth=3, ops=("conv3x3", "maxpool3x3", "identity"), widths=(8,),
        activations=("relu",)),
    "multi-branch-vector": lambda: MultiBranchSpace(
        "vector", max_depth=3, widths=(8, 16), norms=("none",), activations=("relu",)),
    **_tabular_spaces(),
    # The DARTS cell space cut to 2 nodes and 2 ops (2,304 cells), so grid can enumerate it.
    "darts": lambda: DartsSpace(steps=2, ops=("skip_connect", "sep_conv_3x3")),
}


#: Non-default settings that change what a strategy remembers (bench's name[key=value] form).
STRATEGY_VARIANTS = ("local-search[guided=true]",)


def strategy_factories() -> dict[str, Callable[[SearchSpace, int], Strategy]]:
    """Every ask/tell strategy in the registry (one-shot searches, which drive a supernet,
    have their own tests), built with its defaults, and the variants.  A strategy that
    cannot ask without data (``needs_data``: zero-cost-ranked scores untrained networks on
    it) is left out: this suite has no data, and such a strategy without its data only
    refuses to ask; tests/test_proxy_ranked.py holds it to the same contract on real data.
    A strategy that merely accepts a ``dataset`` for an option (bananas and gp-bo, for
    their zero-cost warm start) is in, with its defaults."""
    from archsearch import registry
    from archsearch.bench import parse_strategy

    out: dict[str, Callable[[SearchSpace, int], Strategy]] = {}
    for name in registry.available("strategy"):
        try:
            cls = registry.resolve("strategy", name)
        except ImportError:  # an optional dependency (e.g. optuna) is absent
            continue
        if cls.driver is not Strategy.driver:  # not driven by ask/tell alone
            continue
        if cls.needs_data:  # cannot ask without data; see above
            continue
        out[name] = lambda space, seed, cls=cls: cls(space, seed=seed)
    # Variants whose state differs from the default's are held to the same contract.
    for variant, (name, params) in ((v, parse_strategy(v)) for v in STRATEGY_VARIANTS):
        cls = registry.resolve("strategy", name)
        out[variant] = lambda space, seed, cls=cls, params=params: cls(space, seed=seed, **params)
    return out


class EncodingObjective(Estimator):
    """A cheap, deterministic, genotype-dependent objective for strategy checks: a fixed
    random projection of the space's encoding.  Strategies see a real landscape with a
    unique optimum, and a test can compute it independently."""

    objective = "val_accuracy"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        import numpy as np

        self.space = space
        dims = space.encode(space.sample(np.random.default_rng(0))).shape[0]
        self._weights = np.random.default_rng(seed).normal(size=dims)

    def score(self, genotype: Genotype) -> float:
        return float(self.space.encode(genotype) @ self._weights)

    def evaluate(self, genotype: Genotype, context: TrialContext) -> dict[str, float]:
        value = self.score(genotype)
        return {"val_accuracy": value, "test_accuracy": value}
