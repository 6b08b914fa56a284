"""Per-query overhead of each strategy: its own ask + tell time, without the lookup.

    python benchmarks/strategy_overhead.py [--queries 300] [--seeds 5]
    python benchmarks/strategy_overhead.py --objectives val_accuracy:max,flops:min

Runs each strategy on the NAS-Bench-201 table through the ordinary study loop for
--queries queries and times only the strategy's `ask` and `tell` calls (the table lookup,
the record and the loop are excluded).  Reports the mean per query over all seeds, and
the mean over the last 50 queries (cost can grow with the history).  Torch, where a
strategy uses it, runs on one thread.  With --objectives the study is multi-objective: a
strategy that is not multi-objective itself is timed inside its ParEGO wrapper, as the
study runs it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch import registry
from archsearch.bench import parse_strategy, split_strategies
from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201Space
from archsearch.strategy.base import Strategy
from archsearch.strategy.scalarized import ParEGO
from archsearch.study import Budget, Study
from archsearch.tabular.nb201 import NB201Estimator
from archsearch.trial import FrozenTrial

DEFAULT = ("random,regularized-evolution,evolution,local-search,local-search[guided=true],"
           "reinforce,optuna:tpe")


class Timed(Strategy):
    """Wraps a strategy and records how long each ask and tell takes."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__(inner.space, inner.seed)
        self.inner = inner
        self.multi_objective = inner.multi_objective  # type: ignore[misc]
        self.ask_seconds: list[float] = []
        self.tell_seconds: list[float] = []

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        start = time.perf_counter()
        out = self.inner.ask(trials, rng)
        self.ask_seconds.append(time.perf_counter() - start)
        return out

    def tell(self, trial: FrozenTrial) -> None:
        start = time.perf_counter()
        self.inner.tell(trial)
        self.tell_seconds.append(time.perf_counter() - start)


def measure(name: str, queries: int, seed: int, objectives: str | None = None
            ) -> dict[str, Any]:
    space, estimator = NB201Space(), NB201Estimator()
    strategy, params = parse_strategy(name)  # a name or name[key=value, ...], as in bench
    inner = registry.resolve("strategy", strategy)(space, seed=seed, **params)
    if objectives and not inner.multi_objective:
        inner = ParEGO.wrap(inner)
    timed = Timed(inner)
    goals = objectives.split(",") if objectives else None
    study = Study(space, timed, estimator, seed=seed, objectives=goals)
    study.optimize(budget=Budget(trials=queries))
    asks, tells = timed.ask_seconds, timed.tell_seconds
    return {"mean": (sum(asks) + sum(tells)) / len(asks),
            "last50": (sum(asks[-50:]) + sum(tells[-50:])) / min(50, len(asks)),
            "asks": len(asks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategies", default=DEFAULT)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--objectives", help="e.g. val_accuracy:max,flops:min")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, nb201, "
          f"{args.queries} queries, seeds 0..{args.seeds - 1}"
          + (f", objectives {args.objectives}" if args.objectives else ""))
    print("| strategy | ask+tell per query, mean (ms) | mean over the last 50 queries (ms) |"
          " asks per run |")
    print("|---|---|---|---|")
    for name in split_strategies(args.strategies):
        runs = [measure(name, args.queries, seed, args.objectives) for seed in range(args.seeds)]
        print(f"| {name} | {np.mean([r['mean'] for r in runs]) * 1e3:.3f} |"
              f" {np.mean([r['last50'] for r in runs]) * 1e3:.3f} |"
              f" {np.mean([r['asks'] for r in runs]):.0f} |", flush=True)


if __name__ == "__main__":
    main()
