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
    """

    number: int
    seed: int
    timeout: float | None = None
    attempt: int = 0


class Estimator(ABC):
    """Turns a genotype into metrics.  ``objective`` names the metric strategies see;
    everything else (test accuracy, cost) is recorded but never used for selection."""

    objective: str = "val_accuracy"
    #: "maximize" or "minimize"; strategies always see a value where larger is better.
    direction: str = "maximize"

    @abstractmethod
    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        """Metrics of one architecture; must include ``objective``.  Raise ``TrialFailed``
        (or anything) on failure."""
