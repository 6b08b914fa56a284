"""The record's front: a study holds one space, one strategy, one estimator and their record.

The study is the only writer of the record.  Everything random derives from one seed and
the trial number, so a study that is killed and run again finishes exactly as one that
never stopped: finished trials are kept, the trial that was running is rerun with the
same architecture and seed, and the strategy's state is rebuilt by replaying ``tell``.
How a search proceeds (the ask/tell loop, a one-shot search) is the strategy's driver,
in ``archsearch.loop``; ``optimize`` runs it.

A study on a SQLite record holds a lease on it (``archsearch.lease``) from creation to
``close()``: a second live process that opens the same study is refused, while a study
whose process died is taken over at once.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.estimation.base import Estimator, TrialContext
from archsearch.execution.base import Executor, Outcome, run_job
from archsearch.lease import StudyLease
from archsearch.loop import Budget, Callback, RunSettings, StopReason
from archsearch.objectives import Bound, Objective, assess, parse_constraints, parse_objectives
from archsearch.space.base import SearchSpace
from archsearch.storage import InMemoryStorage, SQLiteStorage, Storage, StudyInfo, judged
from archsearch.strategy.base import Strategy
from archsearch.trial import FrozenTrial, TrialState, best_of, pareto_front_of
from archsearch.version import __version__

__all__ = ["Budget", "Callback", "StopReason", "Study", "derive_seed", "trial_seed"]

def derive_seed(seed: int, number: int, stream: int) -> int:
    """An independent 32-bit seed for one purpose (stream) of one trial."""
    return int(np.random.SeedSequence([seed, number, stream]).generate_state(1)[0])


_ASK_STREAM, _TRIAL_STREAM = 0, 1


def trial_seed(seed: int, number: int) -> int:
    """The seed a trial's estimator gets (``TrialContext.seed``): a rerun after a crash, a
    retry on another worker and ``archsearch export`` all train the same network."""
    return derive_seed(seed, number, _TRIAL_STREAM)


class Study:
    """A search: one space, one strategy, one estimator, one record.

    Most code makes one with ``archsearch.create_study`` (names for the strategy and the
    estimator, a plain function as the estimator) or ``archsearch.run`` (a YAML config).

    >>> from archsearch.space import ChainSpace
    >>> from archsearch.strategy import RandomSearch
    >>> space = ChainSpace("vector", max_depth=2)
    >>> study = Study(space, RandomSearch(space), seed=0)
    >>> study.optimize(lambda genotype: float(genotype["depth"]), trials=5).name
    'BUDGET'
    >>> len(study.trials)
    5

    ``objective`` names the metric strategies see (default: the estimator's own, else
    ``val_accuracy``), ``direction`` whether larger or smaller is better; ``objectives``
    (a list, see ``archsearch.objectives.parse_objectives``) makes a multi-objective study
    instead, and ``constraints`` (``{metric: {min: .., max: ..}}``) bound metrics: a trial
    outside them is complete but infeasible.  ``dataset`` is the data a one-shot search
    trains its supernet on.  ``scheduler`` spends epochs unevenly (``archsearch.fidelity``:
    a pruner such as ``MedianPruner`` or ``SuccessiveHalvingPruner`` (ASHA) stops poor
    trials between epochs; ``HyperbandDriver`` runs brackets); its estimator must train in
    epochs (``Estimator.max_epochs``).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        estimator: Estimator | Callable[..., Any] | None = None,
        storage: Storage | None = None,
        *,
        name: str = "study",
        seed: int = 0,
        objective: str | None = None,
        direction: str | None = None,
        objectives: Any = None,
        constraints: Any = None,
        config: Mapping[str, Any] | None = None,
        trial_timeout: float | None = None,
        max_repeats: int = 1000,
        stop_after_failures: int = 5,
        dataset: Any = None,
        scheduler: Any = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"space must be a SearchSpace, got {type(space).__name__}")
        if not isinstance(strategy, Strategy):
            raise ConfigError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        if stop_after_failures < 0:
            raise ConfigError(f"stop_after_failures must be >= 0, got {stop_after_failures}")
        own = estimator if isinstance(estimator, Estimator) else None
        if objectives is not None and (objective is not None or direction is not None):
            raise ConfigError("give objectives, or objective and direction, not both")
        if objectives is None:
            objectives = [Objective(objective or (own.objective if own else "val_accuracy"),
                                    direction or (own.direction if own else "maximize"))]
        goals = parse_objectives(objectives)
        bounds = parse_constraints(constraints)
        self.space, self.strategy = space, strategy
        self.estimator: Estimator | None = None
        self.dataset = dataset
        self.storage = storage if storage is not None else InMemoryStorage()
        self.trial_timeout = trial_timeout
        self.max_repeats = max_repeats
        self.stop_after_failures = stop_after_failures
        self.scheduler = scheduler
        self._checkpoints: Path | None = None  # made on first use (see checkpoint_path)
        self._remove_checkpoints: weakref.finalize[Any, Any] | None = None
        self._lease: StudyLease | None = None
        if isinstance(self.storage, SQLiteStorage):
            self._lease = StudyLease(self.storage.path, name)
            self._lease.acquire()  # before reading: the record is ours from here on
        try:
            self.info = self.storage.open_study(StudyInfo(
                name=name, seed=seed, direction=goals[0].direction, objective=goals[0].metric,
                config=dict(config or {}), version=__version__, objectives=goals,
                constraints=bounds,
            ))
            # A multi-objective study drives a single-objective ask/tell strategy through
            # ParEGO's scalarisation (before the replay below, which ParEGO ignores).
            if (self.info.multi_objective and not getattr(strategy, "multi_objective", False)
                    and not strategy.runs_own_search):
                from archsearch.strategy.scalarized import ParEGO

                self.strategy = ParEGO.wrap(strategy)
            self._load()
        except BaseException:
            self.close()
            raise
        if estimator is not None:
            self.set_estimator(estimator)

    def _load(self) -> None:
        # Trial numbers are 0..n-1, so a list indexed by number is the whole record.
        self._trials: list[FrozenTrial] = self.storage.trials(self.name)
        if [t.number for t in self._trials] != list(range(len(self._trials))):
            raise ConfigError(f"study {self.name!r} has gaps in its trial numbers; "
                              "the record is damaged")
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
    def objective(self) -> str:
        """The (first) objective's metric."""
        return self.info.objective

    @property
    def direction(self) -> str:
        """The (first) objective's direction."""
        return self.info.direction

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self.info.objectives

    @property
    def constraints(self) -> tuple[Bound, ...]:
        return self.info.constraints

    @property
    def multi_objective(self) -> bool:
        return self.info.multi_objective

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, by number (a shared list: do not modify it)."""
        return self._trials

    @property
    def n_evaluated(self) -> int:
        """Finished trials that reached the estimator (the budget counts these)."""
        return self._n_evaluated

    @property
    def n_cached(self) -> int:
        """Finished trials answered from the record (repeats of an evaluated architecture)."""
        return self._n_cached

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The feasible completed trial with the best objective (the earliest, if tied).
        A multi-objective study has no single best: see ``pareto_front``."""
        if self.multi_objective:
            names = ", ".join(o.metric for o in self.objectives)
            raise ConfigError(f"study {self.name!r} has {len(self.objectives)} objectives "
                              f"({names}): it has no single best trial; use pareto_front()")
        return best_of(self._trials)

    def pareto_front(self) -> list[FrozenTrial]:
        """The feasible completed trials no other feasible trial dominates, by number (a
        repeat of an architecture counts once).  For one objective: the best trial(s)."""
        return pareto_front_of(self._trials)

    # -- the estimator -------------------------------------------------------------------
    def set_estimator(self, estimator: Estimator | Callable[..., Any]) -> None:
        """Use ``estimator`` (an ``Estimator``, or a plain function of the genotype and
        optionally the ``TrialContext``, see ``FunctionEstimator``) from now on."""
        if not isinstance(estimator, Estimator):
            from archsearch.estimation.function import FunctionEstimator

            estimator = FunctionEstimator(estimator, self.objective, self.direction)
        self.estimator = estimator

    def require_estimator(self) -> Estimator:
        if self.estimator is None:
            raise ConfigError("the study has no estimator: pass one to create_study or optimize")
        return self.estimator

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
        *,
        curve: tuple[Mapping[str, float], ...] | None = None,
        pruned: bool = False,
    ) -> FrozenTrial:
        """Finish a trial with its metrics, or with an error message.  Its objective values
        and feasibility are judged from the metrics (``archsearch.objectives.assess``).
        ``curve`` replaces the trial's learning curve; ``pruned`` finishes it as stopped by
        a scheduler (its metrics are its last epoch's; it has no objective values)."""
        metrics = {k: float(v) for k, v in (metrics or {}).items()}
        if error is None and not pruned:
            found = assess(metrics, self.objectives, self.constraints)
            if isinstance(found, str):
                error = found
        state = (TrialState.FAILED if error else
                 TrialState.PRUNED if pruned else TrialState.COMPLETE)
        done = replace(
            trial,
            state=state,
            metrics=metrics,
            error=error,
            finished_at=time.time(),
            finish_order=self._finish_counter,
            cached=cached,
            curve=trial.curve if curve is None else tuple(curve),
        )
        done = judged(done, self.info)
        self._finish_counter += 1
        self._n_evaluated += 0 if cached else 1
        self._n_cached += 1 if cached else 0
        self._write(done)
        self._remember(done)
        self.strategy.tell(done)
        self._drop_checkpoint(done.number)
        return done

    def report(self, trial: FrozenTrial, outcome: Outcome) -> FrozenTrial:
        """Record a running trial's progress (a job that stopped short of the full training:
        its metrics and curve so far); it stays running.  The strategy hears nothing yet."""
        if outcome.error is not None or outcome.metrics is None:
            raise ValueError("report takes a successful outcome; tell a failed one")
        if outcome.curve and self.objective not in outcome.curve[-1]:
            # A scheduler would rank every trial last and prune them all: say so instead.
            raise ConfigError(
                f"the learning curve reports {', '.join(sorted(outcome.curve[-1]))}, not the "
                f"objective {self.objective!r} that the scheduler compares trials on")
        running = replace(trial, metrics={k: float(v) for k, v in outcome.metrics.items()},
                          curve=outcome.curve or trial.curve)
        self._write(running)
        return running

    def prune(self, trial: FrozenTrial) -> FrozenTrial:
        """Finish a running trial as pruned, with the metrics and curve it reported last."""
        return self.tell(trial, trial.metrics, pruned=True)

    def pause(self, trial: FrozenTrial) -> None:
        """Leave a running trial for the next ``optimize`` (a budget ran out between two of
        its jobs): it is asked again first, and continues from its checkpoint."""
        self._rerun.append(trial)

    def take_reruns(self) -> list[FrozenTrial]:
        """The running trials that an interrupted run left, for drivers that follow their
        trials through several jobs themselves (``study.ask`` no longer returns them)."""
        taken = list(self._rerun)
        self._rerun.clear()
        return taken

    def checkpoint_path(self, number: int) -> str:
        """Where trial ``number``'s training state is kept between the jobs of a
        multi-fidelity schedule: beside a SQLite record (``<db>.checkpoints/<study>/``),
        else in a temporary folder removed by ``close``.  Deleted once the trial finishes."""
        if self._checkpoints is None:
            folder = self.storage.checkpoint_dir(self.name)
            if folder is None:
                folder = Path(tempfile.mkdtemp(prefix="archsearch-checkpoints-"))
                # Removed by close(), or when the study is collected or Python exits.
                self._remove_checkpoints = weakref.finalize(self, shutil.rmtree, folder, True)
            folder.mkdir(parents=True, exist_ok=True)
            self._checkpoints = folder
        return str(self._checkpoints / f"trial-{number:06d}.pt")

    def _drop_checkpoint(self, number: int) -> None:
        if self._checkpoints is not None:
            Path(self.checkpoint_path(number)).unlink(missing_ok=True)

    def context(self, trial: FrozenTrial, attempt: int = 0, epochs: int | None = None,
                data_fraction: float | None = None) -> TrialContext:
        """The trial's seed derives from the study seed and its number: a rerun after a
        crash, or a retry after a lost worker, trains the same network.  ``epochs`` asks
        for training up to that epoch only (a multi-fidelity job), with a checkpoint;
        ``data_fraction`` for the whole schedule on that share of the data, afresh."""
        checkpoint = None if epochs is None else self.checkpoint_path(trial.number)
        return TrialContext(trial.number, trial_seed(self.seed, trial.number),
                            self.trial_timeout, attempt, epochs=epochs, checkpoint=checkpoint,
                            data_fraction=data_fraction)

    def answer_from_record(self, trial: FrozenTrial) -> FrozenTrial | None:
        """A repeat of a finished architecture is told its recorded result (it never
        reaches the estimator), pruned if that one was; None when the architecture is new."""
        earlier = self._by_key.get(trial.key)
        if earlier is None:
            return None
        return self.tell(trial, earlier.metrics, earlier.error, cached=True,
                         curve=earlier.curve, pruned=earlier.state is TrialState.PRUNED)

    def evaluate(self, trial: FrozenTrial) -> FrozenTrial:
        """Run the estimator in this process on a started trial and record the outcome."""
        done = self.answer_from_record(trial)
        if done is not None:
            return done
        outcome = run_job(self.require_estimator(), trial.number, trial.genotype,
                          self.context(trial))
        return self.tell(trial, outcome.metrics, outcome.error, curve=outcome.curve or None)

    # -- running a search ----------------------------------------------------------------
    def optimize(
        self,
        estimator: Estimator | Callable[..., Any] | None = None,
        trials: int | None = None,
        *,
        timeout: float | None = None,
        budget: Budget | None = None,
        callbacks: Iterable[Callback] = (),
        executor: Executor | None = None,
        max_retries: int = 2,
        log: Callable[[str], None] | None = None,
    ) -> StopReason:
        """Search until ``trials`` have been evaluated in the whole study (a resumed study
        counts what it did before), ``timeout`` seconds have passed in this run, or the
        strategy has nothing left; or as ``budget`` says (``Budget(count_repeats=True)``
        also counts repeats).  ``estimator`` replaces the study's, if given.

        How the search proceeds is the strategy's driver (``Strategy.driver()``): the
        ask/tell loop, or a one-shot search that trains a supernet first.  ``executor``
        runs the evaluations (default: here, one at a time); ``log`` gets progress lines
        of drivers that print some.
        """
        if estimator is not None:
            self.set_estimator(estimator)
        if budget is None:
            budget = Budget(trials=trials, seconds=timeout)
        elif trials is not None or timeout is not None:
            raise ConfigError("give either budget or trials / timeout, not both")
        settings = RunSettings(budget=budget, callbacks=tuple(callbacks), executor=executor,
                               max_retries=max_retries,
                               stop_after_failures=self.stop_after_failures,
                               log=log or (lambda line: None))
        return self._driver().run(self, settings)

    def _driver(self) -> Any:
        """The strategy's driver, or the scheduler's (see ``archsearch.fidelity``)."""
        if self.scheduler is None:
            return self.strategy.driver()
        from archsearch.fidelity.schedule import driver_for

        return driver_for(self)

    # -- the lease -----------------------------------------------------------------------
    def close(self) -> None:
        """Give up the lease on the record (a study object is done with), and remove a
        temporary checkpoint folder."""
        if self._lease is not None:
            self._lease.release()
        if self._remove_checkpoints is not None:
            self._remove_checkpoints()
            self._remove_checkpoints, self._checkpoints = None, None

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
