"""Zero-cost-ranked search on real networks and data: the proposals follow the proxy's
ranking computed independently, no repeats, random search after the pool, exact resume,
a real study with training, and its errors.

The shared conformance suite has no data, so it leaves this strategy out; the contract
it would check (valid new proposals, reproducible, exact resume, multi-objective) is
checked here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from torch import nn

import archsearch
from archsearch import registry
from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError
from archsearch.estimation.base import TrialContext
from archsearch.estimation.zero_cost import ZeroCostEstimator
from archsearch.space import ChainSpace, DecisionSpace, Genotype, SearchSpace, categorical
from archsearch.storage import InMemoryStorage
from archsearch.strategy._history import random_unseen
from archsearch.strategy.proxy_ranked import ProxyRankedSearch, pool_seed
from archsearch.study import Study

CLASSES = tuple(str(c) for c in range(10))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread: tiny networks, and bitwise-reproducible CPU results."""


@pytest.fixture(scope="module")
def data() -> Dataset:
    digits = load_digits()
    x = (digits.images[:, None] / 16).astype(np.float32)  # (N, 1, 8, 8)
    y = digits.target.astype(np.int64)
    return Dataset("digits", x[:300], y[:300], x[300:400], y[300:400], CLASSES)


def small_space() -> ChainSpace:
    """240 architectures."""
    return ChainSpace("image", max_depth=2, widths=(8,))


def tiny_space() -> ChainSpace:
    """15 architectures: one layer."""
    return ChainSpace("image", max_depth=1, widths=(8,))


def free(genotype: Genotype) -> float:
    """An estimator that costs nothing, for checks of what is proposed."""
    return 0.0


def keys(study: Study) -> list[str]:
    return [t.key for t in study.trials]


@pytest.mark.parametrize("proxy", ["synflow", "params"])  # params: many ties
def test_proposals_follow_the_proxys_ranking(data: Dataset, proxy: str) -> None:
    space = small_space()
    strategy = ProxyRankedSearch(space, seed=3, dataset=data, pool=20, proxy=proxy)
    assert strategy.scored == 0 and strategy.proxy_seconds == 0.0
    pool = strategy.scored_pool()
    assert strategy.scored == 20 and strategy.proxy_seconds > 0

    # The pool: the first 20 distinct samples of default_rng(seed).
    rng, expected = np.random.default_rng(3), {}
    while len(expected) < 20:
        genotype = space.sample(rng)
        expected.setdefault(space.key(genotype), genotype)
    assert [g for g, _ in pool] == list(expected.values())

    # The scores: what the estimator reports for each member at its seed.
    estimator = ZeroCostEstimator(data, space, proxy=proxy)
    direct = [estimator.evaluate(g, TrialContext(number=i, seed=pool_seed(3, i)))[proxy]
              for i, (g, _) in enumerate(pool)]
    assert [score for _, score in pool] == direct
    ranked = sorted(range(20), key=lambda i: (-direct[i], i))  # ties in pool order
    assert proxy != "params" or len(set(direct)) < 20

    study = archsearch.create_study(space, strategy, free, seed=3)
    study.optimize(trials=20)
    assert keys(study) == [space.key(pool[i][0]) for i in ranked]


def test_no_repeats_then_random_search_until_the_space_is_exhausted(data: Dataset) -> None:
    space = tiny_space()
    strategy = ProxyRankedSearch(space, seed=0, dataset=data, pool=6, proxy="snip")
    study = archsearch.create_study(space, strategy, free)
    study.optimize(trials=space.size() + 5)
    seen = keys(study)
    assert len(seen) == len(set(seen)) == space.size()
    pool = {space.key(g) for g, _ in strategy.scored_pool()}
    assert set(seen[:6]) == pool and not pool & set(seen[6:])
    # After the pool, a random unseen architecture from the study's rng.
    done = study.trials[:8]
    asked = strategy.ask(done, np.random.default_rng(9))
    assert asked == random_unseen(space, {t.key for t in done}, np.random.default_rng(9))
    assert strategy.ask(study.trials, np.random.default_rng(9)) is None


def test_a_fresh_object_resumes_exactly(data: Dataset) -> None:
    def run(trials: int, storage: InMemoryStorage | None = None) -> Study:
        study = archsearch.create_study(small_space(), "zero-cost-ranked", free, seed=5,
                                        data=data, strategy_params={"pool": 8},
                                        storage=storage)
        study.optimize(trials=trials)
        return study

    straight = run(12)  # past the pool, into random search
    storage = InMemoryStorage()
    run(5, storage)
    resumed = run(12, storage)
    assert keys(resumed) == keys(straight)


def test_a_multi_objective_study_drives_it_unwrapped(data: Dataset) -> None:
    def cost(genotype: Genotype) -> dict[str, float]:
        return {"val_accuracy": 0.0, "params": 1.0}

    single = archsearch.create_study(small_space(), "zero-cost-ranked", free, data=data,
                                     strategy_params={"pool": 8})
    several = archsearch.create_study(small_space(), "zero-cost-ranked", cost, data=data,
                                      strategy_params={"pool": 8},
                                      objectives=["val_accuracy:max", "params:min"])
    assert isinstance(several.strategy, ProxyRankedSearch)  # not ParEGO
    single.optimize(trials=6)
    several.optimize(trials=6)
    assert keys(several) == keys(single)


def test_a_real_study_trains_the_proxys_best_first(data: Dataset) -> None:
    study = archsearch.create_study(
        "chain", "zero-cost-ranked", "training", data=data, seed=1,
        space_params={"modality": "image", "max_depth": 2, "widths": (8,)},
        strategy_params={"pool": 20, "proxy": "naswot", "batch_size": 32},
        estimator_params={"epochs": 1, "batch_size": 32, "lr": 1e-2, "device": "cpu",
                          "latency_repeats": 1})
    study.optimize(trials=3)
    strategy = study.strategy
    assert isinstance(strategy, ProxyRankedSearch)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    pool = strategy.scored_pool()
    best = max(range(len(pool)), key=lambda i: (pool[i][1], -i))
    assert study.trials[0].key == study.space.key(pool[best][0])
    assert strategy.get_params() == {"seed": 1, "proxy": "naswot", "pool": 20,
                                     "batch_size": 32, "device": "cpu"}


def scheduled(data: Dataset, storage: Path, trials: int, scheduler: str,
              params: dict[str, float]) -> tuple[Study, list[Genotype]]:
    """A study of ``trials`` real trainings (9 epochs) under ``scheduler``, its new
    configurations from a pool of 20 best-first; and that pool in proxy order."""
    study = archsearch.create_study(
        small_space(), "zero-cost-ranked", "training", data=data, seed=4, storage=storage,
        strategy_params={"pool": 20, "batch_size": 32},
        estimator_params={"epochs": 9, "batch_size": 64, "lr": 1e-2, "device": "cpu",
                          "latency_repeats": 1},
        scheduler=scheduler, scheduler_params=params)
    study.optimize(trials=trials)
    strategy = study.strategy
    assert isinstance(strategy, ProxyRankedSearch)
    pool = strategy.scored_pool()
    ranked = sorted(range(len(pool)), key=lambda i: (-pool[i][1], i))
    return study, [pool[i][0] for i in ranked]


def test_a_scheduler_sifts_the_proxys_best_first(data: Dataset, tmp_path: Path) -> None:
    """Successive halving (9 at 1 epoch, 3 at 3, 1 at 9) over real training takes its new
    configurations from the pool best-first: its first rung is the pool's top nine, and
    the trials promoted from it are the three best of that rung by validation accuracy."""
    study, ranked = scheduled(data, tmp_path / "sh.db", 9, "successive-halving",
                              {"min_epochs": 1, "eta": 3})
    trials = study.trials
    assert keys(study) == [study.space.key(g) for g in ranked[:9]]
    first_rung = sorted(trials, key=lambda t: (-t.curve[0]["val_accuracy"], t.number))
    promoted = {t.number for t in trials if len(t.curve) > 1}
    assert promoted == {t.number for t in first_rung[:3]}
    assert sum(t.state.name == "COMPLETE" for t in trials) == 1


def test_asha_prunes_among_the_proxys_best_first(data: Dataset, tmp_path: Path) -> None:
    """The ASHA pruner (rungs at 1 and 3 epochs, keep one in 3) over real training with
    new configurations from the pool best-first: the trials are the pool's top ones in
    proxy order, and a trial stopped at a rung is recorded as pruned with its curve up to
    that rung."""
    study, ranked = scheduled(data, tmp_path / "asha.db", 6, "asha",
                              {"min_resource": 1, "reduction_factor": 3})
    assert keys(study) == [study.space.key(g) for g in ranked[:6]]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and all(len(t.curve) in (1, 3) for t in pruned)
    assert {t.state.name for t in study.trials} <= {"PRUNED", "COMPLETE"}


def test_without_a_dataset_it_builds_and_refuses_at_the_first_ask() -> None:
    space = small_space()
    # As a config is checked: every component built once without data.
    target = registry.resolve("strategy", "zero-cost-ranked")
    strategy = registry.construct("strategy", target, {"pool": 4}, space=space, seed=0,
                                  dataset=None)
    with pytest.raises(ConfigError, match="no dataset") as error:
        strategy.ask([], np.random.default_rng(0))
    assert "\n" not in str(error.value)


class Plain(DecisionSpace):
    """A space without networks."""

    name = "plain"

    def __init__(self) -> None:
        super().__init__([categorical("a", (1, 2, 3))])


@pytest.mark.parametrize(("space", "settings", "message"), [
    (small_space(), {"proxy": "nope"}, "unknown proxy 'nope'; choose from synflow.*naswot"),
    (small_space(), {"pool": 0}, "pool must be an integer >= 1"),
    (small_space(), {"batch_size": 1}, "batch_size"),
    (Plain(), {}, "build_network"),
])
def test_bad_settings_are_refused_at_construction(
    space: SearchSpace, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ProxyRankedSearch(space, **settings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        archsearch.create_study(space, "zero-cost-ranked", free, strategy_params=settings)


def test_it_is_exported_lazily() -> None:
    from archsearch import strategy

    assert strategy.ProxyRankedSearch is ProxyRankedSearch
    assert "ProxyRankedSearch" in strategy.__all__


def test_a_pool_as_large_as_the_space_is_the_whole_space(data: Dataset) -> None:
    space = small_space()  # sampling depth 2 half the time finds its 225 networks slowly
    strategy = ProxyRankedSearch(space, dataset=data, pool=1000, proxy="params")
    assert strategy.scored_pool() and strategy.scored == space.size()


class Perceptrons(DecisionSpace):
    """One hidden layer of ``width`` units, with a ReLU or without one."""

    name = "perceptrons"

    def __init__(self, relus: tuple[bool, ...]) -> None:
        super().__init__([categorical("relu", relus), categorical("width", (4, 8))])

    def build_network(self, genotype: Genotype, input_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module:
        width = int(genotype["width"])
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), width),
                             nn.ReLU() if genotype["relu"] else nn.Identity(),
                             nn.Linear(width, num_classes))


def test_a_network_the_proxy_cannot_score_ranks_last(data: Dataset) -> None:
    space = Perceptrons((False, True))  # naswot needs an activation
    strategy = ProxyRankedSearch(space, dataset=data, pool=4, proxy="naswot")
    study = archsearch.create_study(space, strategy, free)
    study.optimize(trials=4)
    assert [t.genotype["relu"] for t in study.trials] == [True, True, False, False]
    assert sum(np.isnan(score) for _, score in strategy.scored_pool()) == 2


def test_a_proxy_that_fails_on_every_network_is_a_config_error(data: Dataset) -> None:
    strategy = ProxyRankedSearch(Perceptrons((False,)), dataset=data, pool=3, proxy="naswot")
    with pytest.raises(ConfigError, match="could not score any of the 2 .*activation"):
        strategy.ask([], np.random.default_rng(0))
