"""How much does packing several small trials on one GPU help?

    python benchmarks/gpu_packing.py --data PATH/cifar10-jpeg.tar.xz [--packing 1,2,4,8]

For each packing level k, the `processes` executor runs k trials at once on GPU 0
(trials_per_gpu=k) of the NAS-Bench-201 network (C=16, N=5 unless --channels/--cells),
each training on a fixed subset of CIFAR-10 (JPEG copy) with bf16 autocast.  A trial's
own training speed is images*epochs/train_seconds; with k trials always in flight the
GPU's throughput is k times the median of that.  Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import numpy as np
import torch

from archsearch.data import load_dataset
from archsearch.data.dataset import Dataset
from archsearch.estimation.training import TrainingEstimator
from archsearch.execution import ProcessExecutor
from archsearch.space.nb201 import NB201Space
from archsearch.strategy import RandomSearch
from archsearch.study import Budget, Study


def subset(data: Dataset, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    tr = rng.permutation(len(data.y_train))[:n_train]
    te = rng.permutation(len(data.y_test))[:n_test]
    return Dataset(data.name, data.x_train[tr], data.y_train[tr], data.x_test[te], data.y_test[te],
                   data.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--packing", default="1,2,4,8")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--trials-per-level", type=int, default=0,
                        help="trials per packing level (default: 2k, at least 4)")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return
    data = subset(load_dataset(args.data), args.train_images, 2_000)
    space = NB201Space(channels=args.channels, cells_per_stage=args.cells)
    fit_images = int(round(args.train_images * 0.8))  # the estimator's default 20% validation
    print(f"{datetime.date.today()}, {torch.cuda.get_device_name(0)}, torch {torch.__version__}; "
          f"{type(space).__name__}, {fit_images} training images x {args.epochs} epochs per trial, "
          f"batch {args.batch_size}, bf16, random search seed 0")
    print("| trials per GPU | trials | failed | median s/trial | images/s per trial | GPU images/s |"
          " wall s |")
    print("|---|---|---|---|---|---|---|")
    for k in (int(x) for x in args.packing.split(",")):
        estimator = TrainingEstimator(data, space, epochs=args.epochs, batch_size=args.batch_size,
                                      optimizer="sgd", lr=0.1, weight_decay=5e-4, device="cuda",
                                      bf16=True, latency_repeats=2)
        study = Study(space, RandomSearch(space, seed=0), estimator, seed=0)
        trials = args.trials_per_level or max(4, 2 * k)
        start = time.perf_counter()
        study.optimize(budget=Budget(trials=trials),
                       executor=ProcessExecutor(gpus=[0], trials_per_gpu=k))
        wall = time.perf_counter() - start
        done = [t for t in study.trials if t.error is None]
        if not done:
            print(f"| {k} | {len(study.trials)} | all failed: {study.trials[0].error} |")
            continue
        seconds = statistics.median(t.metrics["train_seconds"] for t in done)
        per_trial = fit_images * args.epochs / seconds
        print(f"| {k} | {len(study.trials)} | {len(study.trials) - len(done)} | {seconds:.2f} |"
              f" {per_trial:,.0f} | {k * per_trial:,.0f} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
