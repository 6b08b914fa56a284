"""The immutable record of one trial, as strategies and users see it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from archsearch.space.genotype import Genotype


class TrialState(str, Enum):
    RUNNING = "running"  # asked, not yet told; after a crash such a trial is rerun
    COMPLETE = "complete"
    FAILED = "failed"
    #: Stopped early by a multi-fidelity scheduler (``archsearch.fidelity``): not failed,
    #: judged not worth more epochs; its metrics are its last epoch's, with its curve.
    PRUNED = "pruned"


@dataclass(frozen=True)
class FrozenTrial:
    """One architecture's evaluation.

    ``values`` are the objective values (one per objective of the study) and ``scores``
    the same oriented so that larger is better (negated for a minimised objective), None
    unless complete.  ``feasible`` is False for a complete trial that breaks a constraint,
    by ``violation`` (see ``archsearch.objectives``).  ``value`` and ``score`` are the
    single objective's of a single-objective study (None in a multi-objective one); an
    infeasible trial has no ``score``, so strategies rank it below every feasible one.
    Strategies compare scores only; a pruned trial has none.
    ``curve`` is the learning curve, one entry per epoch trained, from the first:
    ``{"epoch": e, "val_accuracy": ..., ...}`` (empty for estimators that train in no epochs).
    ``cached`` marks a repeated architecture answered from an earlier trial; it never
    reached the estimator and does not count towards the budget.
    """

    number: int
    state: TrialState
    genotype: Genotype
    key: str
    value: float | None = None
    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    finish_order: int | None = None
    cached: bool = False
    values: tuple[float, ...] | None = None
    scores: tuple[float, ...] | None = None
    feasible: bool = True
    violation: float = 0.0
    curve: tuple[Mapping[str, float], ...] = ()

    @property
    def epochs_trained(self) -> int:
        """The last epoch of the curve (0 before the first one, or without a curve)."""
        return int(self.curve[-1]["epoch"]) if self.curve else 0

    @property
    def data_fraction(self) -> float | None:
        """The share of the training data the trial's last run trained on, when a driver
        with ``resource="data"`` ran it (its curve entries say so); None otherwise."""
        if not self.curve or "data_fraction" not in self.curve[-1]:
            return None
        return float(self.curve[-1]["data_fraction"])

    @property
    def last_run(self) -> tuple[Mapping[str, float], ...]:
        """The curve of the trial's last training run: the whole curve, except where a
        data-fraction driver ran each rung as a run of its own (then the last rung's)."""
        fraction = self.data_fraction
        if fraction is None:
            return self.curve
        return tuple(p for p in self.curve if p.get("data_fraction") == fraction)

    @property
    def finished(self) -> bool:
        return self.state is not TrialState.RUNNING

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def best_of(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The completed trial with the best score (the earliest, if tied), repeats aside."""
    done = [t for t in trials if t.score is not None and not t.cached]
    return max(done, key=lambda t: (t.score, -t.number)) if done else None


def pareto_front_of(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The feasible completed trials that no other feasible one dominates, by number;
    repeats aside.  With one objective: the best trial(s)."""
    from archsearch.pareto import non_dominated  # numpy and moocore, only when asked

    done = [t for t in trials if t.scores is not None and t.feasible and not t.cached]
    mask = non_dominated([t.scores for t in done])  # type: ignore[misc]
    return [t for t, keep in zip(done, mask, strict=True) if keep]
