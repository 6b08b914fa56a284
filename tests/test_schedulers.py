"""Multi-fidelity schedulers in a study: pruners in the ask/tell loop (median, ASHA) and
the bracket drivers (successive halving, Hyperband): what they record, that promoted
trials continue from their checkpoints, and exact resumption."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

import archsearch
from archsearch import DecisionSpace, categorical
from archsearch.errors import ConfigError
from archsearch.execution.processes import ProcessExecutor
from archsearch.fidelity.brackets import hyperband_brackets
from archsearch.fidelity.drivers import HyperbandDriver, SuccessiveHalvingDriver
from archsearch.fidelity.pruners import MedianPruner, SuccessiveHalvingPruner
from archsearch.trial import TrialState
from curve_estimator import CurveEstimator


class Grid(DecisionSpace):
    """4**4 = 256 architectures."""

    def __init__(self) -> None:
        super().__init__([categorical(f"x{i}", (0, 1, 2, 3)) for i in range(4)])


def _study(tmp_path: Path, scheduler: object, *, db: str | None = "s.db", epochs: int = 9,
           strategy: str = "random", log: bool = True, seed: int = 0,
           **estimator: object) -> archsearch.Study:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return archsearch.create_study(
        Grid(), strategy=strategy, seed=seed,
        estimator=CurveEstimator(epochs=epochs, log=str(logs) if log else None, **estimator),
        storage=None if db is None else tmp_path / db, scheduler=scheduler)


def _epochs_trained(tmp_path: Path, number: int) -> list[int]:
    path = tmp_path / "logs" / f"trial-{number}.log"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _summary(study: archsearch.Study) -> list[tuple[int, str, str, int, float | None]]:
    return [(t.number, t.state.value, t.key, t.epochs_trained, t.metrics.get("val_accuracy"))
            for t in study.trials]


# -- Hyperband and successive halving ---------------------------------------------------
def test_one_hyperband_cycle_runs_hpbandsters_brackets(tmp_path: Path) -> None:
    study = _study(tmp_path, HyperbandDriver(min_epochs=1, eta=3))
    assert [[(r.configs, r.epochs) for r in b.rungs] for b in hyperband_brackets(1, 9, 3)] == [
        [(9, 1), (3, 3), (1, 9)], [(3, 3), (1, 9)], [(3, 9)]]
    assert study.optimize(trials=15).name == "BUDGET"
    states = [t.state for t in study.trials]
    assert len(states) == 15
    first, second, third = study.trials[:9], study.trials[9:12], study.trials[12:]
    # Bracket s=2: 9 at 1 epoch, the best 3 to 3 epochs, the best 1 to 9.
    assert sorted(t.epochs_trained for t in first) == [1] * 6 + [3] * 2 + [9]
    assert [t.state for t in first].count(TrialState.COMPLETE) == 1
    best_at_1 = sorted(first, key=lambda t: -t.curve[0]["val_accuracy"])[:3]
    assert {t.number for t in first if t.epochs_trained >= 3} == {t.number for t in best_at_1}
    assert sorted(t.epochs_trained for t in second) == [3, 3, 9]
    assert [t.epochs_trained for t in third] == [9, 9, 9]
    assert all(t.state is TrialState.COMPLETE for t in third)
    assert sum(s is TrialState.PRUNED for s in states) == 8 + 2
    # A promoted trial continued from its checkpoint: every epoch trained exactly once.
    for t in study.trials:
        assert _epochs_trained(tmp_path, t.number) == list(range(1, t.epochs_trained + 1))
        assert len(t.curve) == t.epochs_trained
    # Checkpoints are gone once trials finish.
    assert not any((tmp_path / "s.db.checkpoints").rglob("*.pt"))
    assert not any((tmp_path / "s.db.checkpoints").rglob("trial-*"))
    # Pruned trials have no score; the best trial is a complete one.
    assert all(t.score is None for t in study.trials if t.state is TrialState.PRUNED)
    best = study.best_trial
    assert best is not None and best.state is TrialState.COMPLETE
    study.close()


def test_successive_halving_repeats_the_most_aggressive_bracket(tmp_path: Path) -> None:
    study = _study(tmp_path, SuccessiveHalvingDriver(min_epochs=1, eta=3), db=None)
    study.optimize(trials=18)
    for bracket in (study.trials[:9], study.trials[9:18]):
        assert sorted(t.epochs_trained for t in bracket) == [1] * 6 + [3] * 2 + [9]
    study.close()


def _interrupt_after(study: archsearch.Study, reports: int) -> None:
    """Make the study stop as if its process died right after ``reports`` recorded jobs."""
    seen, original = 0, study.report

    def report(trial, outcome):  # type: ignore[no-untyped-def]
        nonlocal seen
        seen += 1
        if seen > reports:
            raise KeyboardInterrupt
        return original(trial, outcome)

    study.report = report  # type: ignore[method-assign]


def _hyperband_run(tmp_path: Path, name: str, workers: int, stop_after: int | None,
                   resource: str = "epochs") -> list:
    """A Hyperband study of 15 trials; with ``stop_after``, the first run is interrupted
    after that many jobs' results (KeyboardInterrupt from a callback-like estimator hook),
    then a fresh study resumes it."""
    folder = tmp_path / name
    folder.mkdir()
    executor = ProcessExecutor(workers=workers) if workers > 1 else None

    def make() -> archsearch.Study:
        return _study(folder, HyperbandDriver(min_epochs=1, eta=3, resource=resource), log=False)

    study = make()
    if stop_after is not None:
        _interrupt_after(study, stop_after)
        with pytest.raises(KeyboardInterrupt):
            study.optimize(trials=15, executor=executor)
        study.close()
        study = make()
        executor = ProcessExecutor(workers=workers) if workers > 1 else None
    study.optimize(trials=15, executor=executor)
    summary = [(*row, len(t.curve)) for row, t in zip(_summary(study), study.trials, strict=True)]
    study.close()
    return summary


@pytest.mark.parametrize("resource", ["epochs", "data"])
@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_hyperband_study_resumes_exactly(tmp_path: Path, workers: int,
                                                        resource: str) -> None:
    straight = _hyperband_run(tmp_path, "straight", workers, None, resource)
    for stop_after in (4, 11):
        resumed = _hyperband_run(tmp_path, f"stopped{stop_after}", workers, stop_after, resource)
        assert resumed == straight
    if workers == 2:  # the order jobs finish in does not change the record
        assert straight == _hyperband_run(tmp_path, "serial", 1, None, resource)


# -- the data fraction as the resource ---------------------------------------------------
def test_successive_halving_on_data_fractions_trains_each_rung_afresh(tmp_path: Path) -> None:
    """min_fraction 1/9, eta 3: 9 trials on 1/9 of the data, the best 3 on 1/3, the best
    one on all of it; every rung a whole new schedule, every run kept in the curve."""
    driver = SuccessiveHalvingDriver(eta=3, resource="data")
    assert driver.data_units == 9
    study = _study(tmp_path, driver)
    study.optimize(trials=9)
    trials = study.trials
    fractions = [sorted({e["data_fraction"] for e in t.curve}) for t in trials]
    assert sorted(map(len, fractions)) == [1] * 6 + [2] * 2 + [3]
    assert all(f == [1 / 9, 1 / 3, 1.0][:len(f)] for f in fractions)
    promoted = {t.number for t in trials if len(t.curve) > 9}
    at_ninth = {t.number: t.curve[8]["val_accuracy"] for t in trials}  # the end of run 1
    assert promoted == set(sorted(at_ninth, key=lambda n: -at_ninth[n])[:3])
    for t in trials:
        assert len(t.curve) == 9 * len({e["data_fraction"] for e in t.curve})
        log = (tmp_path / "logs" / f"trial-{t.number}.data.log").read_text().split("\n")
        runs = [line.split() for line in log if line]
        assert [int(e) for _, e in runs] == list(range(1, 10)) * (len(t.curve) // 9)
        assert not (tmp_path / "logs" / f"trial-{t.number}.log").exists()  # no epoch jobs
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(done) == 1 and done[0].metrics["data_fraction"] == 1.0
    assert "test_accuracy" in done[0].metrics
    assert not any((tmp_path / "s.db.checkpoints").rglob("*.pt"))
    for t in trials:  # the last run alone, for the displays
        assert t.data_fraction == t.curve[-1]["data_fraction"]
        assert t.last_run == t.curve[-9:] and [p["epoch"] for p in t.last_run] == list(range(1, 10))
    study.close()


def test_show_prints_the_last_runs_share_of_the_data(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from archsearch.cli import main

    study = _study(tmp_path, SuccessiveHalvingDriver(eta=3, resource="data"))
    study.optimize(trials=9)
    study.close()
    capsys.readouterr()
    assert main(["show", str(tmp_path / "s.db")]) == 0
    text = capsys.readouterr().out
    assert "epochs" in text
    assert text.count("0.111x 9 ") == 6 and text.count("0.333x 9 ") == 2
    assert text.count(" 1x 9 ") == 2  # the complete trial's row, and its curve below


def test_the_report_draws_each_trials_last_run_once(tmp_path: Path) -> None:
    from archsearch.report.training_figures import learning_curves_figure

    study = _study(tmp_path, SuccessiveHalvingDriver(eta=3, resource="data"), db=None)
    study.optimize(trials=9)
    figure, note = learning_curves_figure(study.trials, study.objectives[0])
    study.close()
    assert figure is not None and note == "all 9 trials that trained in epochs"
    xs = [x for trace in figure["data"] for x in trace["x"]]
    runs = " ".join("|" if x is None else str(int(x)) for x in xs).split("|")
    assert [r.split() for r in runs if r.strip()] == [[str(e) for e in range(1, 10)]] * 9


def test_the_data_resource_needs_an_estimator_that_trains_on_a_fraction(tmp_path: Path) -> None:
    study = archsearch.create_study(Grid(), scheduler="hyperband",
                                    scheduler_params={"resource": "data"})
    with pytest.raises(ConfigError, match="resource 'data'"):
        study.optimize(lambda g: 1.0, trials=3)
    with pytest.raises(ConfigError, match="min_fraction is the smallest budget"):
        archsearch.create_study(Grid(), scheduler="hyperband", scheduler_params={
            "min_fraction": 0.25})
    with pytest.raises(ConfigError, match="resource must be one of epochs, data"):
        archsearch.create_study(Grid(), scheduler="hyperband",
                                scheduler_params={"resource": "images"})
    with pytest.raises(ConfigError, match="min_fraction must be in"):
        archsearch.create_study(Grid(), scheduler="hyperband",
                                scheduler_params={"resource": "data", "min_fraction": 0})
    assert HyperbandDriver(resource="data", min_fraction=0.3).data_units == 3


# -- pruners in the ask/tell loop ------------------------------------------------------
def test_asha_prunes_at_its_rungs_and_continues_from_checkpoints(tmp_path: Path) -> None:
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = _study(tmp_path, pruner, epochs=9)
    study.optimize(trials=30)
    assert pruner.steps(9) == [1, 3]
    trials = study.trials
    assert {t.epochs_trained for t in trials} <= {1, 3, 9}
    assert any(t.state is TrialState.PRUNED for t in trials)
    for t in trials:
        assert (t.state is TrialState.COMPLETE) == (t.epochs_trained == 9)
        assert _epochs_trained(tmp_path, t.number) == list(range(1, t.epochs_trained + 1))
    # Every decision follows the rule, replayed on the record as it was at the time
    # (one trial at a time: the trials before it).
    for t in trials:
        for step in pruner.steps(9):
            if t.epochs_trained < step:
                break
            cut = type(t)(**{**t.__dict__, "curve": t.curve[:step],
                             "state": TrialState.RUNNING})
            assert pruner.prune(cut, trials[:t.number], "val_accuracy", True) == (
                t.epochs_trained == step), (t.number, step)
    study.close()


def test_asha_keeps_two_workers_busy_and_decides_every_trial(tmp_path: Path) -> None:
    pruner = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = _study(tmp_path, pruner, seconds=0.01)
    study.optimize(trials=16, executor=ProcessExecutor(workers=2))
    trials = study.trials
    assert len(trials) == 16 and all(t.finished for t in trials)
    assert {t.epochs_trained for t in trials} <= {1, 3, 9}
    for t in trials:  # continued from checkpoints written by the workers
        assert _epochs_trained(tmp_path, t.number) == list(range(1, t.epochs_trained + 1))
        assert (t.state is TrialState.COMPLETE) == (t.epochs_trained == 9)
    study.close()


def test_the_median_pruner_stops_trials_below_the_median(tmp_path: Path) -> None:
    pruner = MedianPruner(n_startup_trials=3)
    study = _study(tmp_path, pruner, db=None, epochs=6)
    study.optimize(trials=20)
    trials = study.trials
    assert all(t.state is TrialState.COMPLETE for t in trials[:3])  # the startup trials
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned and all(1 <= t.epochs_trained < 6 for t in pruned)
    for t in pruned:
        step = t.epochs_trained
        done = [o for o in trials[:t.number] if o.state is TrialState.COMPLETE]
        values = sorted(o.curve[step - 1]["val_accuracy"] for o in done)
        median = (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2
        assert max(p["val_accuracy"] for p in t.curve) < median
    study.close()


def test_a_failed_job_is_a_failed_trial_and_keeps_its_curve(tmp_path: Path) -> None:
    estimator = CurveEstimator(epochs=4)
    study = archsearch.create_study(
        Grid(), strategy="random", estimator=estimator,
        scheduler=SuccessiveHalvingPruner(min_resource=1, reduction_factor=2))
    first = study.ask()  # the first trial always passes ASHA's first rung, then fails
    assert first is not None
    estimator.fail_keys = (first.genotype.to_json(),)
    study.pause(first)
    study.optimize(trials=10)
    failed = [t for t in study.trials if t.state is TrialState.FAILED]
    assert [t.number for t in failed] == [0]
    assert "diverged at epoch 2" in (failed[0].error or "")
    assert failed[0].epochs_trained == 1  # the curve up to the job that failed
    study.close()


def test_an_interrupted_asha_study_resumes_exactly(tmp_path: Path) -> None:
    def run(name: str, stop_after: int | None) -> list:
        folder = tmp_path / name
        folder.mkdir()

        def make() -> archsearch.Study:
            return _study(folder, SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
                          log=False)

        study = make()
        if stop_after is not None:
            _interrupt_after(study, stop_after)
            with pytest.raises(KeyboardInterrupt):
                study.optimize(trials=20)
            study.close()
            study = make()
        study.optimize(trials=20)
        out = _summary(study)
        study.close()
        return out

    straight = run("straight", None)
    assert run("stopped", 7) == straight


def test_a_time_budget_leaves_trials_between_jobs_for_the_next_run(tmp_path: Path) -> None:
    study = _study(tmp_path, SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
                   seconds=0.02, log=False)
    study.optimize(timeout=0.3)
    running = [t for t in study.trials if t.state is TrialState.RUNNING]
    assert all(t.curve for t in running)  # paused with their curve, not lost
    before = len(study.trials)
    study.optimize(trials=before + 1)
    assert all(t.state is not TrialState.RUNNING for t in study.trials[:before])
    study.close()


# -- the record and the command line -----------------------------------------------------
def test_the_curve_and_the_pruned_state_are_in_the_record_and_shown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = _study(tmp_path, HyperbandDriver(min_epochs=1, eta=3))
    study.optimize(trials=9)
    study.close()
    from archsearch.cli import main

    assert main(["show", str(tmp_path / "s.db"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    states = [t["state"] for t in shown["trials"]]
    assert states.count("pruned") == 8 and states.count("complete") == 1
    complete = next(t for t in shown["trials"] if t["state"] == "complete")
    assert [p["epoch"] for p in complete["curve"]] == list(range(1, 10))
    assert main(["show", str(tmp_path / "s.db")]) == 0
    text = capsys.readouterr().out
    assert "pruned" in text and "epochs" in text
    with sqlite3.connect(tmp_path / "s.db") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 3


def test_a_repeat_of_a_pruned_architecture_is_answered_as_pruned(tmp_path: Path) -> None:
    study = _study(tmp_path, SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
                   db=None, log=False)
    study.optimize(trials=12)
    pruned = next(t for t in study.trials if t.state is TrialState.PRUNED)
    trial = study.ask()
    assert trial is not None
    repeat = study.answer_from_record(replace(trial, genotype=pruned.genotype, key=pruned.key))
    assert repeat is not None and repeat.cached and repeat.state is TrialState.PRUNED
    assert repeat.curve == pruned.curve and repeat.metrics == pruned.metrics
    study.close()


# -- configuration errors ----------------------------------------------------------------
def test_a_scheduler_needs_an_estimator_that_trains_in_epochs(tmp_path: Path) -> None:
    study = archsearch.create_study(Grid(), scheduler="asha")
    with pytest.raises(ConfigError, match="does not train in epochs"):
        study.optimize(lambda g: 1.0, trials=3)


def test_a_scheduler_on_a_multi_objective_study_is_refused(tmp_path: Path) -> None:
    study = archsearch.create_study(Grid(), strategy="random", estimator=CurveEstimator(),
                                    objectives=["val_accuracy:max", "epochs:min"],
                                    scheduler="hyperband")
    with pytest.raises(ConfigError, match="multi-objective"):
        study.optimize(trials=3)


def test_schedulers_are_named_in_the_registry(tmp_path: Path) -> None:
    from archsearch import registry

    assert isinstance(registry.resolve("scheduler", "asha")(), SuccessiveHalvingPruner)
    assert isinstance(registry.resolve("scheduler", "median")(), MedianPruner)
    assert registry.resolve("scheduler", "hyperband") is HyperbandDriver
    assert registry.resolve("scheduler", "successive-halving") is SuccessiveHalvingDriver
    study = archsearch.create_study(Grid(), estimator=CurveEstimator(), scheduler="hyperband",
                                    scheduler_params={"min_epochs": 3})
    assert isinstance(study.scheduler, HyperbandDriver) and study.scheduler.min_epochs == 3


# -- real training -----------------------------------------------------------------------
def _digits_run(tmp_path: Path, epochs: int, scheduler: dict[str, object],
                *options: str) -> list:
    """``archsearch run`` of a YAML config (4 chain networks, real training on digits)
    with ``scheduler``; the trials of its record."""
    import yaml

    from archsearch.cli import main

    config = {
        "study": {"name": "hb", "seed": 1, "trials": 4},
        "data": "digits",
        "space": {"name": "chain", "max_depth": 2, "widths": [8, 16]},
        "strategy": "random",
        "estimator": {"name": "training", "epochs": epochs, "batch_size": 64,
                      "latency_repeats": 1},
        "scheduler": scheduler,
    }
    path = tmp_path / "hb.yaml"
    path.write_text(yaml.safe_dump(config))
    db = tmp_path / "hb.db"
    assert main(["run", str(path), "--storage", str(db), *options]) == 0
    study = archsearch.create_study(  # reopen the record to read it
        "chain", space_params={"max_depth": 2, "widths": [8, 16]}, storage=db, name="hb",
        seed=1)
    trials = study.trials
    study.close()
    return trials


@pytest.mark.parametrize("workers", [1, 2])
def test_hyperband_from_a_config_trains_real_networks_and_continues_them(
        tmp_path: Path, workers: int) -> None:
    """A YAML config with a scheduler, real training on digits, in worker processes when
    ``workers`` is 2: promoted trials continue from checkpoints written by the workers."""
    trials = _digits_run(tmp_path, 4, {"name": "successive-halving", "min_epochs": 1, "eta": 2},
                         "--workers", str(workers))
    # eta 2 over 1..4 epochs: 4 at 1 epoch, 2 at 2, 1 at 4.
    assert sorted(t.epochs_trained for t in trials) == [1, 1, 2, 4]
    assert [t.state.value for t in trials].count("complete") == 1
    done = next(t for t in trials if t.state is TrialState.COMPLETE)
    assert [p["epoch"] for p in done.curve] == [1.0, 2.0, 3.0, 4.0]
    assert "test_accuracy" in done.metrics and 0 <= done.metrics["val_accuracy"] <= 1
    assert not any((tmp_path / "hb.db.checkpoints").rglob("*.pt"))


def test_successive_halving_on_data_from_a_config_trains_real_networks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``resource: data`` in YAML, real training on digits: 4 networks on a quarter of the
    training rows, the best 2 on half, the best one on all of them, 2 epochs each run."""
    trials = _digits_run(tmp_path, 2, {"name": "successive-halving", "eta": 2,
                                       "resource": "data", "min_fraction": 0.25})
    out = capsys.readouterr().out
    assert out.count("pruned at 0.25 of the data") == 2
    assert out.count("pruned at 0.5 of the data") == 1
    runs = sorted(tuple(e["data_fraction"] for e in t.curve[1::2]) for t in trials)
    assert runs == [(0.25,), (0.25,), (0.25, 0.5), (0.25, 0.5, 1.0)]
    done = next(t for t in trials if t.state is TrialState.COMPLETE)
    assert "test_accuracy" in done.metrics and done.metrics["data_fraction"] == 1.0
    assert all("test_accuracy" not in t.metrics for t in trials if t is not done)


def test_an_objective_missing_from_the_curve_is_a_config_error(tmp_path: Path) -> None:
    study = archsearch.create_study(Grid(), estimator=CurveEstimator(), objective="test_accuracy",
                                    scheduler="asha")
    with pytest.raises(ConfigError, match="not the objective 'test_accuracy'"):
        study.optimize(trials=3)


KILL_SCRIPT = """
import json
import sys
import archsearch
from archsearch.execution.processes import ProcessExecutor
from curve_estimator import CurveEstimator
from test_schedulers import Grid
study = archsearch.create_study(Grid(), strategy="regularized-evolution", seed=5,
                                estimator=CurveEstimator(epochs=9, seconds=float(sys.argv[3])),
                                storage=sys.argv[1], scheduler=sys.argv[4],
                                scheduler_params=json.loads(sys.argv[5]))
workers = int(sys.argv[2])
study.optimize(trials=20, executor=ProcessExecutor(workers=workers) if workers > 1 else None)
"""


def _record(db: Path) -> list[tuple]:
    try:
        with sqlite3.connect(db) as con:
            return list(con.execute(
                "SELECT number, state, genotype, metrics, curve FROM trials ORDER BY number"))
    except sqlite3.OperationalError:
        return []


@pytest.mark.parametrize("scheduler", ["hyperband", "successive-halving", "asha",
                                       "hyperband:data"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_study_killed_with_sigkill_resumes_exactly(tmp_path: Path, scheduler: str,
                                                    workers: int) -> None:
    """kill -9 in the middle of a bracket, run again: the record (metrics and curves
    included) equals an uninterrupted run's; a strategy that learns from the record
    (regularized evolution) sees the same trials in the same order.  ASHA with two
    workers decides on the trials that happen to have finished, so no two runs of it
    agree; there the resumed run must keep every trial the killed one finished, as it
    was, and finish the rest by the same rules.  ``hyperband:data`` is Hyperband over
    data fractions."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    straight = tmp_path / "straight.db"

    name, _, resource = scheduler.partition(":")
    params = json.dumps({"resource": resource} if resource else {})

    def run(db: Path, seconds: str) -> None:
        subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(db), str(workers), seconds,
                        name, params], check=True, timeout=120, env=env)

    run(straight, "0")

    def mid_trial(killed: Path) -> bool:
        """Inside the first bracket's rungs, with a trial between two of its jobs (it has
        reported and is still running)."""
        record = _record(killed)
        return sum(r[4] is not None for r in record) >= 11 and any(
            r[1] == "running" and r[4] is not None for r in record)

    # The kill races the study: the trial seen running may be pruned at its rung and the
    # next one not yet recorded by the time the signal lands (a few milliseconds in 20).
    # Such a kill falls between trials, which is not what this test is about, so it starts
    # over in a fresh folder; three misses in a row would be a real failure.
    for attempt in range(3):
        killed = tmp_path / f"attempt-{attempt}" / "killed.db"
        killed.parent.mkdir()
        child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed),
                                  str(workers), "0.02", name, params], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not mid_trial(killed):
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        partial = _record(killed)
        if any(r[1] == "running" for r in partial) and len(partial) < 20:
            break
    else:
        pytest.fail(f"three kills missed a running trial: last record {partial}")
    run(killed, "0")
    strip = [(n, s, g, json.loads(m), c) for n, s, g, m, c in _record(straight)]
    again = [(n, s, g, json.loads(m), c) for n, s, g, m, c in _record(killed)]
    if scheduler != "asha" or workers == 1:
        assert again == strip
        return
    finished = [(n, s, g, json.loads(m), c) for n, s, g, m, c in partial
                if s in ("complete", "pruned")]
    assert finished and all(row in again for row in finished)
    assert len(again) == 20 and {s for _, s, _, _, _ in again} <= {"complete", "pruned"}
    rungs = SuccessiveHalvingPruner().steps(9)  # the registry's defaults: 1, 4
    for _, state, _, _, curve in again:
        epochs = len(json.loads(curve))
        assert epochs == 9 if state == "complete" else epochs in rungs
