"""Successive halving and Hyperband: synchronous brackets of trials trained in rungs.

A bracket asks its first rung's configurations of the strategy at once, trains them all
to the rung's epochs (``executor.capacity`` at a time), keeps the best ``n`` of the next
rung by the objective at those epochs and prunes the rest, and so on to the last rung,
whose trials train to the estimator's full schedule and complete.  A promoted trial
continues from its checkpoint (``TrialContext.checkpoint``).  Brackets follow HpBandSter
(``archsearch.fidelity.brackets``; ``../shared/REFERENCES.md`` section 11).

Exactly resumable, with any number of workers: the driver keeps no state of its own.
Every job's curve is recorded as it arrives (the trial stays running), and the decisions
(prune, complete, fail) are made once a rung has all its results, in trial-number order,
from the recorded curves alone.  A resumed run walks the record the same way: bracket
after bracket, the non-repeated trials in number order, rung after rung, and trains only
what is missing.  So the record, the strategy's view of it and every decision are those
of an uninterrupted run, whatever the finishing order of jobs (timings aside).

The resource is epochs by default.  ``resource="data"`` makes it the share of the training
data instead (Li et al.'s other resource, as in their kernel experiments): a rung's
trials train the estimator's whole schedule on ``level / units`` of its training rows,
nested across rungs, each job a fresh run (a network trained on less data is no prefix
of one trained on more, so nothing continues).  The record keeps every rung's curve, each
entry tagged with its ``data_fraction``, and decisions read the value at the end of that
rung's run: a resumed run finds them as the first run left them.

Departures: each bracket asks the strategy for fresh configurations (a repeat of an
evaluated architecture is answered from the record, not counted, and the strategy asked
again), as HpBandSter samples new ones per iteration; and a bracket cut short by the
trial budget or an exhausted strategy runs with the configurations it has.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from archsearch.estimation.base import TrialContext
from archsearch.execution.base import Executor, Outcome, SerialExecutor
from archsearch.fidelity.brackets import (
    Bracket,
    bracket_for_iteration,
    hyperband_brackets,
    successive_halving_bracket,
    top_k,
)
from archsearch.fidelity.pruners import curve_value
from archsearch.loop import FailureWatch, RunSettings, StopReason
from archsearch.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from archsearch.study import Study


class _Stop(Exception):
    """Ends the run with a reason (raised from deep inside a bracket)."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


RESOURCES = ("epochs", "data")


class HyperbandDriver:
    """Hyperband (Li et al., JMLR 2018): brackets from the most aggressive (``s_max``: many
    configurations from the smallest budget) to plain full training, cycled, with ``eta``
    the keep-one-in-``eta`` factor (HpBandSter's default 3).  The strategy (random search
    by default) chooses each bracket's configurations.

    The budget is ``min_epochs`` up to the estimator's epochs, or with ``resource="data"``
    ``min_fraction`` of the training data up to all of it (default ``1 / eta**2``: 1/9,
    1/3, 1 with eta 3; rounded to ``1 / units`` for a whole number of ``units``)."""

    def __init__(self, min_epochs: int = 1, eta: int = 3, resource: str = "epochs",
                 min_fraction: float | None = None) -> None:
        if min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {min_epochs}")
        if eta < 2:
            raise ValueError(f"eta must be >= 2, got {eta}")
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, got {resource!r}")
        if min_fraction is not None:
            if resource != "data":
                raise ValueError("min_fraction is the smallest budget of resource='data'; "
                                 "with epochs, set min_epochs")
            if not 0 < min_fraction <= 1:
                raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
        self.min_epochs = min_epochs
        self.eta = eta
        self.resource = resource
        self.min_fraction = min_fraction

    @property
    def data_units(self) -> int:
        """How many equal parts the data is cut into (resource ``"data"``): a budget of
        ``level`` trains on ``level / data_units`` of it."""
        smallest = self.eta ** -2 if self.min_fraction is None else self.min_fraction
        return max(1, round(1 / smallest))

    def brackets(self, top: int) -> list[Bracket]:
        """The brackets of one Hyperband cycle, in the order they run, for budgets up to
        ``top`` (the estimator's epochs, or ``data_units``)."""
        bottom = 1 if self.resource == "data" else min(self.min_epochs, top)
        return hyperband_brackets(bottom, top, self.eta)

    def run(self, study: Study, settings: RunSettings) -> StopReason:
        estimator = study.require_estimator()
        fidelity: _Fidelity
        if self.resource == "data":
            if not estimator.data_fidelity:  # driver_for checked; a direct caller is told too
                raise ValueError(f"{type(estimator).__name__} does not train on a data "
                                 "fraction (data_fidelity)")
            fidelity = _DataFraction(self.data_units)
        else:
            if estimator.max_epochs is None:
                raise ValueError(f"{type(estimator).__name__} does not train in epochs")
            fidelity = _Epochs(estimator.max_epochs)
        executor = settings.executor if settings.executor is not None else SerialExecutor()
        run = _BracketRun(study, settings, executor, fidelity)
        brackets = self.brackets(fidelity.top)
        study.take_reruns()  # interrupted trials are found in the record, bracket by bracket
        executor.start(estimator)
        try:
            iteration = 0
            while True:
                bracket = bracket_for_iteration(iteration, brackets)
                members = run.fill(bracket.rungs[0].configs)
                if members:
                    run.bracket(bracket, members)
                if run.stop is not None:
                    return run.stop
                iteration += 1
        except _Stop as stop:
            return stop.reason
        finally:
            executor.close()


class SuccessiveHalvingDriver(HyperbandDriver):
    """Successive halving (Jamieson & Talwalkar 2016; Li et al.'s bracket ``s_max``):
    every bracket starts its configurations at the smallest budget and keeps one in
    ``eta`` per rung up to the full one."""

    def brackets(self, top: int) -> list[Bracket]:
        bottom = 1 if self.resource == "data" else min(self.min_epochs, top)
        return [successive_halving_bracket(bottom, top, self.eta)]


class _Fidelity(ABC):
    """What a rung's budget (``level``, 1 to ``top``) means: how far a trial got, its
    value there, the job that takes it further, and the curve to record from that job."""

    def __init__(self, top: int) -> None:
        self.top = top  # the full budget: the last rung of every bracket

    @abstractmethod
    def reached(self, trial: FrozenTrial) -> int: ...

    @abstractmethod
    def value(self, trial: FrozenTrial, level: int, metric: str) -> float | None: ...

    @abstractmethod
    def context(self, study: Study, trial: FrozenTrial, attempt: int,
                level: int) -> TrialContext: ...

    @abstractmethod
    def curve(self, trial: FrozenTrial, outcome: Outcome,
              level: int) -> tuple[Mapping[str, float], ...]: ...


class _Epochs(_Fidelity):
    """Epochs of one schedule: a job continues the trial's checkpoint, and its curve is
    the whole curve so far."""

    def reached(self, trial: FrozenTrial) -> int:
        return trial.epochs_trained

    def value(self, trial: FrozenTrial, level: int, metric: str) -> float | None:
        return curve_value(trial, level, metric)

    def context(self, study: Study, trial: FrozenTrial, attempt: int,
                level: int) -> TrialContext:
        return study.context(trial, attempt, level)

    def curve(self, trial: FrozenTrial, outcome: Outcome,
              level: int) -> tuple[Mapping[str, float], ...]:
        return outcome.curve


class _DataFraction(_Fidelity):
    """``level / top`` of the training data, each job a new run: its curve is added to
    the trial's, every entry tagged with its fraction."""

    def fraction(self, level: int) -> float:
        return level / self.top

    def _level(self, entry: Mapping[str, float]) -> int:
        return round(float(entry.get("data_fraction", 0.0)) * self.top)

    def reached(self, trial: FrozenTrial) -> int:
        return max((self._level(e) for e in trial.curve), default=0)

    def value(self, trial: FrozenTrial, level: int, metric: str) -> float | None:
        runs = [e for e in trial.curve if self._level(e) == level]
        value = runs[-1].get(metric) if runs else None  # the end of that rung's run
        return None if value is None else float(value)

    def context(self, study: Study, trial: FrozenTrial, attempt: int,
                level: int) -> TrialContext:
        return study.context(trial, attempt, data_fraction=self.fraction(level))

    def curve(self, trial: FrozenTrial, outcome: Outcome,
              level: int) -> tuple[Mapping[str, float], ...]:
        tag = {"data_fraction": self.fraction(level)}  # whatever the estimator wrote
        return tuple(trial.curve) + tuple({**e, **tag} for e in outcome.curve)


class _BracketRun:
    """One ``run`` call: the record walked bracket by bracket, new trials asked when the
    record has no more."""

    def __init__(self, study: Study, settings: RunSettings, executor: Executor,
                 fidelity: _Fidelity) -> None:
        self.study, self.settings, self.executor = study, settings, executor
        self.fidelity = fidelity
        self.maximize = study.direction == "maximize"
        self.start = time.monotonic()
        self.watch = FailureWatch(settings.stop_after_failures)
        self.stop: StopReason | None = None  # set when no new trial may be asked
        self.repeats = 0
        # The trials already recorded, in the order brackets took them.
        self.recorded = [t.number for t in study.trials if not t.cached]
        self.cursor = 0

    # -- trials for a bracket ------------------------------------------------------------
    def fill(self, n: int) -> list[int]:
        """The bracket's ``n`` trials: the next recorded ones, then new ones asked."""
        members = self.recorded[self.cursor:self.cursor + n]
        self.cursor += len(members)
        while len(members) < n and self.stop is None:
            self.stop = self._why_stop()
            if self.stop is not None:
                break
            trial = self.study.ask()
            if trial is None:
                self.stop = StopReason.EXHAUSTED
                break
            done = self.study.answer_from_record(trial)
            if done is not None:
                self._finish(done)
                continue
            self.repeats = 0
            members.append(trial.number)
        return members

    def _why_stop(self) -> StopReason | None:
        budget, study = self.settings.budget, self.study
        used = study.n_evaluated + (study.n_cached if budget.count_repeats else 0)
        running = sum(1 for t in study.trials if not t.finished)
        if budget.trials is not None and used + running >= budget.trials:
            return StopReason.BUDGET
        if self._out_of_time():
            return StopReason.TIMEOUT
        if self.repeats >= study.max_repeats:
            return StopReason.REPEATS
        return None

    def _out_of_time(self) -> bool:
        seconds = self.settings.budget.seconds
        return seconds is not None and time.monotonic() - self.start >= seconds

    def _finish(self, done: FrozenTrial) -> None:
        self.repeats = self.repeats + 1 if done.cached else 0
        for callback in self.settings.callbacks:
            callback(self.study, done)
        self.watch.see(done)

    # -- one bracket -----------------------------------------------------------------------
    def _current(self, numbers: Sequence[int]) -> list[FrozenTrial]:
        return [self.study.trials[n] for n in numbers]

    def bracket(self, bracket: Bracket, members: list[int]) -> None:
        alive = members
        for j, rung in enumerate(bracket.rungs):
            last = j == len(bracket.rungs) - 1
            level = self.fidelity.top if last else rung.epochs
            errors = self._train(self._current(alive), level)
            # Decisions in number order, from the record: the same in a resumed run.
            survivors = []
            for trial in self._current(alive):
                if trial.number in errors:
                    self._finish(self.study.tell(trial, None, errors[trial.number]))
                elif trial.state is TrialState.FAILED:
                    continue
                elif last and trial.state is TrialState.RUNNING:
                    self._finish(self.study.tell(trial, trial.metrics))
                else:
                    survivors.append(trial)
            if last:
                return
            keep = {t.number for t in top_k(survivors, rung.epochs, bracket.rungs[j + 1].configs,
                                            self.study.objective, self.maximize,
                                            value=self.fidelity.value)}
            for trial in survivors:
                if trial.number not in keep and trial.state is TrialState.RUNNING:
                    self._finish(self.study.prune(trial))
            alive = [t.number for t in survivors if t.number in keep]

    def _train(self, trials: list[FrozenTrial], level: int) -> dict[int, str]:
        """Train every running trial that has not reached budget ``level`` to it, recording
        each job's curve as it arrives; the errors, by trial number, told by the caller."""
        queue = [t for t in trials
                 if t.state is TrialState.RUNNING and self.fidelity.reached(t) < level]
        in_flight: dict[int, FrozenTrial] = {}
        attempts: dict[int, int] = {}
        errors: dict[int, str] = {}
        while queue or in_flight:
            while queue and len(in_flight) < self.executor.capacity:
                if self._out_of_time():  # the rest stay running, for the next run
                    queue.clear()
                    self.stop = StopReason.TIMEOUT
                    break
                trial = queue.pop(0)
                self._submit(trial, level, 0)
                in_flight[trial.number] = trial
            if not in_flight:
                break
            for outcome in self.executor.wait():
                trial = in_flight.pop(outcome.number)
                tries = attempts.get(outcome.number, 0)
                if outcome.lost and tries < self.settings.max_retries:
                    attempts[outcome.number] = tries + 1
                    self._submit(trial, level, tries + 1)
                    in_flight[trial.number] = trial
                    continue
                self._record(trial, outcome, tries, errors, level)
        if self.stop is StopReason.TIMEOUT:
            for number, error in sorted(errors.items()):
                self._finish(self.study.tell(self.study.trials[number], None, error))
            raise _Stop(StopReason.TIMEOUT)
        return errors

    def _submit(self, trial: FrozenTrial, level: int, attempt: int) -> None:
        self.executor.submit(trial.number, trial.genotype,
                             self.fidelity.context(self.study, trial, attempt, level))

    def _record(self, trial: FrozenTrial, outcome: Outcome, tries: int,
                errors: dict[int, str], level: int) -> None:
        if outcome.error is not None or outcome.lost or outcome.metrics is None:
            error = outcome.error or "no metrics"
            if outcome.lost:
                error = f"{error}; gave up after {tries + 1} attempts"
            errors[trial.number] = error
            return
        if not outcome.curve:  # an estimator must say how far it trained
            errors[trial.number] = "the estimator returned no learning curve"
            return
        self.study.report(trial, replace(outcome, curve=self.fidelity.curve(trial, outcome, level)))
