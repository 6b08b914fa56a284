"""The predictor-guided strategies, bananas and gp-bo: the NB201 path encoding, exact
resume, pending trials, settings, that the surrogate ranks NB201 cells well, and the
zero-cost warm start of the initial design.  The
shared contract (valid proposals, reproducibility) is in test_conformance."""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import replace

import numpy as np
import pytest
import torch

import archsearch
from archsearch import registry
from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError
from archsearch.space import (
    ChainSpace,
    DecisionSpace,
    Genotype,
    NB201Space,
    SearchSpace,
    categorical,
)
from archsearch.space.nb201 import NB201_EDGE_NAMES
from archsearch.storage import InMemoryStorage
from archsearch.strategy.bananas import Bananas
from archsearch.strategy.encodings import nb201_path_encoding, nb201_path_indices
from archsearch.strategy.gp_search import GaussianProcessSearch
from archsearch.strategy.proxy_ranked import ProxyRankedSearch
from archsearch.study import Budget, Study
from archsearch.trial import FrozenTrial, TrialState

pytestmark = pytest.mark.usefixtures("one_torch_thread")

needs_anb = pytest.mark.skipif(importlib.util.find_spec("analognasbench") is None,
                               reason="analog-nasbench is not installed")

STRATEGIES = {"bananas": Bananas, "gp-bo": GaussianProcessSearch}


# -- the path encoding ---------------------------------------------------------------------
def test_path_encoding_of_the_all_conv3x3_cell() -> None:
    # nor_conv_3x3 is op 2 of the reference's list; all four paths are 3x3 convs:
    # length 1: 0 + 2; length 2: 5 + 2 + 2*5 (twice, one slot); length 3: 30 + 2 + 10 + 50.
    cell = Genotype.of({name: "nor_conv_3x3" for name in NB201_EDGE_NAMES})
    assert nb201_path_indices(cell) == (2, 17, 17, 92)
    full = nb201_path_encoding(cell, cutoff=None)
    assert full.shape == (155,) and np.flatnonzero(full).tolist() == [2, 17, 92]
    truncated = nb201_path_encoding(cell)
    assert truncated.shape == (30,) and np.flatnonzero(truncated).tolist() == [2, 17]


def test_path_encoding_with_none_edges_and_the_truncation() -> None:
    space = NB201Space()
    # edges 1<-0 conv3 (op 2), 2<-0 none (3), 2<-1 skip (4), 3<-0 avgpool (0),
    # 3<-1 conv1 (1), 3<-2 conv3 (2)
    cell = space.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|"
                             "nor_conv_1x1~1|nor_conv_3x3~2|")
    # [3]: 0; [0,4]: 5 + 2 + 1*5; [1,5]: 5 + 3 + 2*5; [0,2,5]: 30 + 2 + 4*5 + 2*25.
    # As in the reference, the path 0 -> 2 -> 3 through 'none' keeps its slot (18).
    assert nb201_path_indices(cell) == (0, 12, 18, 102)
    assert np.flatnonzero(nb201_path_encoding(cell)).tolist() == [0, 12, 18]
    # The first 30 slots hold no path of length 3, so edge 2<-1 is not encoded.
    other = cell.replace(**{"edge2<-1": "avg_pool_3x3"})
    assert np.array_equal(nb201_path_encoding(other), nb201_path_encoding(cell))
    assert not np.array_equal(nb201_path_encoding(other, cutoff=None),
                              nb201_path_encoding(cell, cutoff=None))


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [
    {"initial_samples": 0}, {"queries_per_iteration": 0}, {"num_candidates": 0},
    {"patience_factor": 0}, {"encoding": "adjacency"}, {"initial_samples": 2.5},
])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bad_shared_settings_are_config_errors(name: str, settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        STRATEGIES[name](NB201Space(), seed=0, **settings)


@pytest.mark.parametrize("settings", [
    {"epochs": 0}, {"ensemble_size": 0}, {"hidden_layers": 0}, {"layer_width": 0},
    {"batch_size": 0}, {"learning_rate": 0.0}, {"learning_rate": float("nan")},
    {"betas": (0.9,)}, {"betas": (0.9, 1.0)},
])
def test_bad_bananas_settings_are_config_errors(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Bananas(NB201Space(), seed=0, **settings)


def test_bad_gp_settings_and_encodings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="kernel"):
        GaussianProcessSearch(NB201Space(), kernel="linear")
    with pytest.raises(ConfigError, match="n_restarts"):
        GaussianProcessSearch(NB201Space(), n_restarts=-1)
    with pytest.raises(ConfigError, match="path encoding"):
        Bananas(ChainSpace("vector"), encoding="path")
    with pytest.raises(ConfigError):  # an unknown setting, by name
        archsearch.create_study(NB201Space(), "bananas", lambda g: 0.0,
                                strategy_params={"epoch": 10})


# -- determinism, pending trials, resume ---------------------------------------------------
def _record(n: int, failed: tuple[int, ...] = ()) -> list[FrozenTrial]:
    """``n`` finished trials on NB201 with a smooth made-up score; ``failed`` ones failed."""
    space = NB201Space()
    rng = np.random.default_rng(42)
    weights = np.random.default_rng(1).normal(size=space.encode(space.sample(rng)).shape[0])
    trials, keys = [], set()
    while len(trials) < n:
        g = space.sample(rng)
        if space.key(g) in keys:
            continue
        keys.add(space.key(g))
        number = len(trials)
        score = float(space.encode(g) @ weights)
        state = TrialState.FAILED if number in failed else TrialState.COMPLETE
        trials.append(FrozenTrial(number, state, g, space.key(g),
                                  value=None if number in failed else score,
                                  score=None if number in failed else score,
                                  finish_order=number + 1))
    return trials


def _pending(trials: list[FrozenTrial], genotype: Genotype) -> list[FrozenTrial]:
    key = NB201Space().key(genotype)
    return [*trials, FrozenTrial(len(trials), TrialState.RUNNING, genotype, key)]


def _small(name: str, space: NB201Space, seed: int) -> Bananas | GaussianProcessSearch:
    """The strategy with a cheaper ensemble where it has one (the tests check the loop,
    not the published settings' accuracy)."""
    if name == "bananas":
        return Bananas(space, seed=seed, epochs=30)
    return GaussianProcessSearch(space, seed=seed)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_record_same_proposals_and_no_global_rng_touched(name: str) -> None:
    trials = _record(23, failed=(3, 15))
    space = NB201Space()
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    a = _small(name, space, seed=7).ask(trials, np.random.default_rng(0))
    b = _small(name, space, seed=7).ask(trials, np.random.default_rng(99))  # other rng
    assert a is not None and a == b
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_pending_architectures_are_never_proposed_again(name: str) -> None:
    """Two workers and more: each ask is made while the earlier proposals still run.
    Fifteen pending trials use up the iteration's batch of ten and more; the next-best
    candidates follow, all distinct and unseen; the surrogate is fitted once."""
    space = NB201Space()
    trials = _record(20, failed=(4,))
    strategy = _small(name, space, seed=0)
    proposed = []
    for i in range(15):
        genotype = strategy.ask(trials, np.random.default_rng(i))
        assert genotype is not None
        proposed.append(space.key(genotype))
        trials = _pending(trials, genotype)
    assert len(set(proposed)) == 15
    assert not set(proposed) & {t.key for t in trials[:20]}
    # A fresh strategy given the same record (pending trials included) agrees.
    again = _small(name, space, seed=0).ask(trials, np.random.default_rng(0))
    assert again == strategy.ask(trials, np.random.default_rng(0))
    assert again is not None and space.key(again) not in {t.key for t in trials}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_batch_is_proposed_in_order_across_asks(name: str) -> None:
    """In one iteration, the asks go down one ranked list: proposing with the earlier
    proposals pending gives what proposing after they finished gives."""
    space = NB201Space()
    trials = _record(10)
    first = _small(name, space, seed=3).ask(trials, np.random.default_rng(0))
    assert first is not None
    second = _small(name, space, seed=3).ask(_pending(trials, first), np.random.default_rng(1))
    assert second is not None and second != first


def _study(name: str, seed: int, trials: int, storage: InMemoryStorage | None = None,
           settings: dict[str, object] | None = None) -> Study:
    from archsearch.tabular.nb201 import NB201Estimator

    estimator = NB201Estimator()
    space = estimator.space
    strategy = STRATEGIES[name](space, seed=seed, **(settings or {}))
    study = Study(space, strategy, estimator, storage, seed=seed)
    study.optimize(budget=Budget(trials=trials))
    return study


@needs_anb
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_resumed_study_proposes_what_an_uninterrupted_one_does(name: str) -> None:
    """Stopped at 25 trials, mid-iteration, and resumed by a fresh strategy: the same 40
    cells as a study that ran straight through."""
    settings = {"epochs": 30} if name == "bananas" else {}
    straight = _study(name, seed=1, trials=40, settings=settings)
    storage = InMemoryStorage()
    _study(name, seed=1, trials=25, storage=storage, settings=settings)
    resumed = _study(name, seed=1, trials=40, storage=storage, settings=settings)
    assert [t.key for t in resumed.trials] == [t.key for t in straight.trials]
    strategy = straight.strategy
    assert isinstance(strategy, (Bananas, GaussianProcessSearch)) and strategy.fit_seconds > 0


# -- quality -------------------------------------------------------------------------------
def _nb201_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Path encodings and table accuracies of 100 random NB201 cells and 1,000 others."""
    from archsearch.tabular.nb201 import NB201Estimator

    estimator = NB201Estimator()
    accuracy = np.asarray(estimator.objective_values())
    order = np.random.default_rng(seed).permutation(len(accuracy))
    train, held_out = order[:100], order[100:1100]

    def encode(rows: np.ndarray) -> np.ndarray:
        return np.stack([nb201_path_encoding(estimator.space.from_index(int(i))) for i in rows])

    return encode(train), accuracy[train], encode(held_out), accuracy[held_out]


@needs_anb
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_surrogate_ranks_held_out_nb201_cells(name: str) -> None:
    """Published settings, 100 training cells: the surrogate's mean ranks 1,000 held-out
    cells with Spearman > 0.5 (measured: ensemble 0.79-0.82, GP 0.58-0.75 over three
    splits), and the acquisition's ten favourites beat the held-out median.  A broken
    predictor, encoding or acquisition (upside down, or at random) fails this."""
    from scipy.stats import spearmanr

    x_train, y_train, x_test, y_test = _nb201_split(seed=0)
    space = NB201Space()
    if name == "bananas":
        loss = -y_train
        target = (loss - loss.mean()) / loss.std()
        mean, _ = Bananas(space).ensemble().fit(x_train, target, seed=0).predict(x_test)
        predicted = -mean
    else:
        predicted = GaussianProcessSearch(space).model(seed=0).fit(x_train, y_train).predict(x_test)
    assert spearmanr(predicted, y_test)[0] > 0.5
    order = STRATEGIES[name](space)._rank(x_train, y_train, x_test, seed=0)
    assert sorted(order.tolist()) == list(range(len(y_test)))
    assert np.mean(y_test[order[:10]]) > np.median(y_test)


def test_failed_trials_are_not_training_data() -> None:
    """A record of failures only (after the initial design) leaves nothing to learn from:
    random unseen cells, never a failed one again."""
    space = NB201Space()
    trials = [replace(t, state=TrialState.FAILED, score=None, value=None)
              for t in _record(12)]
    strategy = Bananas(space, seed=0)
    genotype = strategy.ask(trials, np.random.default_rng(0))
    assert genotype is not None and space.key(genotype) not in {t.key for t in trials}
    assert strategy.fit_seconds == 0


# -- the zero-cost warm start --------------------------------------------------------------
def _warm_settings(name: str, **settings: object) -> dict[str, object]:
    return {"epochs": 30, **settings} if name == "bananas" else dict(settings)


@needs_anb
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_warm_start_on_the_table_begins_with_the_pools_synflow_best_and_resumes(
    name: str,
) -> None:
    """No data, on the table's own space: the pool's synflow values come from the shipped
    table, and the initial design is the pool's top ten by them.  Stopped at 15 trials,
    past the initial design, and resumed by a fresh strategy: the same 25 cells."""
    from archsearch.tabular.nb201_proxies import load_nb201_proxy

    settings = _warm_settings(name, warm_start="synflow")
    straight = _study(name, seed=4, trials=25, settings=settings)
    strategy = straight.strategy
    assert isinstance(strategy, (Bananas, GaussianProcessSearch))
    assert strategy.proxy_seconds > 0 and strategy.fit_seconds > 0
    # The pool, computed here: the first 1,000 distinct samples of default_rng(seed).
    space, rng, pool = NB201Space(), np.random.default_rng(4), {}
    while len(pool) < 1000:
        genotype = space.sample(rng)
        pool.setdefault(space.key(genotype), genotype)
    synflow = load_nb201_proxy("synflow")
    best = sorted(pool, key=lambda key: -synflow[space.index(pool[key])])[:10]  # stable
    keys = [t.key for t in straight.trials]
    assert keys[:10] == best and len(set(keys)) == 25

    storage = InMemoryStorage()
    _study(name, seed=4, trials=15, storage=storage, settings=settings)
    resumed = _study(name, seed=4, trials=25, storage=storage, settings=settings)
    assert [t.key for t in resumed.trials] == keys


@pytest.fixture(scope="module")
def digits() -> Dataset:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images[:, None] / 16).astype(np.float32)  # (N, 1, 8, 8)
    y = data.target.astype(np.int64)
    return Dataset("digits", x[:300], y[:300], x[300:400], y[300:400],
                   tuple(str(c) for c in range(10)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_warm_start_scores_a_trainable_pool_on_the_studys_data(
    name: str, digits: Dataset
) -> None:
    """A space of real networks and the study's data (injected by name): the pool is
    scored on a minibatch, the initial design is its best five, the search goes on."""
    from conformance import EncodingObjective

    space = ChainSpace("image", max_depth=2, widths=(8,))
    settings = _warm_settings(name, warm_start="snip", warm_pool=12, initial_samples=5,
                              queries_per_iteration=2)
    study = archsearch.create_study(space, name, EncodingObjective(space), seed=3,
                                    data=digits, strategy_params=settings)
    study.optimize(trials=8)
    strategy = study.strategy
    assert isinstance(strategy, (Bananas, GaussianProcessSearch))
    assert strategy.proxy_seconds > 0 and strategy.fit_seconds > 0
    # The same pool and scores, from a zero-cost-ranked search of the same seed.
    pool = ProxyRankedSearch(space, 3, digits, proxy="snip", pool=12).scored_pool()
    assert len({space.key(g) for g, _ in pool}) == 12
    assert all(np.isfinite(s) for _, s in pool) and len({s for _, s in pool}) > 1
    ranked = sorted(pool, key=lambda gs: -gs[1])[:5]
    keys = [t.key for t in study.trials]
    assert keys[:5] == [space.key(g) for g, _ in ranked] and len(set(keys)) == 8
    params = strategy.get_params()
    assert params["warm_start"] == "snip" and params["warm_pool"] == 12
    assert "dataset" not in params
    # Copies (ParEGO copies its inner strategy at every ask) share the scored pool.
    assert copy.deepcopy(strategy).proxy_seconds == strategy.proxy_seconds


class Plain(DecisionSpace):
    """A space without networks."""

    name = "plain"

    def __init__(self) -> None:
        super().__init__([categorical("a", (1, 2, 3))])


@pytest.mark.parametrize(("space", "settings", "message"), [
    (NB201Space(), {"warm_start": "nope"}, "unknown warm_start proxy 'nope'; choose from"),
    (NB201Space(), {"warm_start": "synflow", "warm_pool": 0}, "warm_pool must be an integer"),
    (NB201Space(), {"warm_start": "synflow", "warm_pool": 2.5}, "warm_pool"),
    (NB201Space(), {"warm_pool": True}, "warm_pool"),
    (Plain(), {"warm_start": "synflow"}, "cannot build them"),
])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bad_warm_start_settings_are_refused_at_construction(
    name: str, space: SearchSpace, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        STRATEGIES[name](space, seed=0, **settings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        archsearch.create_study(space, name, lambda g: 0.0, strategy_params=settings)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_warm_start_without_data_builds_and_refuses_at_the_first_ask(name: str) -> None:
    # As a config is checked: built without data.  A trainable space needs data to score;
    # so does an NB201 space other than the table's own.
    for space in (ChainSpace("image", max_depth=2, widths=(8,)),
                  NB201Space(channels=8, cells_per_stage=1)):
        target = registry.resolve("strategy", name)
        strategy = registry.construct("strategy", target, {"warm_start": "synflow"},
                                      space=space, seed=0, dataset=None)
        with pytest.raises(ConfigError, match=f"{name} with warm_start='synflow'.*no dataset"
                           ) as error:
            strategy.ask([], np.random.default_rng(0))
        assert "\n" not in str(error.value)
        assert strategy.proxy_seconds == 0


def test_mutations_reach_past_the_best_parents_once_their_neighbourhoods_are_seen() -> None:
    """NB201 cells have 24 one-edge neighbours: after a long search every neighbour of the
    best ``patience_factor`` cells may be evaluated.  Candidates then come from the next
    best parents (before, none came and the strategy fell back to random search)."""
    from archsearch.strategy._surrogate import Point

    space = NB201Space()
    strategy = GaussianProcessSearch(space, seed=0, patience_factor=2, num_candidates=20)
    points = [Point(space.key(g), g, float(-k)) for k, g in enumerate(
        space.sample(np.random.default_rng(k)) for k in range(4))]
    rng = np.random.default_rng(0)
    seen = {p.key for p in points}
    for parent in points[:2]:  # every neighbour of the two best parents is seen
        for _ in range(2000):
            seen.add(space.key(space.mutate(parent.genotype, rng)))
    candidates = strategy._mutations(points, seen, np.random.default_rng(1))
    assert candidates and all(key not in seen for _, key in candidates)
    assert len(candidates) < 20  # one lower parent's unseen mutations, not a full batch
    fresh = strategy._mutations(points, {p.key for p in points}, np.random.default_rng(1))
    assert len(fresh) >= 20  # the usual case is unchanged: the best parents fill the batch
