"""The durable record of a study: SQLite (one row per trial), or memory for benchmarks.

Only the study loop writes here.  Every state change is its own committed transaction
in WAL mode, so a ``kill -9`` at any moment leaves a readable database holding every
trial that finished before it.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archsearch.errors import StorageError
from archsearch.objectives import Bound, Objective, assess
from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial, TrialState


@dataclass(frozen=True)
class StudyInfo:
    """What is stored with a study besides its trials.  ``objective`` and ``direction``
    are the first objective's (the only one of a single-objective study); ``objectives``
    and ``constraints`` are what the study optimises (empty: the single objective alone,
    no constraints)."""

    name: str
    seed: int
    direction: str
    objective: str
    config: Mapping[str, Any]
    version: str
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Bound, ...] = ()

    def __post_init__(self) -> None:
        if not self.objectives:  # the single-objective form
            object.__setattr__(self, "objectives", (Objective(self.objective, self.direction),))

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1


def judged(trial: FrozenTrial, info: StudyInfo) -> FrozenTrial:
    """``trial`` with its values, scores and feasibility under the study's objectives and
    constraints (a complete trial's, from its metrics; others unchanged)."""
    if trial.state is not TrialState.COMPLETE:
        return trial
    found = assess(trial.metrics, info.objectives, info.constraints)
    if isinstance(found, str):  # a record that no longer fits (cannot happen via the loop)
        return replace(trial, values=None, scores=None, value=None, score=None, feasible=False)
    single = not info.multi_objective
    return replace(trial, values=found.values, scores=found.scores, feasible=found.feasible,
                   violation=found.violation,
                   value=found.values[0] if single else None,
                   score=found.scores[0] if single and found.feasible else None)


@dataclass(frozen=True)
class OneShotEpoch:
    """One finished epoch of a one-shot search (DARTS, GDAS), as recorded.

    ``arch_weights`` holds ``softmax(alpha)`` per cell type as nested lists (edges x ops),
    with the fixed row of every edge a perturbation-based selection has decided (one-hot
    on its op, or zeros for a dropped edge); ``genotype`` is the cell those weights
    derive; ``metrics`` the epoch's losses, accuracies and seconds.
    """

    epoch: int
    arch_weights: Mapping[str, Any]
    metrics: Mapping[str, float]
    genotype: Genotype


class Storage(ABC):
    """The few operations the loop needs (Optuna's 18 abstract methods are a warning)."""

    @abstractmethod
    def open_study(self, info: StudyInfo) -> StudyInfo:
        """Create the study, or return the stored one; a stored study must have the same
        seed and objective, since resuming it under others would mix two searches."""

    @abstractmethod
    def study_names(self) -> list[str]: ...

    @abstractmethod
    def load_study(self, name: str) -> StudyInfo: ...

    @abstractmethod
    def write_trial(self, study: str, trial: FrozenTrial) -> None:
        """Insert or replace the trial with this number."""

    @abstractmethod
    def trials(self, study: str) -> list[FrozenTrial]:
        """Every trial of the study, by number."""

    def checkpoint_dir(self, study: str) -> Path | None:
        """The folder for the study's training checkpoints (multi-fidelity schedules), or
        None when the record is not on disk (the study then uses a temporary folder)."""
        return None

    # One-shot searches record an epoch at a time, with a checkpoint of the latest one.
    # Not abstract: a storage for ask/tell studies alone need not implement them.
    def write_oneshot_epoch(self, study: str, record: OneShotEpoch,
                            state: Mapping[str, Any]) -> None:
        """Record a finished epoch and make ``state`` (tensors, numbers, containers) the
        study's checkpoint; earlier epochs' checkpoints are dropped, their records kept."""
        raise NotImplementedError(f"{type(self).__name__} keeps no one-shot record")

    def oneshot_epochs(self, study: str) -> list[OneShotEpoch]:
        """Every recorded epoch of the study's one-shot search, in order."""
        raise NotImplementedError(f"{type(self).__name__} keeps no one-shot record")

    def load_oneshot_state(self, study: str, epoch: int) -> dict[str, Any]:
        """The checkpoint written with ``epoch`` (only the latest epoch's is kept)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no one-shot record")


def _check_same(stored: StudyInfo, asked: StudyInfo) -> None:
    for field_name in ("seed", "objectives", "constraints"):
        old, new = getattr(stored, field_name), getattr(asked, field_name)
        if old != new:
            raise StorageError(
                f"study {stored.name!r} is stored with {field_name}={_text(old)}, not "
                f"{_text(new)}; "
                "use another storage path or study name to start a new search"
            )


def _text(value: Any) -> str:
    if isinstance(value, tuple) and all(hasattr(v, "to_dict") for v in value):
        return repr([v.to_dict() for v in value])
    return repr(value)


class InMemoryStorage(Storage):
    """For benchmarks and tests: the same contract, nothing on disk."""

    def __init__(self) -> None:
        self._studies: dict[str, StudyInfo] = {}
        self._trials: dict[str, dict[int, FrozenTrial]] = {}

    def open_study(self, info: StudyInfo) -> StudyInfo:
        if info.name in self._studies:
            _check_same(self._studies[info.name], info)
            return self._studies[info.name]
        self._studies[info.name] = info
        self._trials[info.name] = {}
        return info

    def study_names(self) -> list[str]:
        return sorted(self._studies)

    def load_study(self, name: str) -> StudyInfo:
        if name not in self._studies:
            raise StorageError(f"no study named {name!r}")
        return self._studies[name]

    def write_trial(self, study: str, trial: FrozenTrial) -> None:
        self._trials[study][trial.number] = trial

    def trials(self, study: str) -> list[FrozenTrial]:
        return [self._trials[study][n] for n in sorted(self._trials[study])]

    def _oneshot(self) -> dict[str, Any]:
        # Created on first use: a study without a one-shot search never needs it.
        return self.__dict__.setdefault("_oneshot_record", {"epochs": {}, "state": {}})

    def write_oneshot_epoch(self, study: str, record: OneShotEpoch,
                            state: Mapping[str, Any]) -> None:
        self._oneshot()["epochs"].setdefault(study, {})[record.epoch] = record
        self._oneshot()["state"][study] = (record.epoch, copy.deepcopy(dict(state)))

    def oneshot_epochs(self, study: str) -> list[OneShotEpoch]:
        epochs = self._oneshot()["epochs"].get(study, {})
        return [epochs[e] for e in sorted(epochs)]

    def load_oneshot_state(self, study: str, epoch: int) -> dict[str, Any]:
        saved = self._oneshot()["state"].get(study)
        if saved is None or saved[0] != epoch:
            raise StorageError(f"no one-shot checkpoint of study {study!r} at epoch {epoch}")
        return copy.deepcopy(saved[1])


#: The record's layout.  1: archsearch 0.1 (one objective; no ``PRAGMA user_version``
#: set, so it reads 0); 2: objectives, constraints, and per trial its objective values
#: and feasibility; 3: per trial its learning curve (and the state ``pruned``).  An
#: older record is migrated in place when opened.
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    seed INTEGER NOT NULL,
    direction TEXT NOT NULL,
    objective TEXT NOT NULL,
    config TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at REAL NOT NULL,
    objectives TEXT,
    constraints TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    study TEXT NOT NULL REFERENCES studies(name),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    genotype TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL,
    metrics TEXT NOT NULL,
    error TEXT,
    started_at REAL,
    finished_at REAL,
    finish_order INTEGER,
    cached INTEGER NOT NULL DEFAULT 0,
    objective_values TEXT,
    feasible INTEGER,
    violation REAL,
    curve TEXT,
    PRIMARY KEY (study, number)
);
"""

#: From layout 1 to 2: the new columns; a study's objectives are its one objective, a
#: complete trial's values its one value, and every trial is feasible.
_MIGRATE_1_TO_2 = """
ALTER TABLE studies ADD COLUMN objectives TEXT;
ALTER TABLE studies ADD COLUMN constraints TEXT;
ALTER TABLE trials ADD COLUMN objective_values TEXT;
ALTER TABLE trials ADD COLUMN feasible INTEGER;
ALTER TABLE trials ADD COLUMN violation REAL;
UPDATE studies SET objectives = json_array(json_object('metric', objective,
                                                       'direction', direction)),
                   constraints = '[]';
UPDATE trials SET objective_values = json_array(value), feasible = 1, violation = 0
    WHERE state = 'complete';
"""

#: From layout 2 to 3: a learning curve per trial (none for the trials already recorded).
_MIGRATE_2_TO_3 = """
ALTER TABLE trials ADD COLUMN curve TEXT;
"""


_ONESHOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS oneshot_epochs (
    study TEXT NOT NULL REFERENCES studies(name),
    epoch INTEGER NOT NULL,
    arch_weights TEXT NOT NULL,
    metrics TEXT NOT NULL,
    genotype TEXT NOT NULL,
    checkpoint TEXT,
    PRIMARY KEY (study, epoch)
);
"""


def _oneshot_dir(db: Path, study: str) -> Path:
    """Checkpoints live beside the database: ``<db>.oneshot/<study>/epoch-NNNNN.pt``."""
    return db.with_name(db.name + ".oneshot") / urllib.parse.quote(study, safe="")


class SQLiteStorage(Storage):
    """A study record in one SQLite file (WAL mode; one row per trial)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        except sqlite3.Error as err:
            raise StorageError(f"cannot open {self.path} as a SQLite record: {err}") from None
        try:
            self._refuse_foreign()  # before the first write: WAL mode is kept in the file
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is safe against a killed process (only a power cut can lose the
            # last commits), and keeps a commit per trial cheap.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._upgrade()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StorageError(f"{self.path} is not an archsearch SQLite record: {err}") from None
        except BaseException:
            self._db.close()
            raise
        self._infos: dict[str, StudyInfo] = {}

    def _refuse_foreign(self) -> None:
        """A SQLite database with tables but none of archsearch's is someone else's:
        refused, unchanged (an empty one becomes a record)."""
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "studies" not in tables:
            raise StorageError(f"{self.path} is a SQLite database of something else (tables "
                               f"{', '.join(sorted(tables)[:5])}), not an archsearch record; "
                               "give a new or empty file")

    def _upgrade(self) -> None:
        """Create the tables, or bring an older record's to ``SCHEMA_VERSION``: in one
        transaction, so a kill leaves the old layout or the new one, never half of it."""
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path} was written by a newer archsearch (record layout "
                               f"{version}, this one reads up to {SCHEMA_VERSION}): upgrade")
        if version == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have upgraded it.
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version == SCHEMA_VERSION:
                self._db.execute("COMMIT")
                return
            old = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            ).fetchone() is not None
            steps = [_SCHEMA]  # a new record
            if old:  # each migration from the record's layout on
                steps = ([_MIGRATE_1_TO_2] if version < 2 else []) + [_MIGRATE_2_TO_3]
            for script in steps:
                for statement in script.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def checkpoint_dir(self, study: str) -> Path | None:
        return self.path.with_name(self.path.name + ".checkpoints") / urllib.parse.quote(
            study, safe="")

    def open_study(self, info: StudyInfo) -> StudyInfo:
        try:
            stored = self.load_study(info.name)
        except StorageError:
            self._db.execute(
                "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (info.name, info.seed, info.direction, info.objective,
                 json.dumps(info.config, sort_keys=True), info.version, time.time(),
                 json.dumps([o.to_dict() for o in info.objectives]),
                 json.dumps([{"metric": b.metric, **b.to_dict()} for b in info.constraints])),
            )
            return info
        _check_same(stored, info)
        return stored

    def study_names(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM studies ORDER BY created_at")]

    def load_study(self, name: str) -> StudyInfo:
        row = self._db.execute(
            "SELECT seed, direction, objective, config, version, objectives, constraints "
            "FROM studies WHERE name = ?", (name,),
        ).fetchone()
        if row is None:
            raise StorageError(f"{self.path} holds no study named {name!r}")
        seed, direction, objective, config, version, objectives, constraints = row
        return StudyInfo(
            name, int(seed), direction, objective, json.loads(config), version,
            tuple(Objective(**o) for o in json.loads(objectives or "[]")),
            tuple(Bound(**b) for b in json.loads(constraints or "[]")))

    def write_trial(self, study: str, trial: FrozenTrial) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study, trial.number, trial.state.value, trial.genotype.to_json(), trial.key,
             trial.value, json.dumps(dict(trial.metrics), sort_keys=True), trial.error,
             trial.started_at, trial.finished_at, trial.finish_order, int(trial.cached),
             None if trial.values is None else json.dumps(list(trial.values)),
             None if trial.values is None else int(trial.feasible),
             None if trial.values is None else trial.violation,
             json.dumps([dict(point) for point in trial.curve]) if trial.curve else None),
        )

    def trials(self, study: str) -> list[FrozenTrial]:
        info = self._infos.get(study) or self.load_study(study)
        self._infos[study] = info
        rows = self._db.execute(
            "SELECT number, state, genotype, key, value, metrics, error, started_at,"
            " finished_at, finish_order, cached, curve FROM trials WHERE study = ?"
            " ORDER BY number",
            (study,),
        )
        out = []
        for number, state, genotype, key, value, metrics, error, started, finished, order, cached, \
                curve in rows:
            trial = FrozenTrial(
                number=int(number), state=TrialState(state), genotype=Genotype.from_json(genotype),
                key=key, value=value, metrics=json.loads(metrics), error=error,
                started_at=started, finished_at=finished, finish_order=order, cached=bool(cached),
                curve=tuple(json.loads(curve)) if curve else (),
            )
            out.append(judged(trial, info))
        return out

    def write_oneshot_epoch(self, study: str, record: OneShotEpoch,
                            state: Mapping[str, Any]) -> None:
        import torch  # only one-shot searches pay for it

        folder = _oneshot_dir(self.path, study)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{record.epoch:05d}.pt"
        # The file first, renamed into place whole; then the row that names it; only then
        # are older checkpoints deleted.  A kill at any point leaves the last row's file.
        partial = folder / (name + ".partial")
        torch.save(dict(state), partial)
        os.replace(partial, folder / name)
        self._db.executescript(_ONESHOT_SCHEMA)
        self._db.execute(
            "INSERT OR REPLACE INTO oneshot_epochs VALUES (?, ?, ?, ?, ?, ?)",
            (study, record.epoch, json.dumps(record.arch_weights),
             json.dumps(dict(record.metrics)), record.genotype.to_json(), name),
        )
        for old in folder.glob("epoch-*.pt"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def oneshot_epochs(self, study: str) -> list[OneShotEpoch]:
        self._db.executescript(_ONESHOT_SCHEMA)
        rows = self._db.execute(
            "SELECT epoch, arch_weights, metrics, genotype FROM oneshot_epochs WHERE study = ? "
            "ORDER BY epoch", (study,))
        return [OneShotEpoch(int(epoch), json.loads(arch), json.loads(metrics),
                             Genotype.from_json(genotype))
                for epoch, arch, metrics, genotype in rows]

    def load_oneshot_state(self, study: str, epoch: int) -> dict[str, Any]:
        import torch

        self._db.executescript(_ONESHOT_SCHEMA)
        row = self._db.execute(
            "SELECT checkpoint FROM oneshot_epochs WHERE study = ? AND epoch = ?",
            (study, epoch)).fetchone()
        path = None if row is None or row[0] is None else _oneshot_dir(self.path, study) / row[0]
        if path is None or not path.is_file():
            raise StorageError(f"no one-shot checkpoint of study {study!r} at epoch {epoch} "
                               "(only the latest epoch's is kept)")
        # weights_only: tensors and plain containers, never arbitrary pickled objects.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise StorageError(f"{path} is not a one-shot checkpoint")
        return state


def open_storage(path: str | Path | None) -> Storage:
    """SQLite at ``path``, or memory when ``path`` is None or ``":memory:"``."""
    if path is None or str(path) == ":memory:":
        return InMemoryStorage()
    return SQLiteStorage(path)


def record_tables(path: Path) -> set[str]:
    """The tables of the archsearch record at ``path``, read without writing: a one-line
    ``StorageError`` where ``path`` is missing, empty, not SQLite, or SQLite without
    archsearch's tables.  Readers (``show``, ``export``, ``report``) call it before
    ``SQLiteStorage``, which would make a record of an empty file."""
    if not path.is_file():
        raise StorageError(f"{path} does not exist")
    with path.open("rb") as file:
        head = file.read(16)
    if not head:
        raise StorageError(f"{path} is an empty file, not a study database")
    if head != b"SQLite format 3\x00":
        raise StorageError(f"{path} is not a study database (not a SQLite database)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.Error as err:
        raise StorageError(f"{path} cannot be read as a study database: {err}") from None
    if not {"studies", "trials"} <= tables:
        raise StorageError(f"{path} is not an archsearch study database: a SQLite database "
                           "without archsearch's tables")
    return tables


def open_record(path: Path, study: str | None) -> tuple[SQLiteStorage, str, set[str]]:
    """The existing record at ``path`` (checked by ``record_tables`` first), the name of
    its study ``study`` (or of its only study) and its tables; a one-line ``StorageError``
    otherwise."""
    tables = record_tables(path)
    storage = SQLiteStorage(path)
    names = storage.study_names()
    if not names:
        raise StorageError(f"{path} holds no study")
    if study is None:
        if len(names) != 1:
            raise StorageError(f"{path} holds {len(names)} studies ({', '.join(names)}); "
                               "choose one with --study")
        study = names[0]
    elif study not in names:
        raise StorageError(f"{path} holds no study named {study!r}; it has {', '.join(names)}")
    return storage, study, tables
