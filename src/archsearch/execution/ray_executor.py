"""Every trial a Ray task: Ray places it, retries it when its worker or node dies, and
the results come back to the driver, which alone writes the record.

A local cluster started here listens on 127.0.0.1 only: Ray would otherwise rewrite the
loopback address to the machine's and listen on every interface, unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set, which ``start`` does.
"""

from __future__ import annotations

import os
import time
from typing import Any

from archsearch.estimation.base import Estimator, TrialContext
from archsearch.execution.base import Executor, Outcome, run_job
from archsearch.space.genotype import Genotype


def _ray() -> Any:
    # Must be set before Ray is imported and started, or a local node listens on every
    # interface; a user who wants otherwise sets it themselves.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ImportError('the ray executor needs Ray: pip install "archsearch[ray]"') from None
    return ray


def _evaluate(estimator: Estimator, number: int, genotype_json: str,
              context: TrialContext) -> Outcome:
    return run_job(estimator, number, Genotype.from_json(genotype_json), context)


class RayExecutor(Executor):
    """Up to ``workers`` trials at once as Ray tasks, each asking for ``cpus_per_trial``
    CPUs and ``gpus_per_trial`` GPUs (a fraction packs several trials on one GPU).

    ``address`` joins an existing cluster; without it a local one is started on loopback
    with ``local_cpus`` CPUs and stopped at ``close``.  A task whose worker or node dies
    is retried by Ray up to ``max_retries`` times; a task past its trial timeout plus
    ``grace_seconds`` (counted from submission: Ray does not report when a task starts;
    tasks submitted before any result has come back get ``startup_seconds`` more, for
    Ray's worker start-up) is cancelled and recorded as failed.
    """

    def __init__(
        self,
        workers: int = 2,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        max_retries: int = 2,
        local_cpus: int | None = None,
        grace_seconds: float = 5.0,
        startup_seconds: float = 60.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.capacity = workers
        self.address = address
        self.cpus_per_trial, self.gpus_per_trial = cpus_per_trial, gpus_per_trial
        self.max_retries = max_retries
        self.local_cpus = local_cpus
        self.grace_seconds = grace_seconds
        self.startup_seconds = startup_seconds
        self._warm = False  # until a first result arrives, workers may still be starting
        self._started_ray = False
        self._pending: dict[Any, tuple[int, float]] = {}  # task -> (trial number, deadline)
        self._task: Any = None
        self._estimator_ref: Any = None

    def start(self, estimator: Estimator) -> None:
        ray = _ray()
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.local_cpus or self.capacity, include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False)
                self._started_ray = True
        self._task = ray.remote(_evaluate).options(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
            max_retries=self.max_retries, retry_exceptions=False)
        self._estimator_ref = ray.put(estimator)  # shipped once, shared by every task

    def submit(self, number: int, genotype: Genotype, context: TrialContext) -> None:
        limit = float("inf") if context.timeout is None else context.timeout + self.grace_seconds
        if not self._warm:  # Ray starts worker processes lazily: allow for that once
            limit += self.startup_seconds
        ref = self._task.remote(self._estimator_ref, number, genotype.to_json(), context)
        # Queueing time counts towards the limit here: Ray does not say when a task starts.
        self._pending[ref] = (number, time.monotonic() + limit)

    def wait(self) -> list[Outcome]:
        ray = _ray()
        if not self._pending:
            return []
        next_deadline = min(deadline for _, deadline in self._pending.values())
        timeout = None if next_deadline == float("inf") else max(0.0, next_deadline - time.monotonic())
        ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        done: list[Outcome] = []
        for ref in ready:
            self._warm = True
            number, _ = self._pending.pop(ref)
            try:
                done.append(ray.get(ref))
            except ray.exceptions.RayError as err:  # retries exhausted: worker or node lost
                done.append(Outcome(number, error=f"{type(err).__name__}: {str(err)[:300]}"))
        now = time.monotonic()
        for ref, (number, deadline) in list(self._pending.items()):
            if now >= deadline:
                ray.cancel(ref, force=True)
                del self._pending[ref]
                done.append(Outcome(number, error=f"TrialTimeout: still running {self.grace_seconds:g}"
                                                  " s after its time limit; its task was cancelled"))
        return done

    def close(self) -> None:
        ray = _ray()
        for ref in self._pending:
            ray.cancel(ref, force=True)
        self._pending.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
