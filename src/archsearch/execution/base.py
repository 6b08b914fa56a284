"""Executors run evaluations; the study decides what to run and records what happened.

An executor never touches the record.  It takes (trial number, genotype, context) jobs
and hands back outcomes; the study, on the driver, is the only writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

from archsearch.estimation.base import Estimator, Evaluation, TrialContext
from archsearch.space.genotype import Genotype


@dataclass(frozen=True)
class Outcome:
    """How one job ended: metrics, or an error message, or ``lost`` (the worker died
    under it: the study may retry it)."""

    number: int
    metrics: Mapping[str, float] | None = None
    error: str | None = None
    lost: bool = False
    #: The learning curve so far (see ``archsearch.estimation.base.Evaluation``).
    curve: tuple[Mapping[str, float], ...] = ()


def run_job(estimator: Estimator, number: int, genotype: Genotype,
            context: TrialContext) -> Outcome:
    """Evaluate one job; any exception becomes the outcome's error message."""
    try:
        result = estimator.evaluate(genotype, context)
    except Exception as err:  # noqa: BLE001 - a failing architecture is data, not a crash
        return Outcome(number, error=f"{type(err).__name__}: {err}")
    if isinstance(result, Evaluation):
        curve = tuple({k: float(v) for k, v in point.items()} for point in result.curve)
        return Outcome(number, metrics=dict(result.metrics), curve=curve)
    return Outcome(number, metrics=dict(result))


class Executor(ABC):
    """Keeps up to ``capacity`` evaluations in flight."""

    capacity: int = 1

    @abstractmethod
    def start(self, estimator: Estimator) -> None:
        """Get ready to evaluate with ``estimator`` (start workers, ship it to them)."""

    @abstractmethod
    def submit(self, number: int, genotype: Genotype, context: TrialContext) -> None: ...

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted job has ended; return every ended job."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Stop workers; jobs still running are abandoned (the record keeps them running,
        so a resumed study reruns them)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Evaluates in this process, one trial at a time (the default)."""

    capacity = 1

    def __init__(self, workers: int = 1) -> None:
        if workers != 1:
            raise ValueError(f"the serial executor runs one trial at a time (workers: 1), not "
                             f"{workers}; use the processes or ray executor for more")
        self._estimator: Estimator | None = None
        self._done: list[Outcome] = []

    def start(self, estimator: Estimator) -> None:
        self._estimator = estimator

    def submit(self, number: int, genotype: Genotype, context: TrialContext) -> None:
        assert self._estimator is not None, "start() first"
        self._done.append(run_job(self._estimator, number, genotype, context))

    def wait(self) -> list[Outcome]:
        done, self._done = self._done, []
        return done
