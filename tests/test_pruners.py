"""Pruners: worked examples by hand, then a cross-check against Optuna's own pruners."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from archsearch.errors import ConfigError
from archsearch.fidelity import (
    MedianPruner,
    PercentilePruner,
    Pruner,
    SuccessiveHalvingPruner,
    curve_value,
    rank_key,
)
from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial, TrialState

NAN = float("nan")
ACC = "val_accuracy"


def trial(number: int, values: Sequence[float], state: TrialState = TrialState.COMPLETE,
          cached: bool = False) -> FrozenTrial:
    """A trial whose curve holds ``values`` at epochs 1, 2, ..."""
    curve = tuple({"epoch": float(e), ACC: v, "train_loss": 1.0} for e, v in enumerate(values, start=1))
    return FrozenTrial(number=number, state=state, genotype=Genotype.of({"n": number}), key=str(number),
                       curve=curve, cached=cached)


def running(number: int, values: Sequence[float]) -> FrozenTrial:
    return trial(number, values, TrialState.RUNNING)


# --- helpers -------------------------------------------------------------------------


def test_curve_value_and_rank_key() -> None:
    t = trial(0, [0.1, NAN, 0.3])
    assert curve_value(t, 1, ACC) == 0.1
    assert math.isnan(curve_value(t, 2, ACC) or 0.0)
    assert curve_value(t, 4, ACC) is None and curve_value(t, 0, ACC) is None
    assert curve_value(t, 1, "missing") is None
    gappy = FrozenTrial(number=1, state=TrialState.RUNNING, genotype=Genotype.of({}), key="g",
                        curve=({"epoch": 2.0, ACC: 0.5},))
    assert curve_value(gappy, 2, ACC) == 0.5 and curve_value(gappy, 1, ACC) is None
    assert sorted([0.2, None, 0.9, NAN, 0.5], key=lambda v: rank_key(v, True))[:3] == [0.9, 0.5, 0.2]
    assert sorted([0.2, None, 0.9, NAN, 0.5], key=lambda v: rank_key(v, False))[:3] == [0.2, 0.5, 0.9]


# --- median --------------------------------------------------------------------------

# Four completed trials; at epoch 2 their values are 0.2, 0.4, 0.6, 0.8: median 0.5.
DONE = [trial(0, [0.1, 0.2, 0.3]), trial(1, [0.3, 0.4, 0.5]), trial(2, [0.5, 0.6, 0.7]),
        trial(3, [0.7, 0.8, 0.9])]


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    pruner = MedianPruner(n_startup_trials=4)
    assert not pruner.prune(running(9, [0.1, 0.5]), DONE, ACC, maximize=True)  # 0.5 == median: stays
    assert pruner.prune(running(9, [0.1, 0.49]), DONE, ACC, maximize=True)  # 0.49 < 0.5
    # The best so far counts, not the last: max(0.55, 0.45) = 0.55 > 0.5.
    assert not pruner.prune(running(9, [0.55, 0.45]), DONE, ACC, maximize=True)
    # Minimising the same numbers: best so far min(0.9, 0.51) = 0.51 > 0.5 -> pruned.
    assert pruner.prune(running(9, [0.9, 0.51]), DONE, ACC, maximize=False)
    assert not pruner.prune(running(9, [0.9, 0.5]), DONE, ACC, maximize=False)


def test_median_waits_for_startup_trials() -> None:
    bad = running(9, [0.0, 0.0])
    # Three completed (the running, pruned and cached ones do not count): below 4.
    record = [*DONE[:3], running(4, [0.9, 0.9]), trial(5, [0.9, 0.9], TrialState.PRUNED),
              trial(6, [0.9, 0.9], cached=True)]
    assert not MedianPruner(n_startup_trials=4).prune(bad, record, ACC, maximize=True)
    assert MedianPruner(n_startup_trials=3).prune(bad, record, ACC, maximize=True)
    assert not MedianPruner(n_startup_trials=0).prune(bad, [], ACC, maximize=True)  # no one to compare


def test_median_warm_up_and_interval() -> None:
    # Step = epoch - 1.  Warm-up 2: epochs 1 and 2 are never judged; from step 2 = epoch 3,
    # every 2nd step: epochs 3, 5, 7.
    pruner = MedianPruner(n_startup_trials=1, n_warmup_steps=2, interval_steps=2)
    assert pruner.steps(9) == [3, 5, 7]
    assert pruner.steps(8) == [3, 5, 7]
    assert pruner.steps(7) == [3, 5]  # the last epoch is never a step
    assert MedianPruner().steps(4) == [1, 2, 3]
    # Interval 3 without warm-up: steps 0, 3, 6 = epochs 1, 4, 7.
    assert MedianPruner(interval_steps=3).steps(10) == [1, 4, 7]
    done = [trial(0, [0.5] * 9)]
    assert not pruner.prune(running(9, [0.1] * 2), done, ACC, maximize=True)  # warm-up
    assert pruner.prune(running(9, [0.1] * 3), done, ACC, maximize=True)
    assert not pruner.prune(running(9, [0.1] * 4), done, ACC, maximize=True)  # between checks
    assert pruner.prune(running(9, [0.1] * 5), done, ACC, maximize=True)


def test_median_needs_n_min_trials_at_that_epoch() -> None:
    # Trials 0 and 1 stopped at epoch 1: only 0.7 and 0.9 are at epoch 3 (median 0.8).
    short = [trial(0, [0.1]), trial(1, [0.3]), *DONE[2:]]
    t = running(9, [0.0, 0.0, 0.0])
    assert not MedianPruner(n_startup_trials=1, n_min_trials=3).prune(t, short, ACC, maximize=True)
    assert MedianPruner(n_startup_trials=1, n_min_trials=2).prune(t, short, ACC, maximize=True)


def test_median_nan() -> None:
    pruner = MedianPruner(n_startup_trials=1)
    assert pruner.prune(running(9, [NAN, NAN]), DONE, ACC, maximize=True)  # nothing but NaN: pruned
    assert not pruner.prune(running(9, [0.7, NAN]), DONE, ACC, maximize=True)  # best 0.7 > 0.5
    all_nan = [trial(i, [NAN, NAN]) for i in range(3)]
    assert not pruner.prune(running(9, [0.0, 0.0]), all_nan, ACC, maximize=True)  # no reference


def test_median_ignores_its_own_older_copy() -> None:
    t = running(9, [0.3, 0.45])
    # A completed copy of #9 at 0.0 would make the values at epoch 2 0.0, 0.2, 0.4, 0.6, 0.8:
    # median 0.4, and 0.45 would stay.  Ignored, the median is 0.5 and 0.45 goes.
    record = [*DONE, trial(9, [0.0, 0.0])]
    assert MedianPruner(n_startup_trials=4).prune(t, record, ACC, maximize=True)
    # Nor does it count as a fifth completed trial.
    assert not MedianPruner(n_startup_trials=5).prune(t, record, ACC, maximize=True)


# --- successive halving --------------------------------------------------------------


def rung_record(values: Sequence[float], epoch: int = 1, start: int = 0) -> list[FrozenTrial]:
    """One trial per value, each having reached ``epoch`` with that value there."""
    return [trial(start + i, [0.0] * (epoch - 1) + [v], TrialState.RUNNING) for i, v in enumerate(values)]


def test_asha_rungs() -> None:
    assert SuccessiveHalvingPruner().steps(64) == [1, 4, 16]
    assert SuccessiveHalvingPruner().steps(65) == [1, 4, 16, 64]
    assert SuccessiveHalvingPruner(min_resource=2, min_early_stopping_rate=1).steps(100) == [8, 32]
    assert SuccessiveHalvingPruner(min_resource=2, min_early_stopping_rate=1).steps(8) == []
    assert SuccessiveHalvingPruner(reduction_factor=3).steps(28) == [1, 3, 9, 27]


def test_asha_below_eta_only_the_best_goes_on() -> None:
    pruner = SuccessiveHalvingPruner(reduction_factor=4)
    record = rung_record([0.5, 0.7])
    # n = 3 < 4: only the best continues; 0.6 is second to 0.7.
    assert pruner.prune(running(9, [0.6]), record, ACC, maximize=True)
    assert not pruner.prune(running(9, [0.8]), record, ACC, maximize=True)
    assert not pruner.prune(running(9, [0.7]), record, ACC, maximize=True)  # tied best: goes on
    assert not pruner.prune(running(9, [0.1]), [], ACC, maximize=True)  # alone: the best
    # Minimising: 0.4 is the lowest.
    assert not pruner.prune(running(9, [0.4]), record, ACC, maximize=False)
    assert pruner.prune(running(9, [0.6]), record, ACC, maximize=False)


def test_asha_floor_n_over_eta() -> None:
    pruner = SuccessiveHalvingPruner(reduction_factor=4)
    # Seven others at rung epoch 4 plus the trial: n = 8, floor(8 / 4) = 2 go on.
    record = rung_record([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], epoch=4)
    assert not pruner.prune(running(9, [0.0] * 3 + [0.65]), record, ACC, maximize=True)  # 2nd of 8
    assert pruner.prune(running(9, [0.0] * 3 + [0.55]), record, ACC, maximize=True)  # 3rd of 8
    # Ties go on: 0.7, 0.6, 0.6, 0.6 ... the 2nd best is 0.6, and so is the trial.
    tied = rung_record([0.7, 0.6, 0.6, 0.5, 0.4, 0.3, 0.2], epoch=4)
    assert not pruner.prune(running(9, [0.0] * 3 + [0.6]), tied, ACC, maximize=True)
    # Off a rung (epoch 3) nothing is decided.
    assert not pruner.prune(running(9, [0.0] * 3), record, ACC, maximize=True)


def test_asha_counts_every_state_and_ignores_cached() -> None:
    pruner = SuccessiveHalvingPruner(reduction_factor=4)
    # A pruned 0.7 and a failed 0.5 at epoch 1 compete: n = 3, the trial's 0.6 is not best.
    record = [trial(0, [0.7, 0.1], TrialState.PRUNED), trial(1, [0.5, 0.2], TrialState.FAILED)]
    assert pruner.prune(running(9, [0.6]), record, ACC, maximize=True)
    # A cached 0.9 does not: 0.6 beats 0.5 and goes on.
    record = [trial(0, [0.9], cached=True), trial(1, [0.5])]
    assert not pruner.prune(running(9, [0.6]), record, ACC, maximize=True)


def test_asha_nan() -> None:
    pruner = SuccessiveHalvingPruner(reduction_factor=4)
    assert pruner.prune(running(9, [NAN]), [], ACC, maximize=True)  # its own NaN: pruned, even alone
    assert pruner.prune(running(9, [0.5]), [], "missing", maximize=True)  # no value: as NaN
    # Three NaN and four numbers besides: n = 8, top 2; 0.45 is second after 0.5 (NaN is worst,
    # but a diverged run took a place in the rung: counted, unlike Optuna, where n would be 5).
    record = rung_record([NAN, NAN, NAN, 0.5, 0.4, 0.3, 0.2])
    assert not pruner.prune(running(9, [0.45]), record, ACC, maximize=True)
    assert not pruner.prune(running(9, [0.25]), record, ACC, maximize=False)  # NaN worst both ways
    # Fewer numbers than the places: 7 NaN + the trial, top 2, the trial's is the one number.
    assert not pruner.prune(running(9, [0.0]), rung_record([NAN] * 7), ACC, maximize=True)


def test_asha_ignores_its_own_older_copy() -> None:
    pruner = SuccessiveHalvingPruner(reduction_factor=4)
    # Six others + the trial: n = 7, top 1 -> 0.8 loses to 0.9.  Counting the older copy of #9
    # (same number, 0.8 at epoch 1) would make n = 8, top 2, and let it through.
    record = [*rung_record([0.9, 0.7, 0.1, 0.2, 0.3, 0.4]), running(9, [0.8])]
    assert pruner.prune(running(9, [0.8]), record, ACC, maximize=True)


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MedianPruner(n_startup_trials=-1), "n_startup_trials"),
        (lambda: MedianPruner(n_warmup_steps=-1), "n_warmup_steps"),
        (lambda: MedianPruner(interval_steps=0), "interval_steps"),
        (lambda: MedianPruner(n_min_trials=0), "n_min_trials"),
        (lambda: MedianPruner(n_startup_trials=2.5), "n_startup_trials: must be an integer"),  # type: ignore[arg-type]
        (lambda: PercentilePruner(101.0), "percentile"),
        (lambda: SuccessiveHalvingPruner(min_resource=0), "min_resource"),
        (lambda: SuccessiveHalvingPruner(min_resource="auto"), "min_resource"),  # type: ignore[arg-type]
        (lambda: SuccessiveHalvingPruner(reduction_factor=1), "reduction_factor"),
        (lambda: SuccessiveHalvingPruner(min_early_stopping_rate=-1), "min_early_stopping_rate"),
    ],
)
def test_bad_settings(make: Callable[[], object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


def test_params() -> None:
    assert MedianPruner(n_startup_trials=3).get_params() == {
        "n_startup_trials": 3, "n_warmup_steps": 0, "interval_steps": 1, "n_min_trials": 1}
    assert SuccessiveHalvingPruner().get_params() == {
        "min_resource": 1, "reduction_factor": 4, "min_early_stopping_rate": 0}
    assert repr(SuccessiveHalvingPruner()) == (
        "SuccessiveHalvingPruner(min_resource=1, reduction_factor=4, min_early_stopping_rate=0)")


# --- against Optuna ------------------------------------------------------------------


def _random_pruners(rng: np.random.Generator) -> tuple[Pruner, object]:
    import optuna

    if rng.random() < 0.5:
        kw = {"n_startup_trials": int(rng.integers(0, 4)), "n_warmup_steps": int(rng.integers(0, 4)),
              "interval_steps": int(rng.integers(1, 4)), "n_min_trials": int(rng.integers(1, 3))}
        return MedianPruner(**kw), optuna.pruners.MedianPruner(**kw)
    kw = {"min_resource": int(rng.integers(1, 3)), "reduction_factor": int(rng.integers(2, 5)),
          "min_early_stopping_rate": int(rng.integers(0, 2))}
    return SuccessiveHalvingPruner(**kw), optuna.pruners.SuccessiveHalvingPruner(**kw)


def _scenario(seed: int) -> int:
    """Several trials run interleaved, each reporting every epoch to both an Optuna study
    and our record; after every epoch but the last both pruners are asked and must agree.
    Returns how many trials were pruned."""
    import optuna

    rng = np.random.default_rng(seed)
    ours, theirs = _random_pruners(rng)
    maximize = bool(rng.random() < 0.5)
    max_epochs = int(rng.integers(2, 12))
    n_trials = int(rng.integers(2, 9))
    # Values on a coarse grid, so ties happen; NaN now and then for the median's rules only
    # (ASHA counts another trial's NaN where Optuna never stores one: a documented departure).
    nan_rate = 0.05 if isinstance(ours, MedianPruner) else 0.0
    curves = np.round(rng.random((n_trials, max_epochs)), 1)
    curves[:, :-1][rng.random((n_trials, max_epochs - 1)) < nan_rate] = np.nan

    study = optuna.create_study(direction="maximize" if maximize else "minimize", pruner=theirs)  # type: ignore[arg-type]
    handles: dict[int, optuna.trial.Trial] = {}
    record: dict[int, FrozenTrial] = {}
    epochs = dict.fromkeys(range(n_trials), 0)
    pruned = 0
    while True:
        live = [n for n in range(n_trials) if n in handles and record[n].state is TrialState.RUNNING]
        unstarted = [n for n in range(n_trials) if n not in handles]
        if not live and not unstarted:
            return pruned
        pool = live + unstarted[:1]  # trials start in number order, as study.ask numbers them
        n = int(pool[rng.integers(len(pool))])
        if n not in handles:
            handles[n] = study.ask()
            assert handles[n].number == n
        epochs[n] += 1
        e = epochs[n]
        # Our epoch e is Optuna's step e - 1 for the median rule, step e for ASHA's rungs.
        handles[n].report(float(curves[n, e - 1]), e - 1 if isinstance(ours, MedianPruner) else e)
        record[n] = running(n, curves[n, :e].tolist())
        if e == max_epochs:
            study.tell(handles[n], float(curves[n, e - 1]))
            record[n] = trial(n, curves[n, :e].tolist())
            continue
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == n)
        expected = theirs.prune(study, frozen)  # type: ignore[attr-defined]
        got = ours.prune(record[n], list(record.values()), ACC, maximize)
        assert got == expected, (seed, ours, n, e, maximize, curves.tolist())
        if got:
            assert e in ours.steps(max_epochs)
            study.tell(handles[n], state=optuna.trial.TrialState.PRUNED)
            record[n] = trial(n, curves[n, :e].tolist(), TrialState.PRUNED)
            pruned += 1


def test_agrees_with_optuna_on_random_scenarios() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruned = sum(_scenario(seed) for seed in range(200))
    assert pruned > 50  # the scenarios do exercise pruning
