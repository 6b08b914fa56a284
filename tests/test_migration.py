"""A record written by archsearch 0.1 (before objectives and constraints) opens, shows and
resumes: it is migrated in place to the current layout."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from archsearch.cli import main
from archsearch.storage import SCHEMA_VERSION, SQLiteStorage

#: Made by archsearch 0.1 (commit 9bd8553): `archsearch run old.yaml --storage old.db` with
#: the config below; three trials of real training on digits.
OLD_DB = Path(__file__).parent / "data" / "archsearch-0.1-study.db"
OLD_CONFIG = {
    "study": {"name": "old", "seed": 2, "trials": 3},
    "data": "digits",
    "space": {"name": "chain", "max_depth": 2, "widths": [8]},
    "strategy": {"name": "random"},
    "estimator": {"name": "training", "epochs": 1, "batch_size": 64, "latency_repeats": 2},
}


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "old.db"
    shutil.copy(OLD_DB, copy)
    return copy


def _rows(db: Path) -> list[tuple[int, str, float | None]]:
    with sqlite3.connect(db) as con:
        return list(con.execute("SELECT number, state, value FROM trials ORDER BY number"))


def test_an_old_record_is_migrated_and_keeps_its_trials(old_db: Path) -> None:
    before = _rows(old_db)
    with sqlite3.connect(old_db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    storage = SQLiteStorage(old_db)
    info = storage.load_study("old")
    assert [o.metric for o in info.objectives] == ["val_accuracy"] and info.constraints == ()
    trials = storage.trials("old")
    assert [(t.number, t.state.value, t.value) for t in trials] == before
    assert all(t.values == (t.value,) and t.feasible and t.score == t.value for t in trials)
    storage.close()
    with sqlite3.connect(old_db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    SQLiteStorage(old_db).close()  # opening a migrated record again changes nothing
    assert _rows(old_db) == before


def test_an_old_record_shows_and_resumes(old_db: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = _rows(old_db)
    assert main(["show", str(old_db)]) == 0
    assert "best trial" in capsys.readouterr().out
    config = tmp_path / "old.yaml"
    config.write_text(yaml.safe_dump(OLD_CONFIG))
    assert main(["run", str(config), "--storage", str(old_db), "--trials", "4"]) == 0
    after = _rows(old_db)
    assert after[:3] == before and len(after) == 4 and after[3][1] == "complete"
    capsys.readouterr()
    assert main(["show", str(old_db), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["trials"]) == 4


def test_a_record_from_a_newer_archsearch_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    SQLiteStorage(db).close()
    with sqlite3.connect(db) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    from archsearch.errors import StorageError

    with pytest.raises(StorageError, match="newer archsearch"):
        SQLiteStorage(db)


#: Made by archsearch 0.2 (commit ec82ef4, record layout 2, before learning curves): two
#: studies of 12 trials each through ``create_study`` with a function estimator, one
#: single-objective ("single", random search, seed 3) and one with two objectives and a
#: constraint ("pareto", NSGA-II, seed 4), on ``ChainSpace("vector", max_depth=3)``.
LAYOUT_2_DB = Path(__file__).parent / "data" / "archsearch-0.2-study.db"


def _evaluate(genotype):  # type: ignore[no-untyped-def]
    return {"val_accuracy": 0.1 * genotype["depth"], "params": 10.0 * genotype["depth"]}


def test_a_layout_2_record_gets_learning_curves_and_resumes(tmp_path: Path) -> None:
    import archsearch
    from archsearch.space import ChainSpace

    db = tmp_path / "v2.db"
    shutil.copy(LAYOUT_2_DB, db)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        before = list(con.execute(
            "SELECT study, number, state, genotype, objective_values FROM trials "
            "ORDER BY study, number"))
    space = ChainSpace("vector", max_depth=3)
    single = archsearch.create_study(space, strategy="random", storage=db, seed=3,
                                     name="single")
    assert [t.curve for t in single.trials] == [()] * 12
    assert single.best_trial is not None
    single.optimize(_evaluate, trials=14)
    assert len(single.trials) == 14
    single.close()
    pareto = archsearch.create_study(
        space, strategy="nsga2", storage=db, seed=4, name="pareto",
        objectives=[{"metric": "val_accuracy", "direction": "maximize"},
                    {"metric": "params", "direction": "minimize"}],
        constraints={"params": {"max": 25}})
    assert pareto.pareto_front()
    pareto.close()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after = list(con.execute(
            "SELECT study, number, state, genotype, objective_values FROM trials "
            "WHERE NOT (study = 'single' AND number >= 12) ORDER BY study, number"))
    assert after == before
