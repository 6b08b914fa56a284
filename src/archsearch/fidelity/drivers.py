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

Departures: each bracket asks the strategy for fresh configurations (a repeat of an
evaluated architecture is answered from the record, not counted, and the strategy asked
again), as HpBandSter samples new ones per iteration; and a bracket cut short by the
trial budget or an exhausted strategy runs with the configurations it has.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from archsearch.execution.base import Executor, Outcome, SerialExecutor
from archsearch.fidelity.brackets import (
    Bracket,
    bracket_for_iteration,
    hyperband_brackets,
    successive_halving_bracket,
    top_k,
)
from archsearch.loop import FailureWatch, RunSettings, StopReason
from archsearch.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from archsearch.study import Study


class _Stop(Exception):
    """Ends the run with a reason (raised from deep inside a bracket)."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class HyperbandDriver:
    """Hyperband (Li et al., JMLR 2018) over epochs: brackets from the most aggressive
    (``s_max``: many configurations from ``min_epochs``) to plain full training, cycled,
    with ``eta`` the keep-one-in-``eta`` factor (HpBandSter's default 3).  The strategy
    (random search by default) chooses each bracket's configurations."""

    def __init__(self, min_epochs: int = 1, eta: int = 3) -> None:
        if min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {min_epochs}")
        if eta < 2:
            raise ValueError(f"eta must be >= 2, got {eta}")
        self.min_epochs = min_epochs
        self.eta = eta

    def brackets(self, max_epochs: int) -> list[Bracket]:
        """The brackets of one Hyperband cycle, in the order they run."""
        return hyperband_brackets(min(self.min_epochs, max_epochs), max_epochs, self.eta)

    def run(self, study: Study, settings: RunSettings) -> StopReason:
        estimator = study.require_estimator()
        max_epochs = estimator.max_epochs
        if max_epochs is None:  # driver_for checked; a direct caller gets the same words
            raise ValueError(f"{type(estimator).__name__} does not train in epochs")
        executor = settings.executor if settings.executor is not None else SerialExecutor()
        run = _BracketRun(study, settings, executor, max_epochs)
        brackets = self.brackets(max_epochs)
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
    every bracket starts its configurations at ``min_epochs`` and keeps one in ``eta``
    per rung up to the full schedule."""

    def brackets(self, max_epochs: int) -> list[Bracket]:
        return [successive_halving_bracket(min(self.min_epochs, max_epochs), max_epochs,
                                           self.eta)]


class _BracketRun:
    """One ``run`` call: the record walked bracket by bracket, new trials asked when the
    record has no more."""

    def __init__(self, study: Study, settings: RunSettings, executor: Executor,
                 max_epochs: int) -> None:
        self.study, self.settings, self.executor = study, settings, executor
        self.max_epochs = max_epochs
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
            epochs = self.max_epochs if last else rung.epochs
            errors = self._train(self._current(alive), epochs)
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
                                            self.study.objective, self.maximize)}
            for trial in survivors:
                if trial.number not in keep and trial.state is TrialState.RUNNING:
                    self._finish(self.study.prune(trial))
            alive = [t.number for t in survivors if t.number in keep]

    def _train(self, trials: list[FrozenTrial], epochs: int) -> dict[int, str]:
        """Train every running trial that has not reached ``epochs`` to it, recording each
        job's curve as it arrives; the errors, by trial number, told by the caller."""
        queue = [t for t in trials if t.state is TrialState.RUNNING and t.epochs_trained < epochs]
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
                self._submit(trial, epochs, 0)
                in_flight[trial.number] = trial
            if not in_flight:
                break
            for outcome in self.executor.wait():
                trial = in_flight.pop(outcome.number)
                tries = attempts.get(outcome.number, 0)
                if outcome.lost and tries < self.settings.max_retries:
                    attempts[outcome.number] = tries + 1
                    self._submit(trial, epochs, tries + 1)
                    in_flight[trial.number] = trial
                    continue
                self._record(trial, outcome, tries, errors)
        if self.stop is StopReason.TIMEOUT:
            for number, error in sorted(errors.items()):
                self._finish(self.study.tell(self.study.trials[number], None, error))
            raise _Stop(StopReason.TIMEOUT)
        return errors

    def _submit(self, trial: FrozenTrial, epochs: int, attempt: int) -> None:
        self.executor.submit(trial.number, trial.genotype,
                             self.study.context(trial, attempt, epochs))

    def _record(self, trial: FrozenTrial, outcome: Outcome, tries: int,
                errors: dict[int, str]) -> None:
        if outcome.error is not None or outcome.lost or outcome.metrics is None:
            error = outcome.error or "no metrics"
            if outcome.lost:
                error = f"{error}; gave up after {tries + 1} attempts"
            errors[trial.number] = error
            return
        if not outcome.curve:  # an estimator must say how far it trained
            errors[trial.number] = "the estimator returned no learning curve"
            return
        self.study.report(trial, outcome)
