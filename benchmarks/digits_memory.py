"""Does the process grow from trial to trial?  Resident memory after each of N trials.

    python benchmarks/digits_memory.py --trials 30

Runs examples/digits.yaml's search (same space, strategy and estimator settings) in this
process for N trials and prints the resident set size (VmRSS) after each trial, the
growth from trial 5 to the last, and a least-squares slope in MiB per trial.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

import numpy as np
import torch

from archsearch.build import build_components
from archsearch.config import load_config
from archsearch.study import Budget, Study
from archsearch.trial import FrozenTrial

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "digits.yaml")
    args = parser.parse_args()
    config = load_config(args.config)
    parts = build_components(config)
    study = Study(parts.space, parts.strategy, parts.estimator, seed=config.study.seed)
    samples: list[float] = []

    def record(_: Study, trial: FrozenTrial) -> None:
        samples.append(rss_mib())
        print(f"trial {trial.number:>3}  rss {samples[-1]:8.1f} MiB  {trial.state.value}",
              flush=True)

    study.optimize(budget=Budget(trials=args.trials), callbacks=[record])
    tail = np.array(samples[5:])
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 1 else 0.0
    print(f"\n{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.trials} trials, "
          f"seed {config.study.seed}")
    print(f"rss after trial 5: {samples[min(5, len(samples) - 1)]:.1f} MiB, "
          f"after the last: {samples[-1]:.1f} MiB, max {max(samples):.1f} MiB, "
          f"slope after trial 5: {slope:+.3f} MiB/trial")


if __name__ == "__main__":
    main()
