"""Every error archsearch raises on purpose is an ``ArchsearchError``.

A caller (and the command line) can so tell "you asked for something wrong, or the
search cannot go on" from a bug in the code: ``archsearch`` prints one line for an
``ArchsearchError`` and a traceback for anything else (Optuna's ``OptunaError`` is the
model).  Each class also keeps the built-in base it had, so ``except ValueError`` around
a bad setting still works.
"""

from __future__ import annotations

import pickle


class ArchsearchError(Exception):
    """The base of every error archsearch raises on purpose."""


class ConfigError(ArchsearchError, ValueError):
    """A setting that is unknown, of the wrong type or out of range, stated in one line."""


class StorageError(ArchsearchError, RuntimeError):
    """The record cannot be opened or does not match the study asked for."""


class StudyLocked(StorageError):
    """Another live process is running the study."""


class RepeatedFailure(ArchsearchError, RuntimeError):
    """The first trials of a run all failed for the same reason: the search stopped
    rather than spend its budget on it."""


class DataError(ArchsearchError, ValueError):
    """A dataset that cannot be read or does not hold what a study needs."""


class InvalidGenotype(ArchsearchError, ValueError):
    """A genotype that does not belong to the space it was given to."""


class SpaceTooLarge(ArchsearchError, ValueError):
    """The space has too many architectures to enumerate."""


class TrialFailed(ArchsearchError, RuntimeError):
    """An evaluation that cannot give a number (NaN loss, timeout, ...); the study records
    the message as the trial's error and goes on."""


class TrialTimeout(TrialFailed):
    """The evaluation passed its time limit."""


class BenchmarkNotInstalled(ArchsearchError, ImportError):
    """A benchmark table's package is not installed (``pip install "archsearch[benchmarks]"``)."""


class UnsafePickleError(ArchsearchError, pickle.UnpicklingError):
    """A table file asked to load a class outside the allowed list."""


class MissingExtra(ArchsearchError, ImportError):
    """A component needs an optional package that is not installed."""
