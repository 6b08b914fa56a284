"""Executors: trials in flight in worker processes, and what happens when things break."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.execution import ProcessExecutor
from archsearch.space import ChainSpace
from archsearch.storage import SQLiteStorage
from archsearch.strategy import GridSearch, RandomSearch
from archsearch.study import Budget, StopReason, Study
from archsearch.trial import TrialState
from fault_estimator import FaultyEstimator


def _space() -> ChainSpace:
    return ChainSpace("vector", max_depth=3, widths=(8, 16), norms=("none",))


def test_faults_in_worker_processes(tmp_path: Path) -> None:
    space = _space()
    faults = {1: "raise", 2: "nan", 3: "sleep", 4: "kill", 5: "kill-once"}
    study = Study(space, RandomSearch(space), FaultyEstimator(faults, marker_dir=str(tmp_path)),
                  SQLiteStorage(tmp_path / "s.db"), seed=0, trial_timeout=1.0)
    executor = ProcessExecutor(workers=2, grace_seconds=0.5)
    assert study.optimize(budget=Budget(trials=10), executor=executor, max_retries=1) is StopReason.BUDGET
    by_number = {t.number: t for t in study.trials}
    assert len(by_number) == 10
    assert "simulated failure" in str(by_number[1].error)
    assert "nan" in str(by_number[2].error)
    assert "TrialTimeout" in str(by_number[3].error)
    assert "worker died" in str(by_number[4].error) and "gave up after 2" in str(by_number[4].error)
    assert by_number[5].state is TrialState.COMPLETE  # retried after its worker was killed
    for number in (0, 6, 7, 8, 9):
        assert by_number[number].state is TrialState.COMPLETE
    pids = {t.metrics["pid"] for t in study.trials if t.state is TrialState.COMPLETE}
    assert len(pids) >= 2  # two workers, and replacements for the killed ones


def test_two_workers_evaluate_the_same_set_as_one(tmp_path: Path) -> None:
    """With W > 1 the order of completion may differ; grid search still evaluates the
    same set of architectures, and each trial keeps its number and seed."""
    space = _space()
    serial = Study(space, GridSearch(space), FaultyEstimator({}), seed=1)
    serial.optimize(budget=Budget(trials=12))
    parallel = Study(space, GridSearch(space), FaultyEstimator({}, seconds=0.05), seed=1)
    parallel.optimize(budget=Budget(trials=12), executor=ProcessExecutor(workers=2))
    assert {t.key for t in parallel.trials} == {t.key for t in serial.trials}
    assert len(parallel.trials) == 12


def test_executor_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ProcessExecutor(workers=0)
