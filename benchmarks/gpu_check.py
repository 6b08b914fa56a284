"""A short search on CUDA: does the training estimator run on a GPU, and how fast?

Run on a machine with a GPU:  python benchmarks/gpu_check.py [--trials 8]
It runs random search over the multi-branch image space on digits with the training
estimator on `cuda` (fp32, then bf16 autocast), and prints one Markdown table row per
precision.  Without CUDA it says so and exits 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import torch

from archsearch.data import load_dataset
from archsearch.estimation.training import TrainingEstimator
from archsearch.space import MultiBranchSpace
from archsearch.strategy import RandomSearch
from archsearch.study import Budget, Study


def run(trials: int, bf16: bool, seed: int) -> dict[str, float]:
    data = load_dataset("digits")
    space = MultiBranchSpace("image", max_depth=4, widths=(16, 32, 64))
    estimator = TrainingEstimator(data, space, epochs=15, batch_size=64, lr=0.003,
                                  weight_decay=1e-4, device="cuda", bf16=bf16)
    study = Study(space, RandomSearch(space, seed=seed), estimator, seed=seed)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    study.optimize(budget=Budget(trials=trials))
    wall = time.perf_counter() - start
    done = [t for t in study.trials if t.score is not None]
    best = study.best_trial
    assert best is not None, [t.error for t in study.trials]
    return {
        "trials": len(study.trials), "failed": len(study.trials) - len(done), "wall_s": wall,
        "median_train_s": statistics.median(t.metrics["train_seconds"] for t in done),
        "best_val": best.metrics["val_accuracy"], "best_test": best.metrics["test_accuracy"],
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return
    print(f"{datetime.date.today()}, {torch.cuda.get_device_name(0)}, torch {torch.__version__},"
          f" digits, multi-branch space, random search, seed {args.seed}, {args.trials} trials")
    print("| precision | trials | failed | wall s | median train s/trial | best val | best test |"
          " peak GPU MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for bf16 in (False, True):
        r = run(args.trials, bf16, args.seed)
        print(f"| {'bf16' if bf16 else 'fp32'} | {r['trials']} | {r['failed']} | {r['wall_s']:.1f} |"
              f" {r['median_train_s']:.2f} | {r['best_val']:.4f} | {r['best_test']:.4f} |"
              f" {r['peak_gpu_mib']:.0f} |")


if __name__ == "__main__":
    main()
