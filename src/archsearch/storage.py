"""The durable record of a study: SQLite (one row per trial), or memory for benchmarks.

Only the study loop writes here.  Every state change is its own committed transaction
in WAL mode, so a ``kill -9`` at any moment leaves a readable database holding every
trial that finished before it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial, TrialState, oriented


class StorageError(RuntimeError):
    """The record cannot be opened or does not match the study asked for."""


@dataclass(frozen=True)
class StudyInfo:
    """What is stored with a study besides its trials."""

    name: str
    seed: int
    direction: str
    objective: str
    config: Mapping[str, Any]
    version: str


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


def _check_same(stored: StudyInfo, asked: StudyInfo) -> None:
    for field_name in ("seed", "objective", "direction"):
        old, new = getattr(stored, field_name), getattr(asked, field_name)
        if old != new:
            raise StorageError(
                f"study {stored.name!r} is stored with {field_name}={old!r}, not {new!r}; "
                "use another storage path or study name to start a new search"
            )


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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    seed INTEGER NOT NULL,
    direction TEXT NOT NULL,
    objective TEXT NOT NULL,
    config TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at REAL NOT NULL
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
    PRIMARY KEY (study, number)
);
"""


class SQLiteStorage(Storage):
    """A study record in one SQLite file (WAL mode; one row per trial)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is safe against a killed process (only a power cut can lose the
            # last commits), and keeps a commit per trial cheap.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise StorageError(f"{self.path} is not an archsearch SQLite record: {err}") from None
        self._directions: dict[str, str] = {}

    def close(self) -> None:
        self._db.close()

    def open_study(self, info: StudyInfo) -> StudyInfo:
        try:
            stored = self.load_study(info.name)
        except StorageError:
            self._db.execute(
                "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?)",
                (info.name, info.seed, info.direction, info.objective,
                 json.dumps(info.config, sort_keys=True), info.version, time.time()),
            )
            return info
        _check_same(stored, info)
        return stored

    def study_names(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM studies ORDER BY created_at")]

    def load_study(self, name: str) -> StudyInfo:
        row = self._db.execute(
            "SELECT seed, direction, objective, config, version FROM studies WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise StorageError(f"{self.path} holds no study named {name!r}")
        seed, direction, objective, config, version = row
        return StudyInfo(name, int(seed), direction, objective, json.loads(config), version)

    def write_trial(self, study: str, trial: FrozenTrial) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study, trial.number, trial.state.value, trial.genotype.to_json(), trial.key,
             trial.value, json.dumps(dict(trial.metrics), sort_keys=True), trial.error,
             trial.started_at, trial.finished_at, trial.finish_order, int(trial.cached)),
        )

    def trials(self, study: str) -> list[FrozenTrial]:
        direction = self._directions.get(study) or self.load_study(study).direction
        self._directions[study] = direction
        rows = self._db.execute(
            "SELECT number, state, genotype, key, value, metrics, error, started_at,"
            " finished_at, finish_order, cached FROM trials WHERE study = ? ORDER BY number",
            (study,),
        )
        out = []
        for number, state, genotype, key, value, metrics, error, started, finished, order, cached \
                in rows:
            trial = FrozenTrial(
                number=int(number), state=TrialState(state), genotype=Genotype.from_json(genotype),
                key=key, value=value, metrics=json.loads(metrics), error=error,
                started_at=started, finished_at=finished, finish_order=order, cached=bool(cached),
            )
            if trial.state is TrialState.COMPLETE:
                trial = replace(trial, score=oriented(value, direction))
            out.append(trial)
        return out


def open_storage(path: str | Path | None) -> Storage:
    """SQLite at ``path``, or memory when ``path`` is None or ``":memory:"``."""
    if path is None or str(path) == ":memory:":
        return InMemoryStorage()
    return SQLiteStorage(path)
