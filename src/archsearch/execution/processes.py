"""Local worker processes: W evaluations at once, each worker pinned to its device.

Workers are started with ``spawn`` (a fresh interpreter: no inherited CUDA context or
OpenMP pool) and live across trials, so torch is imported once per worker.  The driver
watches each busy worker's pipe and process: a worker that dies (SIGKILL, segfault, the
OOM killer) is replaced and its job reported lost (the study retries it); a job that
overruns its trial timeout plus a grace period is stopped by killing its worker.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from archsearch.estimation.base import Estimator, TrialContext
from archsearch.execution.base import Executor, Outcome, run_job
from archsearch.space.genotype import Genotype


def _worker(conn: Connection, env: dict[str, str], threads: int) -> None:
    os.environ.update(env)  # before torch is imported: CUDA_VISIBLE_DEVICES, thread counts
    estimator: Estimator = conn.recv()
    if "torch" in sys.modules:  # the estimator trains: give torch this worker's share
        sys.modules["torch"].set_num_threads(threads)
    while True:
        job = conn.recv()
        if job is None:
            return
        number, genotype_json, context = job
        conn.send(("started", number))  # the time limit counts from here, not from startup
        conn.send(run_job(estimator, number, Genotype.from_json(genotype_json), context))


@dataclass
class _Slot:
    """One worker process and the job it is running, if any."""

    env: dict[str, str]
    threads: int
    process: Any = None
    conn: Connection | None = None
    job: int | None = None  # the trial number it runs
    limit: float = float("inf")  # seconds the job may run, grace included
    deadline: float = float("inf")  # set when the worker reports that the job started


def _visible_gpus() -> tuple[int, ...]:
    """Every CUDA device torch sees here, or none (CPU only, or torch without CUDA)."""
    try:
        import torch
    except ImportError:
        return ()
    return tuple(range(torch.cuda.device_count())) if torch.cuda.is_available() else ()


class ProcessExecutor(Executor):
    """``workers`` local processes.  With GPUs (``gpus="auto"`` takes every visible one,
    or give device ids), each GPU gets ``trials_per_gpu`` workers and ``workers`` is
    ignored (packing small trials roughly triples a GPU's throughput); without, the CPU
    cores are split evenly between the workers' torch threads."""

    def __init__(
        self,
        workers: int = 2,
        gpus: Sequence[int] | str = "auto",
        trials_per_gpu: int = 1,
        threads_per_worker: int | None = None,
        grace_seconds: float = 5.0,
    ) -> None:
        if workers < 1 or trials_per_gpu < 1:
            raise ValueError("workers and trials_per_gpu must be at least 1")
        self.gpus = _visible_gpus() if gpus == "auto" else tuple(int(g) for g in gpus)
        self.capacity = len(self.gpus) * trials_per_gpu if self.gpus else workers
        cores = os.cpu_count() or 1
        threads = threads_per_worker or max(1, cores // self.capacity)
        self.grace_seconds = grace_seconds
        self._slots = []
        for i in range(self.capacity):
            env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            if self.gpus:
                env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[i // trials_per_gpu])
            self._slots.append(_Slot(env, threads))
        self._estimator: Estimator | None = None
        self._context = mp.get_context("spawn")
        self._done: list[Outcome] = []

    # -- workers ------------------------------------------------------------------------
    def _launch(self, slot: _Slot) -> None:
        parent, child = self._context.Pipe()
        slot.process = self._context.Process(
            target=_worker, args=(child, slot.env, slot.threads), daemon=True)
        slot.process.start()
        child.close()
        try:
            parent.send(self._estimator)
        except OSError:  # it died before reading anything: it cannot run trials either
            slot.process.join()
            raise RuntimeError(f"a worker process failed to start (exit code "
                               f"{slot.process.exitcode}); its error is printed above") from None
        slot.conn, slot.job, slot.deadline = parent, None, float("inf")

    def _replace(self, slot: _Slot) -> None:
        if slot.process is not None and slot.process.is_alive():
            slot.process.kill()
        if slot.process is not None:
            slot.process.join()
        if slot.conn is not None:
            slot.conn.close()
        self._launch(slot)

    def start(self, estimator: Estimator) -> None:
        self._estimator = estimator
        for slot in self._slots:
            self._launch(slot)

    # -- jobs ---------------------------------------------------------------------------
    def submit(self, number: int, genotype: Genotype, context: TrialContext) -> None:
        slot = next((s for s in self._slots if s.job is None), None)
        if slot is None:
            raise RuntimeError("every worker is busy: wait() before submitting more")
        assert slot.conn is not None
        slot.job = number
        slot.limit = float("inf") if context.timeout is None else context.timeout + self.grace_seconds
        slot.deadline = float("inf")
        slot.conn.send((number, genotype.to_json(), context))

    def wait(self) -> list[Outcome]:
        done: list[Outcome] = []
        while not done and any(s.job is not None for s in self._slots):
            done = self._poll()
        return done

    def _poll(self) -> list[Outcome]:
        busy = [s for s in self._slots if s.job is not None]
        next_deadline = min(s.deadline for s in busy)
        timeout = None if next_deadline == float("inf") else max(0.0, next_deadline - time.monotonic())
        wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=timeout)
        done: list[Outcome] = []
        for slot in busy:
            assert slot.job is not None and slot.conn is not None
            number = slot.job
            try:
                while slot.job is not None and slot.conn.poll():
                    message = slot.conn.recv()
                    if isinstance(message, Outcome):
                        done.append(message)
                        slot.job, slot.deadline = None, float("inf")
                    else:  # ("started", number)
                        slot.deadline = time.monotonic() + slot.limit
            except (EOFError, OSError):
                pass  # the worker died mid-message: handled as lost below
            if slot.job is None:
                continue
            if not slot.process.is_alive():
                code = slot.process.exitcode
                done.append(Outcome(number, error=f"worker died (exit code {code})", lost=True))
                self._replace(slot)
            elif time.monotonic() >= slot.deadline:
                done.append(Outcome(
                    number, error=f"TrialTimeout: still running {self.grace_seconds:g} s after its "
                                  "time limit; its worker was stopped"))
                self._replace(slot)
        return done

    def close(self) -> None:
        for slot in self._slots:
            if slot.conn is not None and slot.job is None and slot.process.is_alive():
                with contextlib.suppress(OSError):  # a worker that just died
                    slot.conn.send(None)
            if slot.process is not None:
                slot.process.join(timeout=2)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join()
            if slot.conn is not None:
                slot.conn.close()
            slot.process = slot.conn = slot.job = None
