"""The loop that ties the three parts together: ask -> estimate -> record -> tell.

The study is the only writer of the record.  Everything random derives from one seed and
the trial number, so a study that is killed and run again finishes exactly as one that
never stopped: finished trials are kept, the trial that was running is rerun with the
same architecture and seed, and the strategy's state is rebuilt by replaying ``tell``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from archsearch import __version__
from archsearch.estimation.base import Estimator, TrialContext
from archsearch.execution.base import Executor, SerialExecutor, run_job
from archsearch.space.base import SearchSpace
from archsearch.storage import InMemoryStorage, Storage, StudyInfo
from archsearch.strategy.base import Strategy
from archsearch.trial import FrozenTrial, TrialState, oriented

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
            raise ValueError(f"the trial budget must be >= 0, got {self.trials}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"the time budget must be > 0 seconds, got {self.seconds}")


def derive_seed(seed: int, number: int, stream: int) -> int:
    """An independent 32-bit seed for one purpose (stream) of one trial."""
    return int(np.random.SeedSequence([seed, number, stream]).generate_state(1)[0])


_ASK_STREAM, _TRIAL_STREAM = 0, 1


class Study:
    """A search: one space, one strategy, one estimator, one record.

    >>> from archsearch.space import ChainSpace
    >>> from archsearch.strategy import RandomSearch
    >>> space = ChainSpace("vector", max_depth=2)
    >>> class Depth(Estimator):
    ...     def evaluate(self, genotype, context):
    ...         return {"val_accuracy": float(genotype["depth"])}
    >>> study = Study(space, RandomSearch(space), Depth(), seed=0)
    >>> study.optimize(Budget(trials=5)).name
    'BUDGET'
    >>> len(study.trials)
    5
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        estimator: Estimator,
        storage: Storage | None = None,
        *,
        name: str = "study",
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        trial_timeout: float | None = None,
        max_repeats: int = 1000,
    ) -> None:
        if estimator.direction not in ("maximize", "minimize"):
            raise ValueError(f"estimator direction must be maximize or minimize, "
                             f"got {estimator.direction!r}")
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.storage = storage if storage is not None else InMemoryStorage()
        self.trial_timeout = trial_timeout
        self.max_repeats = max_repeats
        self.info = self.storage.open_study(StudyInfo(
            name=name, seed=seed, direction=estimator.direction, objective=estimator.objective,
            config=dict(config or {}), version=__version__,
        ))
        # Trial numbers are 0..n-1, so a list indexed by number is the whole record.
        self._trials: list[FrozenTrial] = self.storage.trials(name)
        if [t.number for t in self._trials] != list(range(len(self._trials))):
            raise ValueError(f"study {name!r} has gaps in its trial numbers; the record is damaged")
        self._by_key: dict[str, FrozenTrial] = {}
        finished = sorted((t for t in self._trials if t.finished),
                          key=lambda t: (t.finish_order or 0, t.number))
        for trial in finished:  # rebuild the strategy's state from the record
            self._remember(trial)
            self.strategy.tell(trial)
        self._finish_counter = 1 + max((t.finish_order or 0 for t in finished), default=0)
        # Trials that were running when a previous run died are evaluated again first.
        self._rerun = deque(t for t in self._trials if not t.finished)
        self._n_evaluated = sum(1 for t in self._trials if t.finished and not t.cached)
        self._n_cached = sum(1 for t in self._trials if t.cached)

    # -- views -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def seed(self) -> int:
        return self.info.seed

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, by number (a shared list: do not modify it)."""
        return self._trials

    @property
    def n_evaluated(self) -> int:
        """Finished trials that reached the estimator (the budget counts these)."""
        return self._n_evaluated

    @property
    def best_trial(self) -> FrozenTrial | None:
        done = [t for t in self._trials if t.score is not None and not t.cached]
        return max(done, key=lambda t: (t.score, -t.number)) if done else None

    # -- ask and tell ----------------------------------------------------------------------
    def ask(self) -> FrozenTrial | None:
        """Start a trial: an interrupted one first, else the strategy's next proposal."""
        if self._rerun:
            trial = replace(self._rerun.popleft(), started_at=time.time())
        else:
            number = len(self._trials)
            rng = np.random.default_rng(derive_seed(self.seed, number, _ASK_STREAM))
            genotype = self.strategy.ask(self.trials, rng)
            if genotype is None:
                return None
            self.space.validate(genotype)  # a strategy bug surfaces here, not in training
            trial = FrozenTrial(number, TrialState.RUNNING, genotype, self.space.key(genotype),
                                started_at=time.time())
        self._write(trial)
        return trial

    def tell(
        self,
        trial: FrozenTrial,
        metrics: Mapping[str, float] | None = None,
        error: str | None = None,
        cached: bool = False,
    ) -> FrozenTrial:
        """Finish a trial with its metrics, or with an error message."""
        value = None if metrics is None else metrics.get(self.estimator.objective)
        if error is None and (value is None or not math.isfinite(float(value))):
            error = (f"objective {self.estimator.objective!r} is missing" if value is None
                     else f"objective {self.estimator.objective!r} is {value}")
        done = replace(
            trial,
            state=TrialState.FAILED if error else TrialState.COMPLETE,
            value=None if error else float(value),  # type: ignore[arg-type]
            score=None if error else oriented(float(value), self.info.direction),  # type: ignore[arg-type]
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            error=error,
            finished_at=time.time(),
            finish_order=self._finish_counter,
            cached=cached,
        )
        self._finish_counter += 1
        self._n_evaluated += 0 if cached else 1
        self._n_cached += 1 if cached else 0
        self._write(done)
        self._remember(done)
        self.strategy.tell(done)
        return done

    def context(self, trial: FrozenTrial, attempt: int = 0) -> TrialContext:
        """The trial's seed derives from the study seed and its number: a rerun after a
        crash, or a retry after a lost worker, trains the same network."""
        return TrialContext(trial.number, derive_seed(self.seed, trial.number, _TRIAL_STREAM),
                            self.trial_timeout, attempt)

    def answer_from_record(self, trial: FrozenTrial) -> FrozenTrial | None:
        """A repeat of a finished architecture is told its recorded result (it never
        reaches the estimator); None when the architecture is new."""
        earlier = self._by_key.get(trial.key)
        if earlier is None:
            return None
        return self.tell(trial, earlier.metrics, earlier.error, cached=True)

    def evaluate(self, trial: FrozenTrial) -> FrozenTrial:
        """Run the estimator in this process on a started trial and record the outcome."""
        done = self.answer_from_record(trial)
        if done is not None:
            return done
        outcome = run_job(self.estimator, trial.number, trial.genotype, self.context(trial))
        return self.tell(trial, outcome.metrics, outcome.error)

    def optimize(
        self,
        budget: Budget,
        callbacks: Iterable[Callback] = (),
        executor: Executor | None = None,
        max_retries: int = 2,
    ) -> StopReason:
        """Keep ``executor.capacity`` trials in flight until the budget is spent or the
        strategy has nothing left; every state change is recorded as it happens.

        A trial whose worker died is retried up to ``max_retries`` times, then failed.
        A proposal whose architecture is still being evaluated waits for that result.
        """
        callbacks = list(callbacks)
        executor = executor if executor is not None else SerialExecutor()
        start = time.monotonic()
        in_flight: dict[int, FrozenTrial] = {}
        attempts: dict[int, int] = {}
        waiting: list[FrozenTrial] = []  # repeats of an architecture still in flight
        repeats = 0
        stop: StopReason | None = None

        def finish(done: FrozenTrial) -> None:
            nonlocal repeats
            repeats = repeats + 1 if done.cached else 0
            for callback in callbacks:
                callback(self, done)

        executor.start(self.estimator)
        try:
            while True:
                while stop is None and len(in_flight) < executor.capacity:
                    used = self.n_evaluated + (self._n_cached if budget.count_repeats else 0)
                    if budget.trials is not None and used + len(in_flight) >= budget.trials:
                        stop = StopReason.BUDGET
                    elif budget.seconds is not None and time.monotonic() - start >= budget.seconds:
                        stop = StopReason.TIMEOUT
                    elif repeats >= self.max_repeats:
                        stop = StopReason.REPEATS
                    if stop is not None:
                        break
                    trial = self.ask()
                    if trial is None:
                        stop = StopReason.EXHAUSTED
                        break
                    done = self.answer_from_record(trial)
                    if done is not None:
                        finish(done)
                    elif any(t.key == trial.key for t in in_flight.values()):
                        waiting.append(trial)  # told when the running twin finishes
                        if len(waiting) >= executor.capacity:
                            break  # a strategy stuck on pending work: let results arrive
                    else:
                        executor.submit(trial.number, trial.genotype, self.context(trial))
                        in_flight[trial.number] = trial
                if not in_flight:  # waiting trials always have a twin in flight
                    return stop if stop is not None else StopReason.EXHAUSTED
                for outcome in executor.wait():
                    trial = in_flight.pop(outcome.number)
                    tries = attempts.get(outcome.number, 0)
                    if outcome.lost and tries < max_retries:
                        attempts[outcome.number] = tries + 1
                        executor.submit(trial.number, trial.genotype,
                                        self.context(trial, tries + 1))
                        in_flight[trial.number] = trial
                        continue
                    error = outcome.error
                    if outcome.lost:
                        error = f"{error}; gave up after {tries + 1} attempts"
                    finish(self.tell(trial, outcome.metrics, error))
                    for other in [t for t in waiting if t.key == trial.key]:
                        waiting.remove(other)
                        done = self.answer_from_record(other)
                        finish(done if done is not None else self.evaluate(other))
        finally:
            executor.close()

    # -- internals -----------------------------------------------------------------------
    def _write(self, trial: FrozenTrial) -> None:
        self.storage.write_trial(self.name, trial)
        if trial.number == len(self._trials):
            self._trials.append(trial)
        else:
            self._trials[trial.number] = trial

    def _remember(self, trial: FrozenTrial) -> None:
        if trial.finished and not trial.cached and trial.key not in self._by_key:
            self._by_key[trial.key] = trial
