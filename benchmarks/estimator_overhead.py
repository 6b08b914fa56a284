"""How much slower is TrainingEstimator's training loop than a minimal hand-written one?

Both train the same network (``build_network``, same seed) on the same device tensors
(the estimator's own standardised digits split), with the same optimizer, batch size
and number of steps; the hand loop is just perm -> index -> forward -> loss -> backward
-> step.  The estimator's time is its ``train_seconds`` metric (its training loop:
schedule, loss bookkeeping, the per-epoch finiteness check and the timeout check
included); ``evaluate()`` also scores validation and test sets and measures FLOPs and
latency, shown separately.  Runs alternate between the two to spread machine noise.

    python benchmarks/estimator_overhead.py [--repeats 5] [--epochs 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from archsearch.data.dataset import Dataset
from archsearch.estimation import TrainingEstimator, TrialContext
from archsearch.estimation.cost import count_parameters
from archsearch.nn import build_network
from archsearch.space import ChainSpace, Genotype, MultiBranchSpace


def _layer(i: int, op: str, width: int = 0, act: str = "relu", norm: str = "batchnorm") -> dict:
    if not width:
        return {f"layer{i}.op": op}
    return {f"layer{i}.op": op, f"layer{i}.width": width, f"layer{i}.activation": act,
            f"layer{i}.norm": norm}


IMAGE_CHAIN = Genotype.of({"depth": 3, **_layer(0, "conv3x3", 32), **_layer(1, "sepconv3x3", 64),
                           **_layer(2, "maxpool3x3")})
IMAGE_BRANCHED = Genotype.of({
    "depth": 3, **_layer(0, "conv3x3", 16), **_layer(1, "conv5x5", 32, "gelu"),
    **_layer(2, "conv3x3", 32), "layer1.skip0": False, "layer2.skip0": True,
    "layer2.skip1": True, "layer2.merge": "concat",
})
MLP = Genotype.of({"depth": 2, **_layer(0, "dense", 128), **_layer(1, "dense", 64, "gelu",
                                                                    "layernorm")})


def digits(flat: bool) -> Dataset:
    data = load_digits()
    x = (data.images[:, None] / 16).astype(np.float32)
    if flat:
        x = x.reshape(len(x), -1)
    y = data.target.astype(np.int64)
    # Last 297 as the test set; the estimator carves validation from the 1500 train.
    return Dataset("digits", x[:1500], y[:1500], x[1500:], y[1500:],
                   tuple(str(c) for c in range(10)))


def hand_loop(est: TrainingEstimator, genotype: Genotype, seed: int) -> float:
    """Seconds of a plain training loop over the estimator's own fit tensors."""
    data = est._data()  # the very tensors the estimator trains on
    x, y = data.x_fit, data.y_fit
    torch.manual_seed(seed)
    model = build_network(est.space.layers(genotype), est.dataset.input_shape,
                          est.dataset.num_classes).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=est.lr)
    n, batch = x.shape[0], est.batch_size
    model.train()
    start = time.perf_counter()
    for _ in range(est.epochs):
        perm = torch.randperm(n, device=x.device)
        for step in range(n // batch):  # the estimator drops the last partial batch too
            idx = perm[step * batch:(step + 1) * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cases = [
        ("image chain: conv3x3-sepconv3x3-maxpool", ChainSpace("image"), IMAGE_CHAIN, False),
        ("image multi-branch: concat of 3 nodes", MultiBranchSpace("image"), IMAGE_BRANCHED, False),
        ("vector MLP: dense128-dense64", ChainSpace("vector"), MLP, True),
    ]
    rows = []
    for name, space, genotype, flat in cases:
        est = TrainingEstimator(digits(flat), space, epochs=args.epochs,
                                batch_size=args.batch_size, device=args.device)
        hand_loop(est, genotype, 0)  # warm-up: data to device, kernels, allocator
        est.evaluate(genotype, TrialContext(0, 0))
        hand, ours, whole = [], [], []
        for r in range(args.repeats):
            for first in ((True, False) if r % 2 == 0 else (False, True)):
                if first:
                    hand.append(hand_loop(est, genotype, r) / args.epochs)
                else:
                    start = time.perf_counter()
                    metrics = est.evaluate(genotype, TrialContext(r, r))
                    whole.append(time.perf_counter() - start)
                    ours.append(metrics["train_seconds"] / args.epochs)
        model = build_network(space.layers(genotype), est.dataset.input_shape, 10)
        steps = est._data().x_fit.shape[0] // args.batch_size
        h, o = statistics.median(hand), statistics.median(ours)
        rows.append((name, count_parameters(model), steps, h, o, o / h, statistics.median(whole)))

    device = est._data().device
    print(f"\n{datetime.date.today()} | torch {torch.__version__} | device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}"
          f" | {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}),"
          f" {torch.get_num_threads()} torch threads | load average {os.getloadavg()[0]:.1f}"
          f" | digits, {args.epochs} epochs, batch {args.batch_size}, median of {args.repeats}\n")
    print("| model | params | steps/epoch | hand loop s/epoch | estimator s/epoch | ratio "
          "| evaluate() s/trial |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, params, steps, h, o, ratio, w in rows:
        print(f"| {name} | {params:,} | {steps} | {h:.4f} | {o:.4f} | {ratio:.3f} | {w:.3f} |")


if __name__ == "__main__":
    main()
