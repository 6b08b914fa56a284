"""What each history-driven strategy does, beyond the shared conformance suite: aging in
regularized evolution, removal in generational evolution, moves and restarts in local
search, learning and replay in REINFORCE, and the chain spaces' mutation operators."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from archsearch.errors import ConfigError
from archsearch.estimation.base import Estimator, TrialContext
from archsearch.space import (
    ChainSpace,
    DecisionSpace,
    Genotype,
    LayerSpec,
    MultiBranchSpace,
    SearchSpace,
    categorical,
)
from archsearch.storage import InMemoryStorage
from archsearch.strategy._additive import AdditiveModel
from archsearch.strategy.base import Strategy
from archsearch.strategy.evolution import Evolution
from archsearch.strategy.local_search import LocalSearch
from archsearch.strategy.regularized_evolution import RegularizedEvolution
from archsearch.strategy.reinforce import Reinforce
from archsearch.study import Budget, StopReason, Study
from archsearch.trial import FrozenTrial, TrialState
from conformance import EncodingObjective

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Grid(DecisionSpace):
    """``n`` independent decisions of ``k`` choices: a neighbour changes exactly one."""

    name = "grid"

    def __init__(self, n: int = 4, k: int = 4) -> None:
        super().__init__([categorical(f"d{i}", tuple(range(k))) for i in range(n)])


class RandomTable(Estimator):
    """A value per architecture, fixed but unrelated to its neighbours': many local optima."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def score(self, genotype: Genotype) -> float:
        seed = zlib.crc32(self.space.key(genotype).encode())
        return float(np.random.default_rng(seed).random())

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        return {"val_accuracy": self.score(genotype)}


def _differences(a: Genotype, b: Genotype) -> int:
    return sum(a[name] != b[name] for name in a)


def _study(space: SearchSpace, strategy: Strategy, estimator: Estimator | None = None,
           storage: InMemoryStorage | None = None, seed: int = 0) -> Study:
    return Study(space, strategy, estimator or EncodingObjective(space), storage, seed=seed)


# -- shared behaviour ---------------------------------------------------------------------------
STRATEGIES = {
    "regularized-evolution": lambda s: RegularizedEvolution(s, seed=1, population_size=4),
    "evolution": lambda s: Evolution(s, seed=1, population_size=4, parents=2),
    "local-search": lambda s: LocalSearch(s, seed=1, initial_samples=3),
    "local-search-guided": lambda s: LocalSearch(s, seed=1, initial_samples=3, guided=True),
    "reinforce": lambda s: Reinforce(s, seed=1, batch_size=4),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_never_repeats_and_stops_when_the_space_is_exhausted(name: str) -> None:
    space = Grid(n=3, k=3)  # 27 architectures
    study = _study(space, STRATEGIES[name](space))
    assert study.optimize(budget=Budget(trials=100)) is StopReason.EXHAUSTED
    keys = [t.key for t in study.trials]
    assert len(keys) == len(set(keys)) == space.size()


# -- regularized evolution --------------------------------------------------------------------
def test_regularized_evolution_keeps_the_last_p_and_removes_the_oldest() -> None:
    space = ChainSpace("vector", max_depth=3, widths=(8, 16, 32))
    strategy = RegularizedEvolution(space, seed=0, population_size=6, sample_size=3)
    study = _study(space, strategy)
    for n in range(1, 25):
        study.optimize(budget=Budget(trials=n))
        finished = sorted(study.trials, key=lambda t: t.finish_order or 0)
        expected = [(t.score, t.genotype) for t in finished[-6:]]
        assert strategy.population == expected  # the oldest left, whatever its score


def test_regularized_evolution_children_are_one_mutation_from_the_tournament_winner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = Grid(n=5, k=4)
    calls: list[tuple[Genotype, Genotype]] = []
    mutate = space.mutate

    def spy(genotype: Genotype, rng: np.random.Generator) -> Genotype:
        child = mutate(genotype, rng)
        calls.append((genotype, child))
        return child

    monkeypatch.setattr(space, "mutate", spy)
    # A tournament far larger than the population almost surely holds its best member.
    strategy = RegularizedEvolution(space, seed=0, population_size=5, sample_size=60)
    study = _study(space, strategy)
    study.optimize(budget=Budget(trials=5))
    assert not calls  # the first P are random
    for _ in range(30):
        best = max(strategy.population, key=lambda member: member[0])[1]
        calls.clear()
        trial = study.ask()
        assert trial is not None
        assert calls[0][0] == best  # the parent is the tournament's winner
        assert trial.genotype == calls[-1][1]  # the child is its mutation, mutated again...
        if len(calls) == 1:  # ...only when the first child was seen already
            assert _differences(trial.genotype, best) == 1
        study.evaluate(trial)


def test_failed_trials_join_the_population_as_the_worst() -> None:
    space = Grid(n=4, k=4)

    class FailsOdd(EncodingObjective):
        def evaluate(self, genotype: Genotype, context: TrialContext) -> dict[str, float]:
            if context.number % 2:
                raise RuntimeError("diverged")
            return super().evaluate(genotype, context)

    strategy = RegularizedEvolution(space, seed=0, population_size=4)
    _study(space, strategy, FailsOdd(space)).optimize(budget=Budget(trials=12))
    fitness = [f for f, _ in strategy.population]
    assert len(fitness) == 4 and fitness.count(-np.inf) == 2


# -- generational evolution ---------------------------------------------------------------------
@pytest.mark.parametrize("selection", ["tournament", "truncation"])
def test_generational_evolution_removes_the_worst(selection: str) -> None:
    space = ChainSpace("vector", max_depth=3, widths=(8, 16, 32))
    strategy = Evolution(space, seed=0, population_size=5, parents=2, selection=selection)
    study = _study(space, strategy)
    for generation in range(4):
        study.optimize(budget=Budget(trials=5 * (generation + 1)))
        assert strategy.generation == generation
        # Elitist: the population is the best five ever evaluated.
        best = sorted((t.score for t in study.trials if t.score is not None), reverse=True)
        assert sorted((f for f, _ in strategy.population), reverse=True) == best[:5]


def test_generational_evolution_removes_the_oldest() -> None:
    space = ChainSpace("vector", max_depth=3, widths=(8, 16, 32))
    strategy = Evolution(space, seed=0, population_size=5, parents=2, removal="oldest")
    study = _study(space, strategy)
    study.optimize(budget=Budget(trials=15))
    assert strategy.generation == 2
    # Every parent is replaced: the population is the last generation's offspring.
    assert [g for _, g in strategy.population] == [t.genotype for t in study.trials[-5:]]


def test_generational_evolution_breeds_from_the_parents_only() -> None:
    space = Grid(n=6, k=5)
    strategy = Evolution(space, seed=0, population_size=6, parents=2, selection="truncation",
                         crossover_rate=0.0)
    study = _study(space, strategy)
    study.optimize(budget=Budget(trials=6))
    parents = [g for _, g in sorted(strategy.population, key=lambda m: m[0], reverse=True)[:2]]
    study.optimize(budget=Budget(trials=11))  # five children, one generation
    for child in study.trials[6:]:
        assert min(_differences(child.genotype, p) for p in parents) == 1


# -- local search -----------------------------------------------------------------------------
def test_local_search_moves_to_the_first_improvement_and_restarts_at_local_optima() -> None:
    space = Grid(n=3, k=6)  # 216 architectures, 15 neighbours each
    table = RandomTable(space)
    strategy = LocalSearch(space, seed=0, initial_samples=4)
    study = _study(space, strategy, table)
    study.optimize(budget=Budget(trials=4))
    first = max(study.trials, key=lambda t: t.score or 0.0)
    assert strategy.centre == (first.score, first.genotype)  # the best of the initial batch
    moves = restarts = 0
    for _ in range(100):
        centre, optima = strategy.centre, len(strategy.local_optima)
        trial = study.ask()
        assert trial is not None
        done = study.evaluate(trial)
        assert done.score is not None
        if centre is None:  # a restart: the random architecture becomes the centre
            restarts += 1
            assert strategy.centre is None or strategy.centre[0] >= done.score
            continue
        assert _differences(done.genotype, centre[1]) == 1  # a neighbour of the centre
        if done.score > centre[0]:  # the first improvement is taken at once...
            moves += 1  # ...and any evaluated neighbour better still, for free
            assert strategy.centre is None or strategy.centre[0] >= done.score
        elif len(strategy.local_optima) > optima:  # the neighbourhood is used up
            assert strategy.local_optima[-1] == centre
            assert all(table.score(n) <= centre[0] for n in space.neighbours(centre[1]))
        else:
            assert strategy.centre == centre
    assert moves >= 3 and restarts >= 2


def test_local_search_neighbour_order_depends_on_the_seed_and_centre_only() -> None:
    space = Grid(n=4, k=4)
    start = Genotype.of({"d0": 0, "d1": 1, "d2": 2, "d3": 3})
    record = [FrozenTrial(0, TrialState.COMPLETE, start, space.key(start), 1.0, 1.0,
                          finish_order=1)]

    def proposals(seed: int, ask_seed: int) -> list[Genotype | None]:
        strategy = LocalSearch(space, seed=seed, initial_samples=1)
        strategy.tell(record[0])
        out = []
        for n in range(5):  # pretend each proposal is pending
            g = strategy.ask(record + [FrozenTrial(n + 1, TrialState.RUNNING, x, space.key(x))
                                       for x in out if x is not None],
                             np.random.default_rng(ask_seed + n))
            out.append(g)
        return out

    first = proposals(seed=3, ask_seed=0)
    assert all(g is not None and _differences(g, start) == 1 for g in first)
    assert proposals(seed=3, ask_seed=100) == first  # the trial's rng plays no part
    assert proposals(seed=4, ask_seed=0) != first  # the strategy's seed does


def test_additive_model_recovers_an_additive_landscape() -> None:
    space = Grid(n=4, k=4)  # 256 architectures
    objective = EncodingObjective(space)  # a linear function of the one-hot encoding
    rng = np.random.default_rng(0)
    sample = [space.sample(rng) for _ in range(40)]
    model = AdditiveModel(space, ridge=1e-6)
    model.add(sample[0], 1.0)
    model.add(sample[1], -np.inf)  # a failed trial is left out
    assert model.count == 1 and model.predict(sample) is None  # two scores are needed
    model = AdditiveModel(space, ridge=1e-6)
    for g in sample:
        model.add(g, objective.score(g))
    every = list(space.enumerate())
    truth = np.array([objective.score(g) for g in every])
    predicted = model.predict(every)
    assert predicted is not None
    assert np.allclose(predicted - predicted.mean(), truth - truth.mean(), atol=1e-6)


def test_guided_local_search_queries_the_best_rated_neighbour_first() -> None:
    space = Grid(n=5, k=5)
    objective = EncodingObjective(space)
    strategy = LocalSearch(space, seed=0, guided=True)
    study = _study(space, strategy, objective)
    study.optimize(budget=Budget(trials=10))  # the random starts
    checked, previous = 0, None
    while checked < 3:
        centre = strategy.centre
        assert centre is not None
        trial = study.ask()
        assert trial is not None
        if centre != previous:  # a new centre: its neighbours are ranked by a fresh model
            model = AdditiveModel(space)  # fitted afresh on the finished trials
            for t in sorted(study.trials, key=lambda t: t.finish_order or 0):
                if t.score is not None:
                    model.add(t.genotype, t.score)
            seen = {t.key for t in study.trials if t.number != trial.number}
            unseen = [n for n in space.neighbours(centre[1]) if space.key(n) not in seen]
            predicted = model.predict(unseen)
            assert predicted is not None
            assert trial.genotype == unseen[int(np.argmax(predicted))]
            checked += 1
        previous = centre
        study.evaluate(trial)


# -- REINFORCE -----------------------------------------------------------------------------------
def test_reinforce_samples_respect_conditional_decisions() -> None:
    space = MultiBranchSpace("image", max_depth=4, widths=(8, 16))
    strategy = Reinforce(space, seed=0)
    controller = strategy.controller()
    with torch.no_grad():
        choices, _, _ = controller(space.decisions, n=200, generator=torch.Generator())
    depths = set()
    for row in choices.tolist():
        genotype = strategy._genotype(row)
        space.validate(genotype)
        assert space.canonicalize(genotype) == genotype  # no inactive decision was drawn
        depths.add(genotype["depth"])
    assert depths == {1, 2, 3, 4}
    study = _study(space, strategy)
    study.optimize(budget=Budget(trials=25))  # the study validates every proposal
    assert strategy.updates == 5


def test_reinforce_learns_a_simple_landscape() -> None:
    space = Grid(n=6, k=5)  # NAS-Bench-201's shape
    strategy = Reinforce(space, seed=0, batch_size=5)
    study = _study(space, strategy)
    study.optimize(budget=Budget(trials=150))
    scores = [t.score for t in study.trials if t.score is not None]
    best = max(EncodingObjective(space).score(g) for g in space.enumerate())
    # The first batch comes from the untrained (near uniform) controller.  Never repeating
    # an architecture, the last ones cannot all be the optimum: halfway there is learning.
    first, last = np.mean(scores[:5]), np.mean(scores[-25:])
    assert last > first + 0.5 * (best - first)


def test_reinforce_weights_after_replay_equal_live_weights() -> None:
    space = MultiBranchSpace("vector", max_depth=3, widths=(8, 16))
    storage = InMemoryStorage()
    live = Reinforce(space, seed=2, batch_size=4)
    _study(space, live, storage=storage).optimize(budget=Budget(trials=22))
    replayed = Reinforce(space, seed=2, batch_size=4)
    _study(space, replayed, storage=storage)  # opening the study replays tell
    assert replayed.updates == live.updates == 5
    a, b = live.controller().state_dict(), replayed.controller().state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_reinforce_reward_subtracts_the_weighted_cost() -> None:
    space = Grid(n=1, k=2)
    strategy = Reinforce(space, seed=0, cost_metric="params", cost_weight=2.0)
    g = Genotype.of({"d0": 1})

    def trial(metrics: dict[str, float]) -> FrozenTrial:
        return FrozenTrial(0, TrialState.COMPLETE, g, space.key(g), 1.5, 1.5, metrics=metrics)

    assert strategy._reward(trial({"params": 1.0})) == -0.5
    assert strategy._reward(trial({})) is None  # no cost to weigh: counted as failed



def _mnasnet_trial(space: SearchSpace, metrics: dict[str, float], feasible: bool = True,
                   state: TrialState = TrialState.COMPLETE) -> FrozenTrial:
    g = Genotype.of({"d0": 1})
    return FrozenTrial(0, state, g, space.key(g), None, None, metrics=metrics,
                       scores=(0.0, 0.0), feasible=feasible)


def test_reinforce_mnasnet_reward_by_hand() -> None:
    """MnasNet's reward ACC * (LAT / T) ** w, w = -0.07 (the paper's soft constraint)."""
    space = Grid(n=1, k=2)
    strategy = Reinforce(space, seed=0, reward="mnasnet", latency_target=0.01)
    metrics = {"val_accuracy": 0.8, "latency_seconds": 0.02}
    # Twice the target: 0.8 * 2 ** -0.07 = 0.8 * 0.95263799804 = 0.76211039843
    assert strategy._reward(_mnasnet_trial(space, metrics)) == pytest.approx(0.7621103984)
    faster = {"val_accuracy": 0.9, "latency_seconds": 0.005}
    assert strategy._reward(_mnasnet_trial(space, faster)) == pytest.approx(0.9447450153)
    own = Reinforce(space, seed=0, reward="mnasnet", accuracy_metric="acc",
                    latency_metric="ms", latency_target=20.0, latency_weight=-1.0)
    assert own._reward(_mnasnet_trial(space, {"acc": 0.5, "ms": 40.0})) == pytest.approx(0.25)
    # Counted as failed: a metric missing, a latency <= 0, infeasible, failed.
    assert strategy._reward(_mnasnet_trial(space, {"val_accuracy": 0.8})) is None
    assert strategy._reward(_mnasnet_trial(
        space, {"val_accuracy": 0.8, "latency_seconds": 0.0})) is None
    assert strategy._reward(_mnasnet_trial(space, metrics, feasible=False)) is None
    assert strategy._reward(_mnasnet_trial(space, metrics, state=TrialState.FAILED)) is None


def test_reinforce_mnasnet_settings_are_checked() -> None:
    space = Grid(n=1, k=2)
    with pytest.raises(ConfigError, match="latency_target"):
        Reinforce(space, reward="mnasnet")  # T is required
    with pytest.raises(ConfigError, match="latency_target"):
        Reinforce(space, reward="mnasnet", latency_target=0.0)
    with pytest.raises(ConfigError, match="latency_weight"):
        Reinforce(space, reward="mnasnet", latency_target=1.0, latency_weight=float("nan"))
    with pytest.raises(ConfigError, match="cost_metric"):
        Reinforce(space, reward="mnasnet", latency_target=1.0, cost_metric="params")
    with pytest.raises(ConfigError, match="reward must be one of"):
        Reinforce(space, reward="accuracy")
    assert not Reinforce(space).multi_objective
    assert Reinforce(space, reward="mnasnet", latency_target=1.0).multi_objective


def test_reinforce_mnasnet_runs_unwrapped_on_a_multi_objective_study() -> None:
    """MnasNet's reward reads accuracy and latency itself: the study does not wrap it in
    ParEGO; the default reward is wrapped.  Replaying the record rebuilds the weights."""
    import archsearch
    from archsearch.strategy.scalarized import ParEGO

    space = Grid(n=4, k=4)

    def evaluate(genotype: Genotype) -> dict[str, float]:
        x = np.array([genotype[f"d{i}"] for i in range(4)], dtype=float)
        return {"val_accuracy": float(np.sqrt(x).sum()), "latency_seconds": 1.0 + x.sum()}

    objectives = ["val_accuracy:max", "latency_seconds:min"]
    storage = InMemoryStorage()
    strategy = Reinforce(space, seed=0, batch_size=4, reward="mnasnet", latency_target=5.0)
    study = archsearch.create_study(space, strategy, evaluate, objectives=objectives,
                                    storage=storage)
    assert study.strategy is strategy
    study.optimize(budget=Budget(trials=12))
    replayed = Reinforce(space, seed=0, batch_size=4, reward="mnasnet", latency_target=5.0)
    archsearch.create_study(space, replayed, evaluate, objectives=objectives, storage=storage)
    assert replayed.updates == strategy.updates == 3
    a, b = strategy.controller().state_dict(), replayed.controller().state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    plain = archsearch.create_study(space, Reinforce(space, seed=0), evaluate,
                                    objectives=objectives)
    assert type(plain.strategy) is ParEGO

# -- chain-space mutation --------------------------------------------------------------------
def _skips(spec: LayerSpec) -> set[int]:
    return set(spec.inputs[:-1])  # the last input is the predecessor


def _same_layer(a: LayerSpec, b: LayerSpec, skips: set[int]) -> bool:
    return (a.op, a.width, a.activation, a.norm) == (b.op, b.width, b.activation, b.norm) \
        and _skips(b) == skips and (not skips or a.merge == b.merge)


def _is_insertion(parent: list[LayerSpec], child: list[LayerSpec], p: int) -> bool:
    moved = [{j if j <= p else j + 1 for j in _skips(s)} for s in parent[p:]]
    return not _skips(child[p]) and all(
        _same_layer(a, b, _skips(a)) for a, b in zip(parent[:p], child[:p], strict=True)
    ) and all(_same_layer(a, b, s) for a, b, s in zip(parent[p:], child[p + 1:], moved,
                                                          strict=True))


def _is_removal(parent: list[LayerSpec], child: list[LayerSpec], p: int) -> bool:
    moved = [{j if j <= p else j - 1 for j in _skips(s) if j != p + 1} for s in parent[p + 1:]]
    moved = [{j for j in s if j < p + k} for k, s in enumerate(moved)]
    return all(_same_layer(a, b, _skips(a)) for a, b in zip(parent[:p], child[:p], strict=True)
               ) and all(_same_layer(a, b, s) for a, b, s in zip(parent[p + 1:], child[p:],
                                                                     moved, strict=True))


@pytest.mark.parametrize("space", [
    MultiBranchSpace("image", max_depth=5, widths=(8, 16)),
    ChainSpace("vector", max_depth=4, min_depth=2),
], ids=["multi-branch", "chain"])
def test_chain_mutation_adds_and_removes_layers_and_connections(space: ChainSpace) -> None:
    rng = np.random.default_rng(0)
    kinds: set[str] = set()
    for _ in range(400):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        space.validate(child)
        assert space.key(child) != space.key(parent)
        a, b = space.layers(parent), space.layers(child)
        skips_a, skips_b = sum(len(_skips(s)) for s in a), sum(len(_skips(s)) for s in b)
        if len(b) == len(a) + 1:
            assert any(_is_insertion(a, b, p) for p in range(len(b)))
            kinds.add("add-layer")
        elif len(b) == len(a) - 1:
            assert any(_is_removal(a, b, p) for p in range(len(a)))
            kinds.add("remove-layer")
        elif skips_b != skips_a:
            assert abs(skips_b - skips_a) == 1
            assert sum(_skips(x) != _skips(y) for x, y in zip(a, b, strict=True)) == 1
            kinds.add("add-skip" if skips_b > skips_a else "remove-skip")
        else:  # one field of one layer changed (a new op may bring its own width etc.)
            changed = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
            assert len(changed) == 1
            kinds.add("change")
    expected = {"change", "add-layer", "remove-layer"}
    if isinstance(space, MultiBranchSpace):
        expected |= {"add-skip", "remove-skip"}
    assert kinds == expected


def test_chain_mutation_respects_the_depth_bounds() -> None:
    space = ChainSpace("vector", max_depth=2, min_depth=2, ops=("dense", "identity"),
                       widths=(8,), activations=("relu",), norms=("none",))  # only ops change
    rng = np.random.default_rng(0)
    genotype = space.sample(rng)
    for _ in range(20):
        child = space.mutate(genotype, rng)
        assert child["depth"] == 2 and space.key(child) != space.key(genotype)
        genotype = child
