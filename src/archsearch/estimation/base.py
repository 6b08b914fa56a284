"""The performance-estimation interface: how good a candidate is, and at what cost."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from archsearch.errors import TrialFailed as TrialFailed  # re-exported
from archsearch.errors import TrialTimeout as TrialTimeout  # re-exported
from archsearch.space.genotype import Genotype


@dataclass(frozen=True)
class TrialContext:
    """What an estimator may know about the trial it evaluates.

    ``seed`` is derived from the study's seed and the trial number, so rerunning a trial
    (after a crash) reproduces it.  ``timeout`` is seconds for this evaluation, or None.
    ``attempt`` counts retries after a lost worker (0 for the first try).

    Multi-fidelity (``archsearch.fidelity``): ``epochs`` asks an estimator that trains in
    epochs (``max_epochs`` is not None) to stop after that epoch of its full schedule
    (None: train to the end); ``checkpoint`` names the file it continues from when the file
    exists, and saves its state to when it stops short of ``max_epochs``, so a trial
    promoted to more epochs resumes where it stopped.  ``data_fraction`` asks an
    estimator with ``data_fidelity`` to train its whole schedule on that fraction of its
    training rows (the rows of a smaller fraction among those of a larger one), from
    scratch: a job at another fraction is a new run, never a continuation.
    """

    number: int
    seed: int
    timeout: float | None = None
    attempt: int = 0
    epochs: int | None = None
    checkpoint: str | None = None
    data_fraction: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """What an estimator that records a learning curve returns: its ``metrics`` (as a plain
    mapping would be) and ``curve``, one entry per epoch trained so far, from the first,
    each ``{"epoch": e, metric: value, ...}`` (the validation metrics after that epoch)."""

    metrics: Mapping[str, float]
    curve: tuple[Mapping[str, float], ...] = ()


class Estimator(ABC):
    """Turns a genotype into metrics.  ``objective`` names the metric strategies see;
    everything else (test accuracy, cost) is recorded but never used for selection."""

    objective: str = "val_accuracy"
    #: "maximize" or "minimize"; strategies always see a value where larger is better.
    direction: str = "maximize"

    #: Whether ``evaluate`` honours ``TrialContext.data_fraction`` (a multi-fidelity
    #: driver with ``resource="data"`` needs it).
    data_fidelity: bool = False

    @property
    def max_epochs(self) -> int | None:
        """The epochs of a full evaluation, for an estimator that trains in epochs and can
        stop and continue (``TrialContext.epochs`` / ``checkpoint``); None otherwise, and
        then no multi-fidelity scheduler can drive it."""
        return None

    @abstractmethod
    def evaluate(
        self, genotype: Genotype, context: TrialContext
    ) -> Mapping[str, float] | Evaluation:
        """Metrics of one architecture; must include ``objective``.  Raise ``TrialFailed``
        (or anything) on failure.  An ``Evaluation`` adds the learning curve."""
