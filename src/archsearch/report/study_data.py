"""A study's record, read for the report: trials, one-shot epochs, the stored config and
the space rebuilt from it (the space formats and draws the architectures).

The file is probed read-only before ``SQLiteStorage`` opens it, since opening creates the
study tables in any SQLite file: a report must not write into a database that is not ours.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, StorageError
from archsearch.report.errors import ReportError
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch, StudyInfo, open_record
from archsearch.trial import FrozenTrial


@dataclass(frozen=True)
class StudyRecord:
    """Everything the report shows of one study.  ``config`` is the config the study was
    run from (``Config.to_dict()``), None for a study made in Python; ``space_source`` says
    where ``space`` came from, for the header."""

    path: Path
    info: StudyInfo
    trials: list[FrozenTrial]
    epochs: list[OneShotEpoch]
    config: Mapping[str, Any] | None
    space: SearchSpace | None
    space_source: str


def load_study_record(path: Path, study: str | None) -> StudyRecord:
    try:  # the record is checked without writing into it, as `show` and `export` do
        storage, name, tables = open_record(path, study)
    except StorageError as err:
        raise ReportError(str(err)) from None
    try:
        info = storage.load_study(name)
        trials = storage.trials(name)
        epochs = storage.oneshot_epochs(name) if "oneshot_epochs" in tables else []
    except sqlite3.Error as err:  # e.g. a damaged file, or a migration on a read-only one
        raise ReportError(f"cannot read {path}: {err}") from None
    finally:
        storage.close()
    full = info.config.get("full")
    config = full if isinstance(full, Mapping) else None
    genotypes = [t.genotype for t in trials] + [e.genotype for e in epochs]
    space, source = _space(config, genotypes)
    return StudyRecord(path, info, trials, epochs, config, space, source)


def _space(config: Mapping[str, Any] | None,
           genotypes: Iterable[Genotype]) -> tuple[SearchSpace | None, str]:
    """The study's space from its config; for a study made in Python (no config), a cell
    space whose genotypes are unmistakable (NB201, DARTS) when every genotype fits it."""
    if config is not None:
        from archsearch.build import component
        from archsearch.config import parse_config

        try:
            return component("space", parse_config(config).space), "from the stored config"
        except ArchsearchError as err:  # e.g. a space from a package not installed here
            return None, f"not rebuilt here: {err}"
    from archsearch.space import DartsSpace, NB201Space

    distinct = list({g.to_json(): g for g in genotypes}.values())
    if distinct:
        for candidate in (NB201Space(), DartsSpace()):
            if all(_fits(candidate, g) for g in distinct):
                return candidate, "inferred from the genotypes: the study records no config"
    return None, "not recorded: a study made in Python records no config"


def _fits(space: SearchSpace, genotype: Genotype) -> bool:
    try:
        space.validate(genotype)
    except (ArchsearchError, ValueError, KeyError):
        return False
    return True
