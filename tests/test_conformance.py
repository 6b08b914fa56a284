"""Conformance: every space and every strategy obeys the same contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archsearch.space import Genotype, InvalidGenotype, SearchSpace
from archsearch.storage import InMemoryStorage
from archsearch.study import Budget, Study
from conformance import SPACES, EncodingObjective, strategy_factories

STRATEGIES = strategy_factories()


@pytest.fixture(params=sorted(SPACES))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SPACES[request.param]()


def test_samples_are_valid_and_round_trip_through_json(space: SearchSpace) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        genotype = space.sample(rng)
        space.validate(genotype)
        again = Genotype.from_json(json.loads(json.dumps(genotype.to_json())))
        assert again == genotype and hash(again) == hash(genotype)
        assert space.key(again) == space.key(genotype)
        assert space.format(genotype)


def test_same_seed_same_samples(space: SearchSpace) -> None:
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    a = [space.sample(r) for r in [np.random.default_rng(3)] * 20]
    b = [space.sample(r) for r in [np.random.default_rng(3)] * 20]
    assert a == b and first[0] == first[1]


def test_mutation_and_neighbours_stay_in_the_space(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        genotype = space.sample(rng)
        child = space.mutate(genotype, rng)
        space.validate(child)
        assert space.key(child) != space.key(genotype)
        neighbours = space.neighbours(genotype)
        assert neighbours
        for n in neighbours:
            space.validate(n)
        assert space.key(genotype) not in {space.key(n) for n in neighbours}
        other = space.sample(rng)
        space.validate(space.crossover(genotype, other, rng))


def test_grid_enumerates_exactly_size(space: SearchSpace) -> None:
    keys = [space.key(g) for g in space.enumerate()]
    assert len(keys) == space.size() == len(set(keys))


def test_encoding_has_a_fixed_length(space: SearchSpace) -> None:
    rng = np.random.default_rng(2)
    lengths = {space.encode(space.sample(rng)).shape for _ in range(20)}
    assert len(lengths) == 1


def test_validate_rejects_foreign_genotypes(space: SearchSpace) -> None:
    genotype = space.sample(np.random.default_rng(0))
    with pytest.raises(InvalidGenotype, match="unknown"):
        space.validate(genotype.replace(no_such_decision=1))
    name = next(iter(genotype))
    with pytest.raises(InvalidGenotype):
        space.validate(genotype.replace(**{name: "not-a-choice"}))


# -- strategies ---------------------------------------------------------------------------
STRATEGY_SPACES = ["multi-branch-vector", "chain-image"] + (["nb201"] if "nb201" in SPACES else [])


def _run(space_name: str, strategy_name: str, seed: int, trials: int,
         storage: InMemoryStorage | None = None) -> Study:
    space = SPACES[space_name]()
    study = Study(space, STRATEGIES[strategy_name](space, seed), EncodingObjective(space),
                  storage, seed=seed)
    study.optimize(budget=Budget(trials=trials))
    return study


@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
@pytest.mark.parametrize("space_name", STRATEGY_SPACES)
def test_strategy_proposes_valid_new_architectures(space_name: str, strategy_name: str) -> None:
    study = _run(space_name, strategy_name, seed=0, trials=30)
    evaluated = [t for t in study.trials if not t.cached]
    assert len(evaluated) == 30
    if strategy_name in ("random", "grid"):  # these never repeat an architecture
        assert len({t.key for t in study.trials}) == len(study.trials)


@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_strategy_is_reproducible(strategy_name: str) -> None:
    a = _run("multi-branch-vector", strategy_name, seed=3, trials=25)
    b = _run("multi-branch-vector", strategy_name, seed=3, trials=25)
    assert [t.key for t in a.trials] == [t.key for t in b.trials]


@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_strategy_resumes_exactly(strategy_name: str) -> None:
    """A study stopped after 12 trials and resumed by fresh objects equals one that ran
    straight through: the strategy rebuilt its state from the record."""
    straight = _run("multi-branch-vector", strategy_name, seed=5, trials=30)
    storage = InMemoryStorage()
    _run("multi-branch-vector", strategy_name, seed=5, trials=12, storage=storage)
    resumed = _run("multi-branch-vector", strategy_name, seed=5, trials=30, storage=storage)
    assert [t.key for t in resumed.trials] == [t.key for t in straight.trials]


@pytest.mark.parametrize("strategy_name", ["random", "grid"])
def test_exhausting_a_space_ends_the_study_cleanly(strategy_name: str) -> None:
    space = SPACES["multi-branch-vector"]()
    study = _run("multi-branch-vector", strategy_name, seed=0, trials=space.size() + 10)
    assert len(study.trials) == space.size()
    assert study.best_trial is not None
    best = max(space.enumerate(), key=EncodingObjective(space).score)
    assert study.best_trial.key == space.key(best)


@pytest.mark.skipif("nbgraph" not in SPACES, reason="needs the nbgraph space")
@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_strategies_respect_rules_beyond_the_decisions(strategy_name: str) -> None:
    """NAS-Bench-Graph forbids the all-skip cell, which its decisions alone allow; a
    landscape that rewards skips pushes every strategy towards it."""
    space = SPACES["nbgraph"]()

    class PrefersSkip(EncodingObjective):
        def score(self, genotype: Genotype) -> float:
            return float(sum(genotype[f"op{i}"] == "skip" for i in range(4)))

    study = Study(space, STRATEGIES[strategy_name](space, 0), PrefersSkip(space), seed=0)
    study.optimize(budget=Budget(trials=60))  # an invalid proposal would raise InvalidGenotype
    assert study.n_evaluated == 60
