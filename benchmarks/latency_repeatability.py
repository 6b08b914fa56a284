"""How repeatable is a latency figure on this machine?

Fixed architectures (sampled by a fixed seed) of two spaces are measured with
``latency_stats`` (the training estimator's defaults: CPU, batch 1, 1 thread, 5 warm-up
and ``--repeats`` 20 timed passes, median) ``--calls`` times each, in separate calls.  One *pass*
measures every architecture once, in a shuffled order, so slow drifts of the machine's
load spread over all architectures instead of landing on one.  Reported per space:

* the coefficient of variation (stdev / mean) of an architecture's median across its
  calls: median and worst over the architectures;
* the within-call spread (interquartile range / median), median over all calls;
* the Spearman rank correlation of the architectures' latencies between two passes:
  passes 1 and 2, and the lowest over all pairs of passes;
* the range of medians across architectures (how far apart the latencies are to rank).

    python benchmarks/latency_repeatability.py [--archs 20] [--calls 5] [--repeats 20] [--log DIR]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.estimation.cost import latency_stats
from archsearch.space import MultiBranchSpace
from archsearch.space.nb201 import NB201Space

SPACES: dict[str, tuple[Any, tuple[int, ...]]] = {
    "multi-branch (digits 1x8x8)": (MultiBranchSpace("image"), (1, 8, 8)),
    "nb201 C=16 N=5 (3x32x32)": (NB201Space(channels=16, cells_per_stage=5), (3, 32, 32)),
}


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    a = np.asarray(values)
    order = a.argsort(kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def measure(archs: int, calls: int, repeats: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    models: list[tuple[str, int, torch.nn.Module, tuple[int, ...]]] = []
    for name, (space, shape) in SPACES.items():
        seen: set[Any] = set()
        while len(seen) < archs:
            genotype = space.sample(rng)
            if genotype in seen:
                continue
            seen.add(genotype)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(len(models))
                models.append((name, len(seen) - 1, space.build_network(genotype, shape, 10),
                               shape))
    # medians[space][arch][pass], rel_spread[space]: IQR / median of every call
    medians: dict[str, list[list[float]]] = {n: [[] for _ in range(archs)] for n in SPACES}
    rel_spread: dict[str, list[float]] = {n: [] for n in SPACES}
    for _ in range(calls):
        for k in rng.permutation(len(models)):
            name, i, model, shape = models[k]
            result = latency_stats(model, shape, repeats=repeats)  # else the estimator's defaults
            medians[name][i].append(result.median)
            rel_spread[name].append(result.spread / result.median)
    figures: dict[str, Any] = {}
    for name in SPACES:
        per_arch = medians[name]
        cvs = [statistics.stdev(m) / statistics.mean(m) for m in per_arch]
        passes = [[per_arch[i][p] for i in range(archs)] for p in range(calls)]
        rhos = [spearman(passes[a], passes[b])
                for a, b in itertools.combinations(range(calls), 2)]
        typical = [statistics.median(m) for m in per_arch]
        figures[name] = {
            "cv_median": statistics.median(cvs),
            "cv_max": max(cvs),
            "within_call_iqr_over_median": statistics.median(rel_spread[name]),
            "spearman_pass1_pass2": rhos[0],
            "spearman_min_over_pairs": min(rhos),
            "spearman_mean_over_pairs": statistics.mean(rhos),
            "latency_min_ms": 1e3 * min(typical),
            "latency_max_ms": 1e3 * max(typical),
            "medians_ms": [[1e3 * v for v in m] for m in per_arch],
        }
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [
        "| space | latencies (ms, median per arch) | CV across calls: median / worst "
        "| within-call IQR/median | Spearman pass 1 vs 2 | Spearman worst pair |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| {name} | {f['latency_min_ms']:.2f} - {f['latency_max_ms']:.2f} "
            f"| {100 * f['cv_median']:.1f}% / {100 * f['cv_max']:.1f}% "
            f"| {100 * f['within_call_iqr_over_median']:.1f}% "
            f"| {f['spearman_pass1_pass2']:.3f} | {f['spearman_min_over_pairs']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=20, help="architectures per space")
    parser.add_argument("--calls", type=int, default=5, help="separate calls per architecture")
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=None, help="folder for a markdown + json log")
    args = parser.parse_args()
    if args.calls < 2 or args.archs < 3 or args.repeats < 1:
        parser.error("need --calls >= 2, --archs >= 3 and --repeats >= 1")
    start = time.perf_counter()
    load_before = os.getloadavg()
    figures = measure(args.archs, args.calls, args.repeats, args.seed)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    text = table(figures)
    print(text)
    print(f"\n{seconds:.0f} s")
    if args.log is None:
        return
    args.log.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "settings": f"latency_stats: cpu, batch 1, 1 thread, 5 warm-up + {args.repeats} "
                    f"timed passes; {args.archs} archs per space, {args.calls} calls each, "
                    f"seed {args.seed}",
        "load_average_1m_before_after": [load_before[0], load_after[0]],
        "seconds": seconds,
    }
    stem = f"latency_repeatability_repeats{args.repeats}"
    (args.log / f"{stem}.json").write_text(
        json.dumps({**meta, "figures": figures}, indent=1) + "\n")
    header = "\n".join(f"- {k}: {v}" for k, v in meta.items())
    (args.log / f"{stem}.md").write_text(
        f"# Latency repeatability\n\n{header}\n\n{text}\n")


if __name__ == "__main__":
    main()
