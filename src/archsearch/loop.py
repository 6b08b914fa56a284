"""How a search proceeds: the driver protocol, and the ask/tell driver.

``Study`` keeps the record and offers ``ask`` / ``tell`` / ``evaluate``; a *driver* decides
how a search uses them.  ``Study.optimize`` runs the driver its strategy names
(``Strategy.driver()``): the ask/tell loop below for every strategy that proposes one
architecture at a time, ``archsearch.oneshot.driver.OneShotDriver`` for DARTS and GDAS,
which train a supernet first, ``archsearch.fidelity.drivers.HyperbandDriver`` for
successive halving and Hyperband.  A new way to search is a new driver: a class with
``run(study, settings) -> StopReason``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from archsearch.errors import ConfigError, RepeatedFailure
from archsearch.execution.base import Executor, Outcome, SerialExecutor
from archsearch.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from archsearch.fidelity.pruners import Pruner
    from archsearch.study import Study

Callback = Callable[["Study", FrozenTrial], None]


class StopReason(str, Enum):
    BUDGET = "trial budget reached"
    TIMEOUT = "time budget reached"
    EXHAUSTED = "the strategy has nothing left to propose"
    REPEATS = "the strategy kept proposing architectures already evaluated"


@dataclass(frozen=True)
class Budget:
    """When to stop: ``trials`` evaluated in the whole study (a resumed study counts what it
    already did), ``seconds`` of wall time in this run.  None means no limit.

    Repeats of an evaluated architecture are answered from the record and do not count,
    unless ``count_repeats`` (to compare with tools that spend a query on each repeat).
    """

    trials: int | None = None
    seconds: float | None = None
    count_repeats: bool = False

    def __post_init__(self) -> None:
        if self.trials is not None and self.trials < 0:
            raise ConfigError(f"the trial budget must be >= 0, got {self.trials}")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"the time budget must be > 0 seconds, got {self.seconds}")


@dataclass(frozen=True)
class RunSettings:
    """What one ``Study.optimize`` call asks of a driver."""

    budget: Budget = field(default_factory=Budget)
    callbacks: Sequence[Callback] = ()
    executor: Executor | None = None
    max_retries: int = 2
    #: Stop (``RepeatedFailure``) when this many trials in a row, from the start of the
    #: run, fail for the same reason; 0 never stops.
    stop_after_failures: int = 5
    log: Callable[[str], None] = field(default=lambda line: None)


class Driver(Protocol):
    """Runs a search on a study until its budget is spent or it has nothing left."""

    def run(self, study: Study, settings: RunSettings) -> StopReason: ...


def failure_reason(error: str) -> str:
    """An error's first line with its numbers masked: two trials that failed "at epoch 3"
    and "at epoch 5" failed for the same reason."""
    first = error.strip().splitlines()[0] if error.strip() else error
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", first)


#: What ``archsearch.objectives.assess`` says of a metric the estimator did not report.
MISSING_METRIC = "is missing from the estimator's metrics"


class FailureWatch:
    """Watches a run's first trials: once ``limit`` of them in a row have failed for the
    same reason, and none has completed, the search stops rather than spend its budget.
    A trial whose estimator did not report an objective (or constrained) metric stops it
    at once, whatever the limit: that is the study's configuration, not the architecture."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reasons: list[str] = []
        self.first_error = ""
        self.done = limit <= 0  # a completed trial ends the watch

    def see(self, trial: FrozenTrial) -> None:
        if self.done or trial.cached:
            return
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.done = True
            return
        error = trial.error or "unknown error"
        if MISSING_METRIC in error:  # a study asking for a metric its estimator lacks
            raise ConfigError(f"trial {trial.number}: {error}; name a metric the estimator "
                              "reports in the study's objectives and constraints")
        if self.reasons and failure_reason(error) != self.reasons[0]:
            self.done = True  # failures differ: some architectures fail, the estimator works
            return
        self.reasons.append(failure_reason(error))
        self.first_error = self.first_error or error
        if len(self.reasons) >= self.limit:
            raise RepeatedFailure(
                f"the first {self.limit} trials of this run all failed the same way "
                f"({self.first_error.strip().splitlines()[0]}); stopped rather than spend the "
                "budget on it (fix the cause, or raise study.stop_after_failures; 0 never "
                "stops)")


def epochs_reached(outcome: Outcome, max_epochs: int) -> int:
    """The last epoch a job trained (its curve's), or ``max_epochs`` for a job without one."""
    return int(outcome.curve[-1]["epoch"]) if outcome.curve else max_epochs


class AskTellDriver:
    """Keep ``executor.capacity`` trials in flight until the budget is spent or the
    strategy has nothing left; every state change is recorded as it happens.

    A trial whose worker died is retried up to ``max_retries`` times, then failed.  A
    proposal whose architecture is still being evaluated waits for that result.

    With a ``pruner`` (``archsearch.fidelity.pruners``: median stopping, ASHA) a trial
    trains in jobs that end at the pruner's epochs; after each, its curve is recorded and
    the pruner decides whether it continues (from its checkpoint) or is pruned.  Once the
    time budget is spent, a trial between two jobs is left running for the next run.
    """

    def __init__(self, pruner: Pruner | None = None) -> None:
        self.pruner = pruner

    def run(self, study: Study, settings: RunSettings) -> StopReason:
        budget, callbacks = settings.budget, list(settings.callbacks)
        executor = settings.executor if settings.executor is not None else SerialExecutor()
        estimator = study.require_estimator()
        max_epochs = estimator.max_epochs or 0
        steps = self.pruner.steps(max_epochs) if self.pruner is not None else []
        maximize = study.direction == "maximize"
        start = time.monotonic()
        in_flight: dict[int, FrozenTrial] = {}
        attempts: dict[int, int] = {}
        waiting: list[FrozenTrial] = []  # repeats of an architecture still in flight
        repeats = 0
        stop: StopReason | None = None
        watch = FailureWatch(settings.stop_after_failures)

        def finish(done: FrozenTrial) -> None:
            nonlocal repeats
            repeats = repeats + 1 if done.cached else 0
            for callback in callbacks:
                callback(study, done)
            watch.see(done)

        def out_of_time() -> bool:
            return budget.seconds is not None and time.monotonic() - start >= budget.seconds

        def submit(trial: FrozenTrial, attempt: int = 0) -> None:
            epochs = None
            if self.pruner is not None:
                epochs = next((e for e in steps if e > trial.epochs_trained), max_epochs)
            executor.submit(trial.number, trial.genotype, study.context(trial, attempt, epochs))
            in_flight[trial.number] = trial

        def advance(trial: FrozenTrial) -> None:
            """Start a trial's next job; one at a pruner's epoch is judged first."""
            if self.pruner is not None and trial.epochs_trained in steps:
                if self.pruner.prune(trial, study.trials, study.objective, maximize):
                    finish(study.prune(trial))
                    return
                if out_of_time():
                    study.pause(trial)
                    return
            submit(trial)

        def release_twins() -> None:
            """Answer the waiting repeats whose twin is no longer in flight: from its
            record, or, when it was left running, leave them running too."""
            for other in [t for t in waiting if all(f.key != t.key for f in in_flight.values())]:
                waiting.remove(other)
                done = study.answer_from_record(other)
                if done is None:
                    study.pause(other)
                else:
                    finish(done)

        executor.start(estimator)
        try:
            while True:
                while stop is None and len(in_flight) < executor.capacity:
                    used = study.n_evaluated + (study.n_cached if budget.count_repeats else 0)
                    if budget.trials is not None and used + len(in_flight) >= budget.trials:
                        stop = StopReason.BUDGET
                    elif out_of_time():
                        stop = StopReason.TIMEOUT
                    elif repeats >= study.max_repeats:
                        stop = StopReason.REPEATS
                    if stop is not None:
                        break
                    trial = study.ask()
                    if trial is None:
                        stop = StopReason.EXHAUSTED
                        break
                    done = study.answer_from_record(trial)
                    if done is not None:
                        finish(done)
                    elif any(t.key == trial.key for t in in_flight.values()):
                        waiting.append(trial)  # told when the running twin finishes
                        if len(waiting) >= executor.capacity:
                            break  # a strategy stuck on pending work: let results arrive
                    else:
                        advance(trial)
                if not in_flight:  # waiting trials always have a twin in flight
                    return stop if stop is not None else StopReason.EXHAUSTED
                for outcome in executor.wait():
                    trial = in_flight.pop(outcome.number)
                    tries = attempts.get(outcome.number, 0)
                    if outcome.lost and tries < settings.max_retries:
                        attempts[outcome.number] = tries + 1
                        submit(trial, tries + 1)
                        continue
                    attempts.pop(outcome.number, None)
                    if (self.pruner is not None and outcome.error is None and not outcome.lost
                            and epochs_reached(outcome, max_epochs) < max_epochs):
                        advance(study.report(trial, outcome))
                    else:
                        error = outcome.error
                        if outcome.lost:
                            error = f"{error}; gave up after {tries + 1} attempts"
                        finish(study.tell(trial, outcome.metrics, error,
                                          curve=outcome.curve or None))
                    release_twins()
        finally:
            executor.close()
