"""Search NAS-Bench-201 with real training on CIFAR-10 (JPEG copy) under a fixed wall
clock, and judge each search's chosen cell by the table.

    python3 benchmarks/fidelity_search.py --seeds 5 --seconds 600 --out build/fidelity-search

Every method searches the trainable ``nb201`` space (the NAS-Bench-201 cell in a network
of ``--channels`` C and ``--cells-per-stage`` N) with the training estimator (Adam, lr
0.003, weight decay 1e-4, batch 128, cosine over ``--epochs``) on a fixed subset of the
CIFAR-10 training images (``--train-images``, stratified, the same for all, resized to
``--image-size``) and ``--val-images`` validation images (1,000), for ``--seconds`` of
wall clock each, one thread per search, ``--workers`` searches at once, on ``--device``
(``benchmarks/gpu_fidelity.sh`` runs it on a GPU with larger networks):

* ``random``: random search, every cell trained the full ``--epochs``;
* ``regularized-evolution``: aging evolution (population 10, tournament 3), full training;
* ``successive-halving``: random architectures in successive-halving brackets (1, 3, 9
  epochs for the default 9, keep one in 3), promoted trials continuing from checkpoints;
* ``hyperband``: random architectures in Hyperband brackets (1 to ``--epochs`` epochs,
  eta 3), promoted trials continuing from their checkpoints;
* ``asha``: random architectures under the ASHA pruner (rungs at 1, 3, 9, ... epochs,
  keep one in 3);
* ``zero-cost-ranked``: ``--pool`` random cells scored by ``--proxy`` at initialisation
  (its seconds inside the budget), then trained fully from the best score down;
* ``hyperband-zero-cost``, ``successive-halving-zero-cost`` and ``asha-zero-cost``: the
  same schedulers, their new configurations proposed by ``zero-cost-ranked`` (the pool
  best-first by the proxy) instead of at random (the proxy's seconds inside the budget);
* ``successive-halving-data`` and ``hyperband-data``: the same brackets over shares of the
  training images instead of epochs (1/9, 1/3, all, eta 3), every rung the whole
  ``--epochs`` schedule afresh on a nested subset.  Their ``epochs`` count epochs of the
  full training set: an epoch on a third of it is a third.

The chosen cell is the study's best complete trial by validation accuracy (multi-fidelity
methods: one trained the full schedule; without any, the best at the most epochs
reached).  Its table accuracy (``NB201Estimator``: AnalogNAS-Bench's baseline CIFAR-10
accuracy) and regret against the table's best are reported as mean and standard error
over seeds, and each method's difference to ``random`` paired by seed (and to
``--versus`` METHOD, when given: e.g. a scheduler against the same proposals trained in
full), with a paired t-test, a Wilcoxon signed-rank test and the seeds it won.
Resumable: each search is a SQLite study under ``--out``; a rerun continues the
ones not finished and reports all.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.xz"
METHODS = ("random", "regularized-evolution", "successive-halving", "hyperband", "asha",
           "zero-cost-ranked", "successive-halving-data", "hyperband-data",
           "hyperband-zero-cost", "successive-halving-zero-cost", "asha-zero-cost")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=600.0, help="wall clock per search")
    parser.add_argument("--workers", type=int, default=2, help="searches at once")
    parser.add_argument("--epochs", type=int, default=9, help="full training (9)")
    parser.add_argument("--channels", type=int, default=8, help="C (8)")
    parser.add_argument("--cells-per-stage", type=int, default=1, help="N (1)")
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    parser.add_argument("--image-size", type=int, default=16,
                        help="images resized to this side (16; 32 keeps them)")
    parser.add_argument("--pool", type=int, default=200, help="zero-cost-ranked pool")
    parser.add_argument("--proxy", default="synflow")
    parser.add_argument("--versus", default=None, metavar="METHOD",
                        help="also pair every method with this one (besides random)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "fidelity-search")
    return parser.parse_args(argv)


def _components(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The strategy and scheduler of ``method`` (names and settings, as in a config)."""
    if method == "random":
        return {"strategy": "random"}
    if method == "regularized-evolution":
        return {"strategy": "regularized-evolution",
                "strategy_params": {"population_size": 10, "sample_size": 3}}
    if method == "successive-halving":
        return {"strategy": "random", "scheduler": "successive-halving",
                "scheduler_params": {"min_epochs": 1, "eta": 3}}
    if method == "hyperband":
        return {"strategy": "random", "scheduler": "hyperband",
                "scheduler_params": {"min_epochs": 1, "eta": 3}}
    if method == "asha":
        return {"strategy": "random", "scheduler": "asha",
                "scheduler_params": {"min_resource": 1, "reduction_factor": 3}}
    if method in ("successive-halving-data", "hyperband-data"):
        return {"strategy": "random", "scheduler": method.removesuffix("-data"),
                "scheduler_params": {"eta": 3, "resource": "data", "min_fraction": 1 / 9}}
    if method == "zero-cost-ranked":
        return {"strategy": "zero-cost-ranked",
                "strategy_params": {"proxy": args.proxy, "pool": args.pool}}
    if method.endswith("-zero-cost") and method in METHODS:
        # The scheduler's new configurations come from the proxy-ranked pool, best first,
        # instead of at random: the brackets then sift the cells the proxy likes best.
        return {**_components(method.removesuffix("-zero-cost"), args),
                **_components("zero-cost-ranked", args)}
    raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def _chosen(study: Any) -> Any:
    """The search's answer: its best complete trial, else the best at the most epochs."""
    from archsearch.trial import TrialState

    best = study.best_trial
    if best is not None:
        return best
    reached = [t for t in study.trials if t.curve and t.state is not TrialState.FAILED]
    if not reached:
        return None
    def budget(t: Any) -> tuple[float, int]:
        return (1.0 if t.data_fraction is None else t.data_fraction, t.epochs_trained)

    most = max(budget(t) for t in reached)
    return max((t for t in reached if budget(t) == most),
               key=lambda t: t.curve[-1]["val_accuracy"])


_CACHE: dict[str, Any] = {}


def _size(side: int) -> int | None:
    return None if side == 32 else side


def run_search(task: tuple[str, int, dict[str, Any]]) -> dict[str, Any]:
    """One search (in a worker process, one torch thread); its summary."""
    method, seed, settings = task
    import torch

    torch.set_num_threads(1)
    import archsearch
    from archsearch.data import load_dataset
    from archsearch.estimation.training import TrainingEstimator
    from archsearch.space.nb201 import NB201Space
    from archsearch.tabular.nb201 import NB201Estimator

    args = argparse.Namespace(**settings)
    out = Path(args.out)
    done = out / f"{method}-seed{seed}.json"
    if done.exists():
        return dict(json.loads(done.read_text()))
    if "dataset" not in _CACHE:  # once per worker process, outside any search's clock
        _CACHE["dataset"] = load_dataset(args.data, image_size=_size(args.image_size))
    dataset = _CACHE["dataset"]
    space = NB201Space(channels=args.channels, cells_per_stage=args.cells_per_stage)
    fit = dataset.y_train.shape[0] * (1 - args.val_fraction)
    estimator = TrainingEstimator(
        dataset, space, epochs=args.epochs, batch_size=128, optimizer="adam", lr=0.003,
        weight_decay=1e-4, val_fraction=args.val_fraction,
        train_fraction=min(1.0, args.train_images / fit), latency_repeats=1,
        device=args.device)
    parts = _components(method, args)
    study = archsearch.create_study(
        space, estimator=estimator, storage=out / f"{method}-seed{seed}.db", name=method,
        seed=seed, data=dataset, **parts)
    start = time.monotonic()
    study.optimize(timeout=args.seconds)
    wall = time.monotonic() - start
    chosen = _chosen(study)
    table = NB201Estimator()
    result: dict[str, Any] = {
        "method": method, "seed": seed, "wall_seconds": wall,
        "trials": len(study.trials),
        # Epochs of the whole training set: a curve entry is one epoch of its run's data.
        "epochs_trained": round(sum(float(e.get("data_fraction", 1.0))
                                    for t in study.trials for e in t.curve), 2),
        "complete": sum(1 for t in study.trials if t.state.value == "complete"),
        "pruned": sum(1 for t in study.trials if t.state.value == "pruned"),
        "chosen": None if chosen is None else chosen.number,
        "chosen_val_accuracy": None if chosen is None else chosen.metrics.get("val_accuracy"),
        "table_accuracy": None if chosen is None else float(
            table.lookup_index(space.index(chosen.genotype))["val_accuracy"]),
        "proxy_seconds": float(getattr(study.strategy, "proxy_seconds", 0.0)),
    }
    study.close()
    done.write_text(json.dumps(result, indent=2))
    return result


def summarise(results: list[dict[str, Any]], best: float,
              versus: str | None = None) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for method in dict.fromkeys(r["method"] for r in results):
        rows = [r for r in results if r["method"] == method]
        acc = np.array([r["table_accuracy"] if r["table_accuracy"] is not None else math.nan
                        for r in rows], dtype=float)
        n = int(np.sum(~np.isnan(acc)))
        out[method] = {
            "runs": len(rows),
            "table_accuracy_mean": float(np.nanmean(acc)) if n else math.nan,
            "table_accuracy_stderr": float(np.nanstd(acc, ddof=1) / math.sqrt(n)) if n > 1
            else math.nan,
            "regret_mean": best - float(np.nanmean(acc)) if n else math.nan,
            "table_accuracy_median": float(np.nanmedian(acc)) if n else math.nan,
            "table_accuracy_worst": float(np.nanmin(acc)) if n else math.nan,
            "trials_mean": float(np.mean([r["trials"] for r in rows])),
            # Trained the full schedule: the only candidates for the answer.
            "complete_mean": float(np.mean([r["complete"] for r in rows])),
            "epochs_mean": float(np.mean([r["epochs_trained"] for r in rows])),
            "wall_mean": float(np.mean([r["wall_seconds"] for r in rows])),
            "proxy_seconds_mean": float(np.mean([r["proxy_seconds"] for r in rows])),
            **_paired(rows, results, "random"),
            **(_paired(rows, results, versus) if versus else {}),
        }
    return out


def _paired(rows: list[dict[str, Any]], results: list[dict[str, Any]], baseline: str
            ) -> dict[str, Any]:
    """Mean and standard error of (method - baseline) table accuracy over the seeds both
    ran, as ``vs_<baseline>_mean`` etc.  A seed is the study seed, so every method with
    random proposals draws the same stream of them (the ``zero-cost`` methods draw their
    pool from it instead; the data subset is the same for all seeds): pairing removes the
    spread that the luck of those proposals causes, not the training noise."""
    import numpy as np

    base = {r["seed"]: r["table_accuracy"] for r in results
            if r["method"] == baseline and r["table_accuracy"] is not None}
    diffs = np.array([r["table_accuracy"] - base[r["seed"]] for r in rows
                      if r["table_accuracy"] is not None and r["seed"] in base], dtype=float)
    if (rows and rows[0]["method"] == baseline) or diffs.size < 2:
        return {}
    t_p, rank_p = _paired_p_values(diffs)
    return {f"vs_{baseline}_mean": float(diffs.mean()),
            f"vs_{baseline}_stderr": float(diffs.std(ddof=1) / math.sqrt(diffs.size)),
            f"vs_{baseline}_seeds": int(diffs.size),
            f"vs_{baseline}_wins": int(np.sum(diffs > 0)),
            f"vs_{baseline}_t_p": t_p, f"vs_{baseline}_wilcoxon_p": rank_p}


def _paired_p_values(diffs: Any) -> tuple[float, float]:
    """Two-sided p-values that the paired differences centre on zero: the paired t-test
    (assumes normal differences) and the Wilcoxon signed-rank test (does not; a few bad
    seeds of ~90 make the differences skewed).  1.0 when every difference is zero."""
    from scipy import stats

    if not diffs.any():
        return 1.0, 1.0
    return (float(stats.ttest_1samp(diffs, 0.0).pvalue),
            float(stats.wilcoxon(diffs).pvalue))


def _difference(row: dict[str, Any], baseline: str) -> str:
    """The paired difference to ``baseline`` as printed: mean ± standard error."""
    mean = row.get(f"vs_{baseline}_mean")
    return "-" if mean is None else f"{mean:+.2f} ± {row[f'vs_{baseline}_stderr']:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.exists():
        print(f"fidelity_search: no CIFAR-10 at {args.data} (give --data)", file=sys.stderr)
        return 2
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        _components(method, args)
    if args.versus is not None and args.versus not in methods:
        raise SystemExit(f"--versus {args.versus!r} is not among --methods")
    from archsearch.data import load_dataset
    from archsearch.tabular.nb201 import NB201Estimator

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load_dataset(args.data, image_size=_size(args.image_size))  # decode into the cache once
    print(f"data ready in {time.perf_counter() - t0:.0f} s", flush=True)
    settings = {**vars(args), "out": str(args.out), "data": str(args.data),
                "val_fraction": args.val_images / 50000}
    tasks = [(m, s, settings) for s in range(args.first_seed, args.first_seed + args.seeds)
             for m in methods]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = []
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for result in pool.imap_unordered(run_search, tasks):
            results.append(result)
            print(f"{result['method']:<22} seed {result['seed']}: table accuracy "
                  f"{result['table_accuracy']}, {result['trials']} trials, "
                  f"{result['epochs_trained']} epochs, {result['wall_seconds']:.0f} s",
                  flush=True)
    best = float(NB201Estimator().oracle().val)
    summary = {"settings": {k: v for k, v in settings.items() if k != "out"},
               "table_best": best, "methods": summarise(results, best, args.versus)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    width = max(22, *map(len, methods))
    print(f"\n{'method':<{width}} {'table acc':>16} {'regret':>8} {'median':>7} {'worst':>7}"
          f" {'trials':>7} {'to end':>7} {'epochs':>7} {'vs random (paired)':>20}"
          + (f" {'vs ' + args.versus:>20}" if args.versus else ""))
    for method, row in summary["methods"].items():
        paired = _difference(row, "random")
        print(f"{method:<{width}} {row['table_accuracy_mean']:>8.2f} ± "
              f"{row['table_accuracy_stderr']:<5.2f} {row['regret_mean']:>8.2f} "
              f"{row['table_accuracy_median']:>7.2f} {row['table_accuracy_worst']:>7.2f} "
              f"{row['trials_mean']:>7.1f} {row['complete_mean']:>7.1f} "
              f"{row['epochs_mean']:>7.0f} {paired:>20}"
              + (f" {_difference(row, args.versus):>20}" if args.versus else ""))
    for baseline in ("random", args.versus):
        tests = [f"  {method}: {line}" for method, row in summary["methods"].items()
                 if (line := _tests(row, baseline))]
        if baseline and tests:
            print(f"\npaired by seed against {baseline} (two-sided p; seeds it beat):")
            print("\n".join(tests))
    return 0


def _tests(row: dict[str, Any], baseline: str | None) -> str:
    """The paired tests against ``baseline`` as printed; empty without them."""
    if f"vs_{baseline}_t_p" not in row:
        return ""
    return (f"t-test p {_p(row[f'vs_{baseline}_t_p'])}, Wilcoxon p "
            f"{_p(row[f'vs_{baseline}_wilcoxon_p'])}, better on "
            f"{row[f'vs_{baseline}_wins']} of {row[f'vs_{baseline}_seeds']}")


def _p(value: float) -> str:
    """A p-value as printed: three decimals, and "< 0.001" rather than a bare 0.000."""
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
