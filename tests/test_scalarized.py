"""ParEGO's scalarisation (``archsearch.strategy.scalarized``): the lattice of weights, the
augmented Tchebycheff score, the wrapper around single-objective strategies (valid,
deterministic, exact resume) and the study wrapping them on a multi-objective study."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

import archsearch
from archsearch.errors import ConfigError
from archsearch.loop import Driver
from archsearch.space import Genotype, SearchSpace
from archsearch.storage import InMemoryStorage
from archsearch.strategy import GridSearch, LocalSearch, RandomSearch, RegularizedEvolution
from archsearch.strategy.base import Strategy
from archsearch.strategy.evolution import Evolution
from archsearch.strategy.scalarized import (
    ParEGO,
    augmented_tchebycheff,
    lattice,
    normalised_costs,
)
from archsearch.study import Budget, Study
from archsearch.trial import FrozenTrial, TrialState
from test_multiobjective_conformance import OBJECTIVES, ToyObjectives, TwoObjectiveToy

INNER: dict[str, Callable[[SearchSpace, int], Strategy]] = {
    "random": lambda space, seed: RandomSearch(space, seed=seed),
    "regularized-evolution": lambda space, seed: RegularizedEvolution(
        space, seed=seed, population_size=8, sample_size=4),
    "local-search": lambda space, seed: LocalSearch(space, seed=seed, initial_samples=5),
}


def _study(inner: str, seed: int, storage: InMemoryStorage | None = None,
           constraints: dict[str, dict[str, float]] | None = None) -> Study:
    space = TwoObjectiveToy()
    strategy = ParEGO.wrap(INNER[inner](space, seed))
    return Study(space, strategy, ToyObjectives(space), storage, seed=seed,
                 objectives=OBJECTIVES, constraints=constraints)


def _keys(study: Study) -> list[str]:
    return [t.key for t in study.trials]


# -- the scalarisation ---------------------------------------------------------------------
def test_the_lattice_is_knowles() -> None:
    two, three = lattice(2, 10), lattice(3, 4)
    assert len(two) == 11 and len(three) == 15  # Knowles 2006, section III-B
    for vectors in (two, three):
        assert np.allclose(vectors.sum(axis=1), 1.0) and (vectors >= 0).all()
        assert len({tuple(v) for v in vectors}) == len(vectors)
    assert two[0].tolist() == [0.0, 1.0] and two[-1].tolist() == [1.0, 0.0]


def test_costs_are_normalised_per_objective_and_constant_ones_are_zero() -> None:
    scores = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 0.0], [2.0, 5.0, 1.0]])
    costs = normalised_costs(scores)
    assert costs.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]]


def test_augmented_tchebycheff_by_hand() -> None:
    costs = np.array([[0.2, 0.6], [1.0, 0.0]])
    weights = np.array([0.3, 0.7])
    # max(0.06, 0.42) + 0.05 * 0.48 = 0.444;  max(0.3, 0) + 0.05 * 0.3 = 0.315
    assert augmented_tchebycheff(costs, weights, 0.05) == pytest.approx([0.444, 0.315])


def _trial(number: int, scores: tuple[float, float] | None, feasible: bool = True,
           state: TrialState = TrialState.COMPLETE) -> FrozenTrial:
    g = Genotype.of({"d0": number})
    return FrozenTrial(number, state, g, str(number), scores=scores, feasible=feasible,
                       finish_order=number + 1)


def test_scalarised_scores_by_hand_and_none_for_infeasible_or_failed() -> None:
    strategy = ParEGO(TwoObjectiveToy(), seed=0, inner="random")
    trials = [_trial(0, (1.0, -4.0)), _trial(1, (3.0, -8.0)), _trial(2, (2.0, -5.0)),
              _trial(3, (9.0, 0.0), feasible=False), _trial(4, None, state=TrialState.FAILED),
              _trial(5, None, state=TrialState.RUNNING)]
    out = strategy.scalarised(trials, np.array([0.5, 0.5]))
    # costs over the feasible three: (1, 0), (0, 1), (0.5, 0.25); the infeasible one's
    # better scores do not stretch the ranges.
    assert out[0] == pytest.approx(-(0.5 + 0.05 * 0.5))
    assert out[1] == pytest.approx(-(0.5 + 0.05 * 0.5))
    assert out[2] == pytest.approx(-(0.25 + 0.05 * 0.375))
    assert out[3] is None and out[4] is None and 5 not in out


def test_the_weights_are_drawn_from_the_lattice_with_the_rng() -> None:
    strategy = ParEGO(TwoObjectiveToy(), seed=0, inner="random")
    drawn = {tuple(strategy.weights(2, np.random.default_rng(s))) for s in range(200)}
    assert drawn == {tuple(v) for v in lattice(2, 10)}
    assert len(strategy.weights(3, np.random.default_rng(0))) == 3
    assert ParEGO(TwoObjectiveToy(), seed=0, inner="random", divisions=2).weights(
        2, np.random.default_rng(0)).tolist() in ([0, 1], [0.5, 0.5], [1, 0])


# -- the wrapper -----------------------------------------------------------------------------
@pytest.mark.parametrize("inner", sorted(INNER))
def test_valid_new_proposals_and_a_front(inner: str) -> None:
    study = _study(inner, seed=0)
    study.optimize(budget=Budget(trials=40))
    assert study.n_evaluated == 40
    for t in study.trials:
        study.space.validate(t.genotype)
    if inner == "random":
        assert len(set(_keys(study))) == len(study.trials)
    assert len(study.pareto_front()) >= 2


@pytest.mark.parametrize("inner", sorted(INNER))
def test_deterministic(inner: str) -> None:
    a, b = _study(inner, seed=3), _study(inner, seed=3)
    a.optimize(budget=Budget(trials=30))
    b.optimize(budget=Budget(trials=30))
    assert _keys(a) == _keys(b)


@pytest.mark.parametrize("stop", [1, 9, 23])
@pytest.mark.parametrize("inner", sorted(INNER))
def test_resumes_exactly(inner: str, stop: int) -> None:
    """A study stopped after ``stop`` trials and resumed by a new study and a new strategy
    on the same record equals one that ran straight through."""
    straight = _study(inner, seed=5)
    straight.optimize(budget=Budget(trials=35))
    storage = InMemoryStorage()
    _study(inner, seed=5, storage=storage).optimize(budget=Budget(trials=stop))
    resumed = _study(inner, seed=5, storage=storage)
    resumed.optimize(budget=Budget(trials=35))
    assert _keys(resumed) == _keys(straight)


def test_resumes_exactly_after_a_crash_mid_trial() -> None:
    straight = _study("regularized-evolution", seed=2)
    straight.optimize(budget=Budget(trials=25))
    storage = InMemoryStorage()
    first = _study("regularized-evolution", seed=2, storage=storage)
    first.optimize(budget=Budget(trials=12))
    crashed = first.ask()
    assert crashed is not None
    resumed = _study("regularized-evolution", seed=2, storage=storage)
    resumed.optimize(budget=Budget(trials=25))
    assert _keys(resumed) == _keys(straight)


def test_the_inner_strategy_sees_one_scalar_score_and_the_given_one_is_never_told() -> None:
    space = TwoObjectiveToy()
    given = RegularizedEvolution(space, seed=1, population_size=6, sample_size=3)
    wrapper = ParEGO.wrap(given)
    study = Study(space, wrapper, ToyObjectives(space), seed=1, objectives=OBJECTIVES,
                  constraints={"cost": {"max": 3.0}})
    study.optimize(budget=Budget(trials=30))
    assert given.population == []  # rebuilt copies are told, never the strategy given
    current = wrapper.current
    assert isinstance(current, RegularizedEvolution)
    fitness = [f for f, _ in current.population]
    assert len(fitness) == 6
    finished = sorted(study.trials, key=lambda t: t.finish_order or 0)[-6:]
    for f, t in zip(fitness, finished, strict=True):
        if t.feasible:
            assert -(1 + wrapper.rho) <= f <= 0  # -(augmented Tchebycheff) of costs in [0, 1]
        else:
            assert f == -np.inf  # no score: below every feasible trial
    assert any(not t.feasible for t in study.trials)


def test_parego_by_name_and_its_settings_are_checked() -> None:
    space = TwoObjectiveToy()
    strategy = ParEGO(space, seed=2, inner="regularized-evolution",
                      inner_params={"population_size": 5})
    assert isinstance(strategy.inner, RegularizedEvolution)
    assert strategy.inner.population_size == 5 and strategy.inner.seed == 2
    assert strategy.get_params() == {
        "seed": 2, "inner": "regularized-evolution",
        "inner_params": {"population_size": 5, "sample_size": 10},
        "rho": 0.05, "divisions": None}
    with pytest.raises(ConfigError, match="same space and seed"):
        ParEGO(space, seed=3, inner=RandomSearch(space, seed=2))
    with pytest.raises(ConfigError, match="rho"):
        ParEGO(space, seed=0, inner="random", rho=-1.0)
    with pytest.raises(ConfigError, match="divisions"):
        ParEGO(space, seed=0, inner="random", divisions=0)
    with pytest.raises(ConfigError, match="inner_params"):
        ParEGO(space, seed=0, inner=RandomSearch(space), inner_params={"x": 1})
    with pytest.raises(ConfigError, match="ParEGO would wrap ParEGO"):
        ParEGO(space, seed=0, inner=ParEGO(space, seed=0, inner="random"))
    with pytest.raises(ConfigError, match="one-shot"):
        ParEGO(space, seed=0, inner=_OneShot(space))


# -- the study wraps what needs it -----------------------------------------------------------
class _OneShot(RandomSearch):
    """A strategy with a driver of its own (as DARTS and GDAS have)."""

    def driver(self) -> Driver:  # pragma: no cover - never run here
        raise NotImplementedError


class _Native(RandomSearch):
    multi_objective = True


def _create(strategy: str | Callable[[SearchSpace], Strategy],
            objectives: Sequence[str] | None = OBJECTIVES) -> Study:
    space = TwoObjectiveToy()
    spec = strategy if isinstance(strategy, str) else strategy(space)
    return archsearch.create_study(space, spec, ToyObjectives(space), objectives=objectives)


@pytest.mark.parametrize("name", ["evolution", "grid", "random"])
def test_create_study_wraps_a_single_objective_strategy(name: str) -> None:
    study = _create(name)
    assert type(study.strategy) is ParEGO
    assert type(study.strategy.inner) is {"evolution": Evolution, "grid": GridSearch,
                                          "random": RandomSearch}[name]
    study.optimize(budget=Budget(trials=12))
    assert study.n_evaluated == 12


def test_create_study_leaves_multi_objective_and_one_shot_strategies_alone() -> None:
    for cls in (_Native, _OneShot):
        study = _create(cls)
        assert type(study.strategy) is cls
    assert type(_create("evolution", objectives=None).strategy) is Evolution  # one objective
    study = _create(lambda space: ParEGO(space, seed=0, inner="random"))
    assert type(study.strategy) is ParEGO and type(study.strategy.inner) is RandomSearch


def test_a_wrapped_study_resumed_by_create_study_is_exact() -> None:
    def run(trials: int, storage: InMemoryStorage | None) -> list[str]:
        space = TwoObjectiveToy()
        study = archsearch.create_study(space, "evolution", ToyObjectives(space),
                                        storage=storage, seed=7, objectives=OBJECTIVES,
                                        strategy_params={"population_size": 6, "parents": 2})
        study.optimize(budget=Budget(trials=trials))
        return _keys(study)

    storage = InMemoryStorage()
    run(10, storage)
    assert run(30, storage) == run(30, None)
