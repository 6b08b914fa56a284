"""How well does short training rank NAS-Bench-201 cells?  Spearman and Kendall
correlation of the validation accuracy after 1, 3 and 10 epochs with the table accuracy,
and the seconds each fidelity costs: the low-fidelity half of the rank study whose proxy
half is ``proxy_ranking.py``.

    python3 benchmarks/training_ranking.py --cells 200 --out build/training-ranking

The cells are the first ``--cells`` of ``proxy_ranking.py``'s seeded sample (``--seed``;
the sample is in random order, so a prefix is itself a random sample), each trained as the
search benchmark (``fidelity_search.py``) trains: the NB201 cell in a network of
``--channels`` C and ``--cells-per-stage`` N, CIFAR-10 (JPEG copy) resized to
``--image-size``, a fixed stratified subset of ``--train-images`` training and 1,000
validation images, Adam lr 0.003, weight decay 1e-4 (``--optimizer``, ``--lr``,
``--weight-decay``), batch 128, cosine over ``--epochs``, one torch thread, initialisation
seeded by the cell's index.

A fidelity of k epochs is what the multi-fidelity drivers see: the first k epochs of that
one schedule.  Each cell is trained to the first fidelity, continued from its checkpoint to
the next, and so on (``TrialContext.epochs`` / ``checkpoint``, the path Hyperband takes);
the seconds of fidelity k are the wall clock of every call up to it (training, the
per-epoch validation, the checkpoint's save and load; at the last fidelity also the test
accuracy and one latency measurement, as a finished trial pays).

Resumable in chunks of ``--chunk`` cells (``chunk-NNNN.json`` under ``--out``); the
summary is over the chunks present.  Two processes with ``--shard 0/2`` and ``--shard 1/2``
share the chunks of one ``--out`` (one core each); a last run without it summarises.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_ranking import (  # noqa: E402
    DEFAULT_DATA,
    ROOT,
    correlations,
    parse_shard,
    run_chunks,
    sample_cells,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=200,
                        help="first cells of the 1,000-cell sample (200)")
    parser.add_argument("--sample", type=int, default=1000,
                        help="size of the sample they are taken from (1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample (0)")
    parser.add_argument("--fidelities", default="1,3,10", help="epochs reported (1,3,10)")
    parser.add_argument("--epochs", type=int, default=10, help="the full schedule (10)")
    parser.add_argument("--chunk", type=int, default=10, help="cells per saved chunk (10)")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1),
                        help="K/N: compute every N-th chunk from the K-th, so that N "
                             "processes share --out (0/1)")
    parser.add_argument("--channels", type=int, default=8, help="C (8)")
    parser.add_argument("--cells-per-stage", type=int, default=1, help="N (1)")
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--optimizer", default="adam", help="adam, adamw or sgd (adam)")
    parser.add_argument("--lr", type=float, default=0.003, help="(0.003)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="(1e-4)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "training-ranking")
    return parser.parse_args(argv)


def make_estimator(args: argparse.Namespace) -> Any:
    """The search benchmark's training estimator at these settings."""
    from archsearch.data import load_dataset
    from archsearch.estimation.training import TrainingEstimator
    from archsearch.space.nb201 import NB201Space

    dataset = load_dataset(args.data, image_size=None if args.image_size == 32
                           else args.image_size)
    val_fraction = 1000 / 50000
    fit = dataset.y_train.shape[0] * (1 - val_fraction)
    space = NB201Space(channels=args.channels, cells_per_stage=args.cells_per_stage)
    return TrainingEstimator(
        dataset, space, epochs=args.epochs, batch_size=128, optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, val_fraction=val_fraction,
        train_fraction=min(1.0, args.train_images / fit), latency_repeats=1, device="cpu")


def train_chunk(estimator: Any, indices: list[int], fidelities: list[int],
                table: Any) -> dict[str, Any]:
    """Each cell trained through ``fidelities``: accuracy and cumulative seconds at each."""
    from archsearch.estimation.base import TrialContext

    accuracy: dict[str, list[float]] = {str(k): [] for k in fidelities}
    seconds: dict[str, list[float]] = {str(k): [] for k in fidelities}
    truth = []
    for index in indices:
        genotype = estimator.space.from_index(index)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = str(Path(tmp) / "cell.pt")
            spent = 0.0
            for k in fidelities:
                start = time.perf_counter()
                result = estimator.evaluate(genotype, TrialContext(
                    number=index, seed=index, epochs=k, checkpoint=checkpoint))
                spent += time.perf_counter() - start
                accuracy[str(k)].append(float(result.metrics["val_accuracy"]))
                seconds[str(k)].append(spent)
        truth.append(float(table.lookup_index(index)["val_accuracy"]))
    return {"indices": indices, "accuracy": accuracy, "seconds": seconds,
            "val_accuracy": truth}


def summarise(chunks: list[dict[str, Any]], fidelities: list[int]) -> dict[str, Any]:
    truth = np.concatenate([c["val_accuracy"] for c in chunks])
    rows = {}
    last = np.concatenate([c["accuracy"][str(fidelities[-1])] for c in chunks])
    for k in fidelities:
        values = np.concatenate([c["accuracy"][str(k)] for c in chunks])
        secs = np.concatenate([c["seconds"][str(k)] for c in chunks])
        # Against the last fidelity: what a scheduler's rung at k needs to keep the right cells.
        rows[f"train-{k}ep"] = {**correlations(values, truth), "epochs": k,
                                "spearman_to_last": correlations(values, last)["spearman"],
                                "seconds_per_cell": float(secs.mean())}
    return {"cells": int(truth.size), "indices": [i for c in chunks for i in c["indices"]],
            "estimators": rows}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        print(f"training_ranking: no CIFAR-10 at {args.data} (give --data)", file=sys.stderr)
        return 2
    fidelities = sorted({int(k) for k in args.fidelities.split(",")})
    if not fidelities or fidelities[0] < 1 or fidelities[-1] > args.epochs:
        raise SystemExit(f"--fidelities must lie in 1..{args.epochs}")
    if not 1 <= args.cells <= args.sample:
        raise SystemExit(f"--cells must be in 1..{args.sample}")
    import torch

    from archsearch.tabular.nb201 import NB201Estimator

    torch.set_num_threads(1)
    config = {"seed": args.seed, "sample": args.sample, "fidelities": fidelities,
              "epochs": args.epochs, "channels": args.channels,
              "cells_per_stage": args.cells_per_stage, "train_images": args.train_images,
              "image_size": args.image_size, "data": args.data.name}
    if (args.optimizer, args.lr, args.weight_decay) != ("adam", 0.003, 1e-4):
        # Only when not the default: chunks saved before these flags existed stay valid.
        config["optimizer"] = {"name": args.optimizer, "lr": args.lr,
                               "weight_decay": args.weight_decay}
    indices = sample_cells(args.sample, args.seed)[:args.cells]
    table = NB201Estimator()
    chunks = run_chunks(args.out, indices, args.chunk, config, lambda: make_estimator(args),
                        lambda est, part: train_chunk(est, part, fidelities, table), args.shard)
    summary = {"config": config, **summarise(chunks, fidelities)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{summary['cells']} NB201 cells (C={args.channels}, N={args.cells_per_stage}, "
          f"{args.image_size}px, {args.train_images} images), vs the table's val_accuracy")
    print(f"{'estimator':<12} {'spearman':>9} {'kendall':>8} {'s/cell':>8} "
          f"{'spearman to ' + str(fidelities[-1]) + ' ep':>18}")
    for name, row in summary["estimators"].items():
        print(f"{name:<12} {row['spearman']:>9.3f} {row['kendall']:>8.3f} "
              f"{row['seconds_per_cell']:>8.2f} {row['spearman_to_last']:>18.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
