"""How well do the zero-cost proxies rank NAS-Bench-201 cells?  Spearman and Kendall
correlation of every proxy (``archsearch.estimation.zero_cost``) with the table accuracy.

    python3 benchmarks/proxy_ranking.py                       # 1,000 cells, C=16, N=5
    python3 benchmarks/proxy_ranking.py --cells 50 --out build/proxy-smoke

A fixed sample of ``--cells`` cells is drawn without replacement by ``--seed`` from the
15,625; each is built as the CIFAR-10 network (``--channels`` C, ``--cells-per-stage`` N;
the benchmark's own network is C=16, N=5) at the initialisation seeded by the cell's
index, and scored by every proxy on one minibatch of ``--batch-size`` CIFAR-10 training
images (the zero-cost estimator's ``batch(seed)``: the fit split's first examples in an
order drawn from the same seed), each proxy on its own copy of the network, exactly as
``ZeroCostEstimator.evaluate`` would.  The accuracy is the table's ``val_accuracy``
(``NB201Estimator``: AnalogNAS-Bench's baseline CIFAR-10 accuracy, which is measured on
the test set; NAS-Bench-201's own accuracies are not in the table).

Resumable: the cells are scored in chunks of ``--chunk``, each saved as
``chunk-NNNN.json`` under ``--out``; a rerun with the same settings skips the chunks
already there (other settings in an existing chunk are an error, not a mix).  The
summary (``summary.json`` and the printed table) is computed over every chunk present,
so a partial run reports on what it has.

CIFAR-10 is read from ``--data`` (default ``../shared/datasets/cifar10-jpeg.tar.xz``
beside the repository); without it the script exits and says so.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.xz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=1000, help="cells sampled (1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample (0)")
    parser.add_argument("--chunk", type=int, default=25, help="cells per saved chunk (25)")
    parser.add_argument("--shard", type=parse_shard, default=(0, 1),
                        help="K/N: compute every N-th chunk from the K-th, so that N "
                             "processes share --out (0/1)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "proxy-ranking")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--channels", type=int, default=16, help="C (16)")
    parser.add_argument("--cells-per-stage", type=int, default=5, help="N (5)")
    parser.add_argument("--batch-size", type=int, default=64, help="minibatch (64)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default)")
    parser.add_argument("--proxies", default="all",
                        help="comma-separated proxy names, or all")
    return parser.parse_args(argv)


def sample_cells(n: int, seed: int) -> list[int]:
    from archsearch.space.nb201 import NB201_SIZE

    if not 1 <= n <= NB201_SIZE:
        raise SystemExit(f"--cells must be in 1..{NB201_SIZE}, got {n}")
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(NB201_SIZE, size=n, replace=False)]


def proxy_scores(estimator: Any, indices: list[int],
                 proxies: list[str]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every proxy of every cell in ``indices`` and its seconds: the network at the
    initialisation seeded by the cell's index and the minibatch of that seed, each proxy
    on its own copy, as ``ZeroCostEstimator.evaluate`` of a trial seeded so."""
    import torch

    from archsearch.estimation.zero_cost import PROXIES

    space = estimator.space
    scores: dict[str, list[float]] = {p: [] for p in proxies}
    seconds: dict[str, list[float]] = {p: [] for p in proxies}
    for index in indices:
        model = estimator.network(space.from_index(index), index)
        x, y = estimator.batch(index)
        for name in proxies:
            work = copy.deepcopy(model)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(index)
                start = time.perf_counter()
                value = PROXIES[name](work, x, y)
                seconds[name].append(time.perf_counter() - start)
            scores[name].append(value)
    return scores, seconds


def score_chunk(estimator: Any, indices: list[int], proxies: list[str],
                table: Any) -> dict[str, Any]:
    """Every proxy of every cell in ``indices``, its seconds, and the table accuracy."""
    scores, seconds = proxy_scores(estimator, indices, proxies)
    accuracy = [float(table.lookup_index(index)["val_accuracy"]) for index in indices]
    return {"indices": indices, "scores": scores, "seconds": seconds,
            "val_accuracy": accuracy}


def correlations(values: Any, truth: Any) -> dict[str, Any]:
    """Spearman and Kendall of ``values`` against ``truth`` over the cells scored."""
    from scipy.stats import kendalltau, spearmanr

    values = np.asarray(values, dtype=float)
    truth = np.asarray(truth, dtype=float)
    ok = ~np.isnan(values)  # +-inf ranks (naswot's singular K); NaN cannot
    rho = tau = math.nan
    if ok.sum() > 2:
        rho = float(spearmanr(values[ok], truth[ok]).statistic)
        tau = float(kendalltau(values[ok], truth[ok]).statistic)
    return {"spearman": rho, "kendall": tau, "scored": int(ok.sum())}


def summarise(chunks: list[dict[str, Any]], proxies: list[str],
              only: list[int] | None = None) -> dict[str, Any]:
    """Correlations over every chunk's cells, or over the cells in ``only``."""
    indices = np.concatenate([c["indices"] for c in chunks])
    keep = np.isin(indices, only) if only is not None else np.ones(indices.size, bool)
    accuracy = np.concatenate([c["val_accuracy"] for c in chunks])[keep]
    rows: dict[str, Any] = {}
    for name in proxies:
        values = np.concatenate([c["scores"][name] for c in chunks]).astype(float)[keep]
        secs = np.concatenate([c["seconds"][name] for c in chunks]).astype(float)[keep]
        rows[name] = {**correlations(values, accuracy),
                      "seconds_per_cell": float(secs.mean())}
    return {"cells": int(accuracy.size), "proxies": rows}


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (``--shard``): this process computes chunks K, K+N, K+2N, ... so that N
    processes can fill one ``--out`` together; a run with ``0/1`` (the default) computes
    what is missing and summarises every chunk."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard takes K/N, e.g. 0/2; got {text!r}") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard K/N needs 0 <= K < N; got {text!r}")
    return k, n


def run_chunks(out: Path, indices: list[int], size: int, config: dict[str, Any],
               prepare: Callable[[], Any], compute: Callable[[Any, list[int]], dict[str, Any]],
               shard: tuple[int, int] = (0, 1)) -> list[dict[str, Any]]:
    """Every chunk of ``size`` cells of ``indices``: read from ``out/chunk-NNNN.json`` when
    saved with the same ``config``, else ``compute(prepare(), part)`` and saved whole (a
    killed run leaves no half-written chunk).  ``prepare`` runs once, only if needed.
    With ``shard=(k, n)`` only chunks ``c % n == k`` are computed; the others are read
    when present (the summary is over the chunks present)."""
    out.mkdir(parents=True, exist_ok=True)
    work = None
    chunks = []
    n_chunks = math.ceil(len(indices) / size)
    for c in range(n_chunks):
        part = indices[c * size:(c + 1) * size]
        path = out / f"chunk-{c:04d}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved["config"] != config or saved["indices"] != part:
                raise SystemExit(f"{path} was written with other settings "
                                 f"({saved['config']}); use another --out")
            chunks.append(saved)
            continue
        if c % shard[1] != shard[0]:
            continue
        if work is None:
            t0 = time.perf_counter()
            work = prepare()
            print(f"data ready in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        result = {"config": config, **compute(work, part)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
        chunks.append(result)
        print(f"chunk {c + 1}/{n_chunks}: {len(part)} cells in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    return chunks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        print(f"proxy_ranking: no CIFAR-10 at {args.data} (give --data: an image-folder "
              "archive or .npz that archsearch.data.load_dataset reads)", file=sys.stderr)
        return 2
    import torch

    from archsearch.data import load_dataset
    from archsearch.estimation.zero_cost import PROXIES, ZeroCostEstimator
    from archsearch.space.nb201 import NB201Space
    from archsearch.tabular.nb201 import NB201Estimator

    proxies = list(PROXIES) if args.proxies == "all" else args.proxies.split(",")
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown:
        raise SystemExit(f"unknown proxies {unknown}; choose from {list(PROXIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"seed": args.seed, "channels": args.channels,
              "cells_per_stage": args.cells_per_stage, "batch_size": args.batch_size,
              "proxies": proxies, "data": args.data.name}
    indices = sample_cells(args.cells, args.seed)
    table = NB201Estimator()

    def prepare() -> Any:
        space = NB201Space(channels=args.channels, cells_per_stage=args.cells_per_stage)
        estimator = ZeroCostEstimator(load_dataset(args.data), space,
                                      batch_size=args.batch_size, device=args.device)
        estimator.batch(0)  # the data on the device, once
        return estimator

    chunks = run_chunks(args.out, indices, args.chunk, config, prepare,
                        lambda est, part: score_chunk(est, part, proxies, table), args.shard)
    summary = {"config": config, **summarise(chunks, proxies)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{summary['cells']} NB201 cells (C={args.channels}, N={args.cells_per_stage}), "
          f"batch {args.batch_size}, vs the table's val_accuracy")
    print(f"{'proxy':<10} {'spearman':>9} {'kendall':>8} {'s/cell':>8} {'scored':>7}")
    for name, row in summary["proxies"].items():
        print(f"{name:<10} {row['spearman']:>9.3f} {row['kendall']:>8.3f} "
              f"{row['seconds_per_cell']:>8.3f} {row['scored']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
