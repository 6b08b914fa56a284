"""The study loop and its SQLite record."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from archsearch.estimation.base import Estimator, TrialContext, TrialFailed
from archsearch.space import ChainSpace, Genotype
from archsearch.storage import InMemoryStorage, SQLiteStorage, StorageError
from archsearch.strategy import GridSearch, RandomSearch
from archsearch.study import Budget, StopReason, Study
from archsearch.trial import TrialState
from conformance import EncodingObjective


def _space() -> ChainSpace:
    return ChainSpace("vector", max_depth=2, widths=(8, 16), norms=("none",))


class Faulty(Estimator):
    """Fails in the ways real training fails, on chosen trial numbers."""

    def __init__(self, space: ChainSpace, faults: Mapping[int, str]) -> None:
        self.inner = EncodingObjective(space)
        self.faults = faults

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        fault = self.faults.get(context.number)
        if fault == "raise":
            raise RuntimeError("out of memory (simulated)")
        if fault == "nan":
            return {"val_accuracy": math.nan}
        if fault == "failed":
            raise TrialFailed("non-finite loss at epoch 1")
        if fault == "missing":
            return {"test_accuracy": 1.0}
        return self.inner.evaluate(genotype, context)


def test_failures_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    space = _space()
    faults = {1: "raise", 3: "nan", 4: "failed", 6: "missing"}
    study = Study(space, RandomSearch(space), Faulty(space, faults),
                  SQLiteStorage(tmp_path / "s.db"), seed=0)
    assert study.optimize(budget=Budget(trials=10)) is StopReason.BUDGET
    states = {t.number: t for t in study.trials}
    assert len(states) == 10
    for number in faults:
        assert states[number].state is TrialState.FAILED
        assert states[number].error
        assert states[number].score is None
    assert "out of memory" in str(states[1].error)
    assert "nan" in str(states[3].error)
    assert "missing" in str(states[6].error)
    assert sum(t.state is TrialState.COMPLETE for t in study.trials) == 6


def test_record_round_trips_through_sqlite(tmp_path: Path) -> None:
    space = _space()
    path = tmp_path / "s.db"
    study = Study(space, RandomSearch(space), EncodingObjective(space), SQLiteStorage(path),
                  seed=4, config={"any": [1, 2]})
    study.optimize(budget=Budget(trials=6))
    stored = SQLiteStorage(path)
    assert stored.trials("study") == study.trials
    assert stored.load_study("study").config == {"any": [1, 2]}
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_resume_reruns_interrupted_trial_and_matches_uninterrupted(tmp_path: Path) -> None:
    space = _space()
    straight = Study(space, RandomSearch(space), EncodingObjective(space), seed=9)
    straight.optimize(budget=Budget(trials=8))

    storage = SQLiteStorage(tmp_path / "s.db")
    first = Study(space, RandomSearch(space), EncodingObjective(space), storage, seed=9)
    first.optimize(budget=Budget(trials=5))
    first.ask()  # trial 5 starts, then the process "dies" before telling it
    assert storage.trials("study")[-1].state is TrialState.RUNNING

    resumed = Study(space, RandomSearch(space), EncodingObjective(space),
                    SQLiteStorage(tmp_path / "s.db"), seed=9)
    resumed.optimize(budget=Budget(trials=8))
    got = [(t.number, t.key, t.value) for t in resumed.trials]
    assert got == [(t.number, t.key, t.value) for t in straight.trials]
    assert all(t.state is TrialState.COMPLETE for t in resumed.trials)


def test_resume_with_another_seed_is_refused() -> None:
    space = _space()
    storage = InMemoryStorage()
    Study(space, RandomSearch(space), EncodingObjective(space), storage, seed=1)
    with pytest.raises(StorageError, match="seed"):
        Study(space, RandomSearch(space), EncodingObjective(space), storage, seed=2)


def test_repeats_are_answered_from_the_record_and_not_counted() -> None:
    space = _space()

    class Stubborn(RandomSearch):
        """Proposes the same architecture again every other trial."""

        def ask(self, trials, rng):  # type: ignore[no-untyped-def]
            if trials and len(trials) % 2 == 1:
                return trials[0].genotype
            return super().ask(trials, rng)

    calls: list[int] = []

    class Counting(EncodingObjective):
        def evaluate(self, genotype, context):  # type: ignore[no-untyped-def]
            calls.append(context.number)
            return super().evaluate(genotype, context)

    study = Study(space, Stubborn(space), Counting(space), seed=0)
    study.optimize(budget=Budget(trials=5))
    assert study.n_evaluated == 5 == len(calls)
    repeats = [t for t in study.trials if t.cached]
    assert repeats and all(t.metrics == study.trials[0].metrics for t in repeats)


def test_stubborn_strategy_stops_after_max_repeats() -> None:
    space = _space()

    class Same(RandomSearch):
        def ask(self, trials, rng):  # type: ignore[no-untyped-def]
            return trials[0].genotype if trials else super().ask(trials, rng)

    study = Study(space, Same(space), EncodingObjective(space), seed=0, max_repeats=5)
    assert study.optimize(budget=Budget(trials=10)) is StopReason.REPEATS


def test_time_budget_stops_the_study() -> None:
    space = ChainSpace("vector", max_depth=4)
    study = Study(space, RandomSearch(space), EncodingObjective(space), seed=0)
    assert study.optimize(budget=Budget(seconds=0.2)) is StopReason.TIMEOUT


def test_grid_refuses_a_space_too_large_naming_its_size() -> None:
    space = ChainSpace("image", max_depth=12)
    study = Study(space, GridSearch(space), EncodingObjective(space), seed=0)
    with pytest.raises(ValueError, match=r"architectures, more than"):
        study.optimize(budget=Budget(trials=1))


def test_budget_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Budget(trials=-1)
    with pytest.raises(ValueError):
        Budget(seconds=0)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("hello, this is not a database" * 100)
    with pytest.raises(StorageError, match="not an archsearch SQLite record"):
        SQLiteStorage(bad)


def test_a_foreign_sqlite_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "shop.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        db.execute("INSERT INTO orders (item) VALUES ('tea')")
    db.close()
    with pytest.raises(StorageError, match="database of something else .*orders.*new or empty"):
        SQLiteStorage(other)
    with sqlite3.connect(other) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = db.execute("PRAGMA user_version").fetchone()[0]
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    assert tables == {"orders"} and version == 0 and journal == "delete"
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # an empty SQLite file becomes a record
    SQLiteStorage(empty).close()
