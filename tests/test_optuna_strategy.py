"""The optuna:<sampler> strategies: the conformance checks for every sampler (the shared
suite runs only the registry's default, ``optuna`` with TPE), plus what is particular to
driving Optuna: conditional decisions, failures, repeats, config."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")

from optuna.trial import TrialState as OptunaState  # noqa: E402

from archsearch import registry  # noqa: E402
from archsearch.build import build_components  # noqa: E402
from archsearch.config import ConfigError, parse_config  # noqa: E402
from archsearch.errors import MissingExtra  # noqa: E402
from archsearch.estimation.base import Estimator, TrialContext  # noqa: E402
from archsearch.execution.base import Executor, Outcome, run_job  # noqa: E402
from archsearch.space import (  # noqa: E402
    ChainSpace,
    DecisionSpace,
    Genotype,
    MultiBranchSpace,
    SearchSpace,
)
from archsearch.space.base import InvalidGenotype  # noqa: E402
from archsearch.storage import InMemoryStorage, SQLiteStorage, Storage  # noqa: E402
from archsearch.strategy.optuna_sampler import SAMPLERS, OptunaStrategy  # noqa: E402
from archsearch.study import Budget, StopReason, Study  # noqa: E402
from archsearch.trial import TrialState  # noqa: E402
from conformance import SPACES, EncodingObjective  # noqa: E402

#: Fast samplers get the full checks; the GP (one model fit per ask) a short run.
FAST = ["tpe", "random", "nsga2"]
#: Small populations / startup phases so the model-based part runs within a short study.
STARTUP = {"tpe": 5, "random": None, "nsga2": 6, "gp": 3}


def _strategy(space: SearchSpace, sampler: str, seed: int) -> OptunaStrategy:
    return registry.resolve("strategy", f"optuna:{sampler}")(
        space, seed=seed, n_startup_trials=STARTUP[sampler])


def _run(space_name: str, sampler: str, seed: int, trials: int,
         storage: InMemoryStorage | None = None) -> Study:
    space = SPACES[space_name]()
    study = Study(space, _strategy(space, sampler, seed), EncodingObjective(space), storage,
                  seed=seed)
    study.optimize(budget=Budget(trials=trials))
    return study


def _keys(study: Study) -> list[str]:
    return [t.key for t in study.trials]


def test_the_samplers_are_the_documented_ones() -> None:
    assert set(FAST) | {"gp"} == set(SAMPLERS)


@pytest.mark.parametrize("sampler", FAST)
@pytest.mark.parametrize("space_name", ["chain-image", "multi-branch-vector"])
def test_proposals_are_valid_and_use_the_conditional_decisions(
        space_name: str, sampler: str) -> None:
    study = _run(space_name, sampler, seed=0, trials=25)
    space = study.space
    assert study.n_evaluated == 25
    for t in study.trials:
        space.validate(t.genotype)  # exact types too: a skip is a bool, a width an int
        assert t.genotype == space.canonicalize(t.genotype)  # only active decisions
    depths = {t.genotype["depth"] for t in study.trials}
    assert len(depths) > 1  # the conditional layers come and go with the depth
    if isinstance(space, MultiBranchSpace):
        assert any("layer2.merge" in t.genotype for t in study.trials)


def test_the_gp_sampler_runs_and_resumes_exactly() -> None:
    straight = _run("chain-image", "gp", seed=1, trials=5)
    assert straight.n_evaluated == 5
    storage = InMemoryStorage()
    _run("chain-image", "gp", seed=1, trials=3, storage=storage)
    resumed = _run("chain-image", "gp", seed=1, trials=5, storage=storage)
    assert _keys(resumed) == _keys(straight)


@pytest.mark.parametrize("sampler", FAST)
def test_same_seed_same_proposals(sampler: str) -> None:
    a = _run("multi-branch-vector", sampler, seed=3, trials=25)
    b = _run("multi-branch-vector", sampler, seed=3, trials=25)
    c = _run("multi-branch-vector", sampler, seed=4, trials=25)
    assert _keys(a) == _keys(b)
    assert _keys(a) != _keys(c)


@pytest.mark.parametrize("sampler", FAST)
def test_resumes_exactly(sampler: str) -> None:
    """Stopped after 12 trials and resumed by fresh objects, the study equals one that
    ran straight through: the Optuna study was rebuilt from the record."""
    straight = _run("multi-branch-vector", sampler, seed=5, trials=30)
    storage = InMemoryStorage()
    _run("multi-branch-vector", sampler, seed=5, trials=12, storage=storage)
    resumed = _run("multi-branch-vector", sampler, seed=5, trials=30, storage=storage)
    assert _keys(resumed) == _keys(straight)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_resumes_exactly_after_a_crash_mid_trial(sampler: str) -> None:
    """A trial left running (the process died) is rerun first; the strategy, which never
    asked for it, adds it to Optuna when it is told, as if it had asked."""
    straight = _run("chain-vector", sampler, seed=2, trials=20)
    storage = InMemoryStorage()
    first = _run("chain-vector", sampler, seed=2, trials=9, storage=storage)
    crashed = first.ask()
    assert crashed is not None and crashed.state is TrialState.RUNNING
    resumed = _run("chain-vector", sampler, seed=2, trials=20, storage=storage)
    assert resumed.trials[crashed.number].key == crashed.key
    assert _keys(resumed) == _keys(straight)


class _FailSome(Estimator):
    """Fails every trial whose network has an identity layer first."""

    def __init__(self, space: SearchSpace) -> None:
        self.inner = EncodingObjective(space)

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        if genotype["layer0.op"] == "identity":
            raise RuntimeError("simulated failure")
        return self.inner.evaluate(genotype, context)


def test_failures_and_repeats_reach_optuna() -> None:
    """Failed trials are told as PRUNED: were they FAIL, TPE would ignore them and keep
    proposing the failing networks (hundreds of repeats in this space)."""
    space = ChainSpace("vector", max_depth=2, ops=("dense", "identity"), widths=(8, 16),
                       activations=("relu",), norms=("none",))
    strategy = OptunaStrategy(space, seed=0, sampler="tpe", n_startup_trials=4)
    study = Study(space, strategy, _FailSome(space), seed=0)
    study.optimize(budget=Budget(trials=8))
    trials = study.trials
    assert any(t.state is TrialState.FAILED for t in trials)
    assert any(t.cached for t in trials)  # 12 architectures: TPE repeats some
    optuna_trials = strategy._optuna_study().get_trials(deepcopy=False)
    assert len(optuna_trials) == len(trials)  # one Optuna trial per proposal, in order
    for ours, theirs in zip(trials, optuna_trials, strict=True):
        if ours.state is TrialState.FAILED:  # ranked below every completed trial
            assert theirs.state.name == "PRUNED"
        else:
            assert theirs.state.name == "COMPLETE" and theirs.value == ours.score
        assert Genotype.of(theirs.params) == ours.genotype


class _LastInFirstOut(Executor):
    """Three trials in flight, in this process; the newest finishes first."""

    capacity = 3

    def start(self, estimator: Estimator) -> None:
        self._estimator = estimator
        self._jobs: list[tuple[int, Genotype, TrialContext]] = []

    def submit(self, number: int, genotype: Genotype, context: TrialContext) -> None:
        self._jobs.append((number, genotype, context))

    def wait(self) -> list[Outcome]:
        return [run_job(self._estimator, *self._jobs.pop())]


def test_trials_in_flight_are_running_optuna_trials() -> None:
    """With several trials in flight, asks see the pending ones (as RUNNING Optuna trials)
    and results arrive out of order; each still reaches its own Optuna trial."""
    space = SPACES["multi-branch-image"]()
    strategy = OptunaStrategy(space, seed=0, sampler="tpe", n_startup_trials=4)
    study = Study(space, strategy, EncodingObjective(space), seed=0)
    study.optimize(budget=Budget(trials=20), executor=_LastInFirstOut())
    assert study.n_evaluated == 20
    finish_order = [t.number for t in sorted(study.trials, key=lambda t: t.finish_order or 0)]
    assert finish_order != sorted(finish_order)
    optuna_trials = strategy._optuna_study().get_trials(deepcopy=False)
    assert len(optuna_trials) == len(study.trials)
    for ours, theirs in zip(study.trials, optuna_trials, strict=True):
        assert Genotype.of(theirs.params) == ours.genotype
        assert theirs.state.name == "COMPLETE" and theirs.value == ours.score


def test_trials_left_running_by_a_crash_reach_optuna_when_resumed() -> None:
    """Three trials were in flight when the process died: the resumed study reruns them
    while asking for more, so its strategy first meets them as unknown pending trials."""
    space = SPACES["chain-image"]()
    storage = InMemoryStorage()
    first = Study(space, OptunaStrategy(space, seed=0, n_startup_trials=4),
                  EncodingObjective(space), storage, seed=0)
    first.optimize(budget=Budget(trials=6))
    crashed = [first.ask() for _ in range(3)]
    done = {t.key for t in first.trials if t.finished}
    assert all(t is not None and t.key not in done for t in crashed)  # they need training
    strategy = OptunaStrategy(space, seed=0, n_startup_trials=4)
    resumed = Study(space, strategy, EncodingObjective(space), storage, seed=0)
    resumed.optimize(budget=Budget(trials=12), executor=_LastInFirstOut())
    assert resumed.n_evaluated == 12
    optuna_trials = strategy._optuna_study().get_trials(deepcopy=False)
    assert all(t.state.name == "COMPLETE" for t in optuna_trials)
    assert sorted((space.key(Genotype.of(t.params)), t.value) for t in optuna_trials) == \
        sorted((t.key, t.score) for t in resumed.trials)


def test_an_exhausted_space_ends_the_study() -> None:
    space = ChainSpace("vector", max_depth=1, ops=("dense", "identity"), widths=(8, 16),
                       activations=("relu",), norms=("none",))
    assert space.size() == 3
    study = Study(space, OptunaStrategy(space, sampler="tpe"), EncodingObjective(space))
    assert study.optimize(budget=Budget(trials=10)) is StopReason.EXHAUSTED
    assert study.n_evaluated == 3


def test_arguments_are_checked_early() -> None:
    space = SPACES["chain-vector"]()
    with pytest.raises(ValueError, match="unknown Optuna sampler 'nope'.*optuna:tpe"):
        OptunaStrategy(space, sampler="nope")
    with pytest.raises(ValueError, match="categorical"):
        OptunaStrategy(space, sampler="cmaes")
    with pytest.raises(ValueError, match="no startup phase"):
        OptunaStrategy(space, sampler="random", n_startup_trials=5)
    with pytest.raises(ValueError, match=">= 2"):
        OptunaStrategy(space, sampler="nsga2", n_startup_trials=1)

    class NotDeclared(SearchSpace):  # only the abstract interface
        sample = size = enumerate = validate = neighbours = encode = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="DecisionSpace"):
        OptunaStrategy(NotDeclared(), sampler="tpe")  # type: ignore[abstract]
    strategy = OptunaStrategy(space, seed=7, sampler="nsga2", n_startup_trials=8)
    assert strategy.get_params() == {"seed": 7, "sampler": "nsga2", "n_startup_trials": 8}


def _config(strategy: object) -> dict[str, object]:
    return {"space": {"name": "chain", "modality": "vector", "max_depth": 2},
            "strategy": strategy, "estimator": "nb201"}


def test_config_accepts_optuna_names_and_rejects_unknown_samplers() -> None:
    config = parse_config(_config({"name": "optuna:tpe", "n_startup_trials": 5}))
    assert config.strategy.name == "optuna:tpe"
    assert config.strategy.params == {"n_startup_trials": 5}
    with pytest.raises(ConfigError, match="n_startup_trials"):
        parse_config(_config({"name": "optuna:tpe", "n_startup_trials": "five"}))
    with pytest.raises(ConfigError, match="sampler"):  # preset by the name, not a key
        parse_config(_config({"name": "optuna:tpe", "sampler": "random"}))
    # An unknown sampler: rejected when the config is read if the registry checks the
    # name, otherwise at the latest when the strategy is built, before any trial runs.
    try:
        config = parse_config(_config({"name": "optuna:nope"}))
    except ConfigError as err:
        assert "nope" in str(err)
    else:
        with pytest.raises(ValueError, match="unknown Optuna sampler 'nope'"):
            build_components(config)


def test_a_missing_optuna_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` fail
    monkeypatch.delitem(sys.modules, "archsearch.strategy.optuna_sampler")
    with pytest.raises(MissingExtra, match=r'pip install "archsearch\[optuna\]"'):
        registry.resolve("strategy", "optuna:tpe")
    with pytest.raises(MissingExtra, match=r'pip install "archsearch\[optuna\]"'):
        parse_config(_config("optuna:tpe"))


def test_invalid_proposals_are_rejected_not_fatal() -> None:
    """NAS-Bench-Graph forbids an all-skip cell, which its decisions alone allow: TPE's
    proposals of it are refused inside the strategy and the study goes on."""
    from archsearch.study import Budget, Study
    from archsearch.tabular.nbgraph import NBGraphSpace
    from conformance import EncodingObjective

    space = NBGraphSpace()

    class PrefersSkip(EncodingObjective):
        def score(self, genotype: Genotype) -> float:
            return float(sum(genotype[f"op{i}"] == "skip" for i in range(4)))

    study = Study(space, OptunaStrategy(space, seed=0), PrefersSkip(space), seed=0)
    study.optimize(budget=Budget(trials=40))
    assert study.n_evaluated == 40
    assert all(space.validate(t.genotype) is None for t in study.trials)


class _NoRepeatedNorm(ChainSpace):
    """A chain space with a rule outside its decisions: no two adjacent layers with the
    same normalisation (Optuna proposes such networks often)."""

    def validate(self, genotype: Genotype) -> None:
        super().validate(genotype)
        norms = [genotype[f"layer{i}.norm"] for i in range(int(genotype["depth"]))]
        if any(a == b for a, b in zip(norms, norms[1:], strict=False)):
            raise InvalidGenotype("adjacent layers share a normalisation")


@pytest.mark.parametrize("sampler", FAST)
def test_resumes_exactly_after_refused_proposals(sampler: str) -> None:
    """Refused proposals are not in the study's record; a resumed strategy replays them
    (the same sampler state proposes them again), so the resumed study equals one that
    ran straight through."""
    space = _NoRepeatedNorm("vector", max_depth=3, widths=(8, 16))

    def run(trials: int, storage: InMemoryStorage | None = None) -> Study:
        study = Study(space, _strategy(space, sampler, seed=3), EncodingObjective(space),
                      storage, seed=3)
        study.optimize(budget=Budget(trials=trials))
        return study

    straight = run(30)
    assert isinstance(straight.strategy, OptunaStrategy)
    refused = straight.strategy._optuna_study().get_trials(states=[OptunaState.PRUNED])
    assert len(refused) >= 3, "the test needs proposals that the space refuses"
    storage = InMemoryStorage()
    run(12, storage)
    assert _keys(run(30, storage)) == _keys(straight)


class _Interrupt(BaseException):
    """What a Ctrl-C (KeyboardInterrupt) in the middle of an ``ask`` looks like."""


class _InterruptedAfterARefusal(_NoRepeatedNorm):
    """``_NoRepeatedNorm`` whose run is interrupted once, inside the strategy's ``ask``,
    right after the ``at``-th refusal: the refused proposal has been told to Optuna and
    the next one asked for, but nothing of this ask reaches the study's record."""

    def __init__(self, *args: Any, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.refusals, self.interrupted = at, 0, False

    def validate(self, genotype: Genotype) -> None:
        if self.refusals == self.at and not self.interrupted:
            self.interrupted = True
            raise _Interrupt
        try:
            super().validate(genotype)
        except InvalidGenotype:
            self.refusals += 1
            raise


@pytest.mark.parametrize("sampler", FAST)
def test_a_run_stopped_right_after_a_refusal_resumes_exactly(
        sampler: str, tmp_path: Path) -> None:
    """Stopped in the middle of an ``ask``, right after a refusal (Ctrl-C: the refused
    proposal and the one asked after it are in the strategy's Optuna study, in no
    record), the study goes on as if it had never stopped: whether it is resumed from
    its SQLite record by fresh objects, continued by the same study and strategy (a
    notebook re-running ``optimize``), or by a fresh study around the same strategy."""
    kwargs: dict[str, Any] = {"max_depth": 3, "widths": (8, 16)}
    plain = _NoRepeatedNorm("vector", **kwargs)
    straight = Study(plain, _strategy(plain, sampler, seed=3), EncodingObjective(plain),
                     seed=3)
    straight.optimize(budget=Budget(trials=30))
    expected = [t.genotype for t in straight.trials]

    def stopped(storage: Storage) -> Study:
        space = _InterruptedAfterARefusal("vector", at=4, **kwargs)
        study = Study(space, _strategy(space, sampler, seed=3), EncodingObjective(space),
                      storage, seed=3)
        with pytest.raises(_Interrupt):
            study.optimize(budget=Budget(trials=30))
        assert space.interrupted and 0 < len(study.trials) < 30
        return study

    # Fresh objects on the SQLite record (a new process).
    first = stopped(SQLiteStorage(tmp_path / "record.db"))
    first.close()
    resumed = Study(plain, _strategy(plain, sampler, seed=3), EncodingObjective(plain),
                    SQLiteStorage(tmp_path / "record.db"), seed=3)
    resumed.optimize(budget=Budget(trials=30))
    resumed.close()
    assert [t.genotype for t in resumed.trials] == expected
    # The same study and strategy, optimize called again.
    study = stopped(InMemoryStorage())
    study.optimize(budget=Budget(trials=30))
    assert [t.genotype for t in study.trials] == expected
    # A fresh study (it replays its record) around the same strategy.
    study = stopped(InMemoryStorage())
    again = Study(study.space, study.strategy, EncodingObjective(study.space), study.storage,
                  seed=3)
    again.optimize(budget=Budget(trials=30))
    assert [t.genotype for t in again.trials] == expected


class _FewValid(ChainSpace):
    """A chain space that refuses all but one first layer in 18, so that Optuna's random
    sampler often has 20 proposals in a row refused; its ``sample`` ignores the rule."""

    def validate(self, genotype: Genotype) -> None:
        super().validate(genotype)
        if (genotype["layer0.width"], genotype["layer0.activation"],
                genotype["layer0.norm"]) != (8, "relu", "none"):
            raise InvalidGenotype("the first layer must be 8 wide, relu, no norm")


def test_resumes_exactly_after_falling_back_to_a_random_architecture() -> None:
    """After 20 refusals in a row the strategy proposes a random architecture that the
    space accepts; a resumed strategy replays the refusals and the fallback at the same
    places."""
    space = _FewValid("vector", max_depth=3, widths=(8, 16))

    def run(trials: int, storage: InMemoryStorage | None = None) -> Study:
        study = Study(space, _strategy(space, "random", seed=1), EncodingObjective(space),
                      storage, seed=1)
        study.optimize(budget=Budget(trials=trials))
        return study

    straight = run(16)
    assert isinstance(straight.strategy, OptunaStrategy)
    states = [t.state for t in straight.strategy._optuna_study().get_trials()]
    runs = "".join("P" if s is OptunaState.PRUNED else "." for s in states)
    assert "P" * 20 in runs, "the test needs a fallback (20 refusals in a row)"
    storage = InMemoryStorage()
    run(7, storage)
    assert _keys(run(16, storage)) == _keys(straight)


def test_a_refusing_space_resumes_a_record_made_out_of_order() -> None:
    """Trials that finished out of order cannot be replayed proposal by proposal: a free
    proposal that is not the recorded trial is told FAIL (samplers ignore it) and the
    trial is added with its values fixed, so each recorded result reaches Optuna once."""
    space = _NoRepeatedNorm("vector", max_depth=3, widths=(8, 16))
    storage = InMemoryStorage()
    Study(space, OptunaStrategy(space, seed=0, n_startup_trials=4), EncodingObjective(space),
          storage, seed=0).optimize(budget=Budget(trials=12), executor=_LastInFirstOut())
    strategy = OptunaStrategy(space, seed=0, n_startup_trials=4)
    resumed = Study(space, strategy, EncodingObjective(space), storage, seed=0)
    resumed.optimize(budget=Budget(trials=16))
    assert resumed.n_evaluated == 16
    optuna_trials = strategy._optuna_study().get_trials(deepcopy=False)
    states = {t.state for t in optuna_trials}
    assert OptunaState.FAIL in states and states <= {
        OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL}
    complete = [t for t in optuna_trials if t.state is OptunaState.COMPLETE]
    assert sorted((space.key(Genotype.of(t.params)), t.value) for t in complete) == \
        sorted((t.key, t.score) for t in resumed.trials)


def test_a_space_that_refuses_everything_is_a_clear_error() -> None:
    class Nothing(ChainSpace):
        def validate(self, genotype: Genotype) -> None:
            raise InvalidGenotype("nothing is allowed")

    space = Nothing("vector", max_depth=2, widths=(8,))
    study = Study(space, _strategy(space, "random", seed=0), EncodingObjective(space), seed=0)
    with pytest.raises(RuntimeError, match="refused 20 proposals of optuna:random and 1000"):
        study.optimize(budget=Budget(trials=1))


# -- multi-objective studies -----------------------------------------------------------------
def _mo_run(space: SearchSpace, sampler: str, seed: int, trials: int,
            storage: InMemoryStorage | None = None,
            constraints: Mapping[str, Mapping[str, float]] | None = None,
            estimator: Estimator | None = None) -> Study:
    from test_multiobjective_conformance import OBJECTIVES, ToyObjectives

    assert isinstance(space, DecisionSpace)
    study = Study(space, _strategy(space, sampler, seed), estimator or ToyObjectives(space),
                  storage, seed=seed, objectives=OBJECTIVES, constraints=constraints)
    study.optimize(budget=Budget(trials=trials))
    return study


@pytest.mark.parametrize("sampler", FAST)
def test_a_multi_objective_study_tells_optuna_the_score_vector(sampler: str) -> None:
    """Not wrapped in ParEGO: Optuna gets one maximised direction per objective, each
    trial's scores, and its constraint violation (failed trials: PRUNED)."""
    from test_multiobjective_conformance import TwoObjectiveToy

    space = TwoObjectiveToy()
    study = _mo_run(space, sampler, seed=0, trials=30, constraints={"cost": {"max": 3.5}})
    strategy = study.strategy
    assert isinstance(strategy, OptunaStrategy) and strategy.multi_objective
    assert study.n_evaluated == 30
    optuna_study = strategy._optuna_study()
    assert [d.name for d in optuna_study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    optuna_trials = optuna_study.get_trials(deepcopy=False)
    assert len(optuna_trials) == len(study.trials)  # the first ask's study was rebuilt
    assert any(not t.feasible for t in study.trials) and any(t.feasible for t in study.trials)
    for ours, theirs in zip(study.trials, optuna_trials, strict=True):
        assert Genotype.of(theirs.params) == ours.genotype
        assert ours.scores is not None and theirs.values == list(ours.scores)
        if sampler != "random":  # the random sampler takes no constraints
            assert strategy._constraint(theirs) == (ours.violation,)


@pytest.mark.parametrize("sampler", FAST)
def test_a_multi_objective_study_resumes_exactly(sampler: str) -> None:
    from test_multiobjective_conformance import TwoObjectiveToy

    space = TwoObjectiveToy()
    bound = {"cost": {"max": 4.0}}
    straight = _mo_run(space, sampler, seed=1, trials=30, constraints=bound)
    for stop in (1, 13):
        storage = InMemoryStorage()
        _mo_run(space, sampler, seed=1, trials=stop, storage=storage, constraints=bound)
        resumed = _mo_run(space, sampler, seed=1, trials=30, storage=storage, constraints=bound)
        assert _keys(resumed) == _keys(straight), stop


def test_nsga2_on_a_multi_objective_study_resumes_exactly_after_a_crash_mid_trial() -> None:
    from test_multiobjective_conformance import TwoObjectiveToy

    space = TwoObjectiveToy()
    straight = _mo_run(space, "nsga2", seed=2, trials=24)
    assert all(t.scores is not None and len(t.scores) == 2 for t in straight.trials)
    storage = InMemoryStorage()
    first = _mo_run(space, "nsga2", seed=2, trials=9, storage=storage)
    crashed = first.ask()
    assert crashed is not None
    resumed = _mo_run(space, "nsga2", seed=2, trials=24, storage=storage)
    assert resumed.trials[crashed.number].key == crashed.key
    assert _keys(resumed) == _keys(straight)


def test_a_multi_objective_study_on_a_refusing_space_resumes_exactly() -> None:
    """Refusals and a first trial that fails, replayed into the rebuilt Optuna study."""
    from test_multiobjective_conformance import ToyObjectives, TwoObjectiveToy

    class NoEqualNeighbours(TwoObjectiveToy):
        def validate(self, genotype: Genotype) -> None:
            super().validate(genotype)
            if genotype["d0"] == genotype["d1"] == genotype["d2"]:
                raise InvalidGenotype("three equal first choices")

    class FailsCheapOnes(ToyObjectives):
        def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
            if context.number == 0 or genotype["d4"] == 0:
                raise RuntimeError("simulated failure")
            return super().evaluate(genotype, context)

    space = NoEqualNeighbours()

    def run(trials: int, storage: InMemoryStorage | None = None) -> Study:
        return _mo_run(space, "tpe", seed=6, trials=trials, storage=storage,
                       estimator=FailsCheapOnes(space))

    straight = run(30)
    assert straight.trials[0].state is TrialState.FAILED  # no scores: a 1-objective study
    assert isinstance(straight.strategy, OptunaStrategy)
    pruned = straight.strategy._optuna_study().get_trials(states=[OptunaState.PRUNED])
    failed = [t for t in straight.trials if t.state is TrialState.FAILED]
    assert len(pruned) - len(failed) >= 3, "the test needs proposals that the space refuses"
    storage = InMemoryStorage()
    run(10, storage)
    assert _keys(run(30, storage)) == _keys(straight)


def test_a_sampler_without_multi_objective_support_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """optuna:gp needs Optuna >= 4.5 for several objectives with constraints: an older
    Optuna is refused at the first multi-objective ask or tell, not silently scalarised."""
    from archsearch.strategy import optuna_sampler
    from test_multiobjective_conformance import TwoObjectiveToy

    monkeypatch.setattr(optuna_sampler, "_optuna_version", lambda: (4, 4))
    space = TwoObjectiveToy()
    with pytest.raises(ConfigError, match=r"optuna:gp .* 2 objectives.*Optuna >= 4\.5"):
        _mo_run(space, "gp", seed=0, trials=4)
    single = _run("chain-vector", "gp", seed=0, trials=2)  # one objective: as before
    assert single.n_evaluated == 2
