"""Trials per minute with 1 and 2 workers, and the executor's own overhead per trial.

    python benchmarks/executor_throughput.py [--training-trials 12] [--tabular-trials 1000]

1. Throughput: random search on digits with real training (the multi-branch space of
   examples/digits.yaml, 5 epochs) and on the NAS-Bench-201 table (overhead-bound), for
   the serial, processes and ray executors with 1 and 2 workers.
2. Overhead: the same tabular study run through each executor, minus the serial run's
   time: what dispatch and record cost per trial (the lookup itself costs microseconds).
   Worker start-up is excluded by timing from the first finished trial.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import torch

from archsearch.data import load_dataset
from archsearch.estimation.base import Estimator
from archsearch.estimation.training import TrainingEstimator
from archsearch.execution import ProcessExecutor, SerialExecutor
from archsearch.execution.base import Executor
from archsearch.space import MultiBranchSpace, SearchSpace
from archsearch.storage import SQLiteStorage
from archsearch.strategy import RandomSearch
from archsearch.study import Budget, Study
from archsearch.trial import FrozenTrial


def _executors(workers: int) -> dict[str, Callable[[], Executor]]:
    out: dict[str, Callable[[], Executor]] = {
        "processes": lambda: ProcessExecutor(workers=workers, gpus=())}
    if workers == 1:
        out = {"serial": SerialExecutor, **out}
    try:
        from archsearch.execution.ray_executor import RayExecutor

        out["ray"] = lambda: RayExecutor(workers=workers, local_cpus=workers)
    except ImportError:
        pass
    return out


def timed_study(space: SearchSpace, estimator: Estimator, trials: int, executor: Executor,
                storage_path: str) -> dict[str, float]:
    """Trials per minute, timed from the first finished trial (start-up excluded)."""
    if os.path.exists(storage_path):
        os.remove(storage_path)
    study = Study(space, RandomSearch(space), estimator, SQLiteStorage(storage_path), seed=0)
    marks: list[float] = []

    def mark(_: Study, trial: FrozenTrial) -> None:
        marks.append(time.perf_counter())

    start = time.perf_counter()
    study.optimize(budget=Budget(trials=trials), callbacks=[mark], executor=executor)
    steady = (len(marks) - 1) / (marks[-1] - marks[0]) * 60 if len(marks) > 1 else float("nan")
    return {"trials": len(study.trials), "wall": time.perf_counter() - start,
            "per_minute": steady, "seconds_per_trial": 60 / steady,
            "failed": sum(t.error is not None for t in study.trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--training-trials", type=int, default=12)
    parser.add_argument("--tabular-trials", type=int, default=1000)
    parser.add_argument("--storage", default="/tmp/archsearch-executor-bench.db")
    args = parser.parse_args()
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, seed 0, one run per row")

    from archsearch.space.nb201 import NB201Space
    from archsearch.tabular.nb201 import NB201Estimator

    digits = load_dataset("digits")
    image_space = MultiBranchSpace("image", max_depth=4, widths=(16, 32, 64))
    problems: dict[str, tuple[SearchSpace, Estimator, int]] = {
        "digits (training, 5 epochs)": (
            image_space, TrainingEstimator(digits, image_space, epochs=5, batch_size=64, lr=0.003,
                                           device="cpu"), args.training_trials),
        "nb201 (table)": (NB201Space(), NB201Estimator(), args.tabular_trials),
    }
    rows: list[dict[str, Any]] = []
    for problem, (space, estimator, trials) in problems.items():
        for workers in (1, 2):
            for name, make in _executors(workers).items():
                if name == "serial":  # one thread per worker elsewhere; same here
                    torch.set_num_threads(2)
                r = timed_study(space, estimator, trials, make(), args.storage)
                rows.append({"problem": problem, "executor": name, "workers": workers, **r})
                print(f"{problem:28s} {name:9s} W={workers}  {r['per_minute']:9.1f} trials/min "
                      f"({r['trials']} trials, {r['failed']} failed, {r['wall']:.1f} s wall)",
                      flush=True)
    print("\n| problem | executor | workers | trials/min | s/trial | trials | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['problem']} | {r['executor']} | {r['workers']} | {r['per_minute']:.1f} |"
              f" {r['seconds_per_trial']:.4f} | {r['trials']} | {r['wall']:.1f} |")
    serial = next(r for r in rows if r["problem"].startswith("nb201") and r["executor"] == "serial")
    print("\nexecutor overhead per tabular trial (s/trial minus serial's "
          f"{serial['seconds_per_trial'] * 1e3:.3f} ms, which is the study loop and SQLite record):")
    for r in rows:
        if r["problem"].startswith("nb201") and r["executor"] != "serial":
            extra = (r["seconds_per_trial"] - serial["seconds_per_trial"]) * 1e3
            print(f"- {r['executor']}, {r['workers']} worker(s): {extra:.3f} ms per trial")


if __name__ == "__main__":
    main()
