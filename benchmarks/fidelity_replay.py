"""Replay random search, successive halving and Hyperband on the rank study's saved
learning curves: what each should choose, on average, at a budget of epochs, when short
training ranks cells as well as it measurably does here.

    python3 benchmarks/fidelity_replay.py --budget 146 --replicates 20000
    python3 benchmarks/fidelity_replay.py --replicates 1000 --bootstrap 200

``training_ranking.py`` trained 200 NAS-Bench-201 cells with the search benchmark's
network and data and saved each one's validation accuracy after epochs 1, 3 and 10 of one
10-epoch schedule (``--curves``), beside its table accuracy.  A replicate draws cells from
those 200 without replacement, in random order, and spends ``--budget`` epochs as the
method would (a promoted cell pays only the epochs it adds, as continuation from a
checkpoint does):

* ``random``: each cell trained 10 epochs; the answer is the best at 10;
* ``successive-halving``: brackets of 9 cells at 1 epoch, the best 3 to 3, the best one
  to 10 (``archsearch.fidelity.brackets``, eta 3), repeated;
* ``hyperband``: Hyperband's three brackets in turn.

A multi-fidelity method's answer is its best cell among those trained the full 10 epochs.
No training noise beyond the saved one is added (a cell's curve is the same in every
replicate), so the mean over replicates is conditional on those 200 curves: its standard
error says nothing about another 200.  ``--bootstrap B`` resamples the 200 cells with
replacement B times, and the spread of the per-method means over those resamples is the
uncertainty that matters when comparing with the real search (``fidelity_search.py``),
which trains afresh in every run and works under a wall clock.  Each replicate draws one
cell order that every method uses, so differences to random are paired.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CURVES = ROOT / "benchmarks" / "logs" / "training-ranking-2026-12-03"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", type=Path, default=CURVES,
                        help="training_ranking.py's output folder (chunk-*.json)")
    parser.add_argument("--budget", type=int, default=146,
                        help="epochs per search (146: random's mean in the wall-clock search)")
    parser.add_argument("--replicates", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-epochs", type=int, default=1,
                        help="the first rung's epochs (must be one of the saved fidelities)")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="resamples of the cells (0: none); replicates are then per resample")
    return parser.parse_args(argv)


def load_curves(folder: Path) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Validation accuracy per fidelity (epochs -> one value per cell) and table accuracy."""
    chunks = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(folder / "chunk-*.json")))]
    if not chunks:
        raise SystemExit(f"fidelity_replay: no chunk-*.json in {folder}")
    epochs = sorted(int(k) for k in chunks[0]["accuracy"])
    accuracy = {k: np.concatenate([c["accuracy"][str(k)] for c in chunks]) for k in epochs}
    return accuracy, np.concatenate([c["val_accuracy"] for c in chunks])


def brackets(method: str, full: int, min_epochs: int = 1, eta: int = 3
             ) -> list[list[tuple[int, int]]]:
    """Each bracket as (cells, epochs) per rung, in the order the method runs them."""
    from archsearch.fidelity.brackets import hyperband_brackets

    every = [[(r.configs, r.epochs) for r in b.rungs]
             for b in hyperband_brackets(min_epochs, full, eta)]
    return every[:1] if method == "successive-halving" else every


def replay(method: str, accuracy: dict[int, np.ndarray], truth: np.ndarray, budget: int,
           permutation: np.ndarray, min_epochs: int = 1, eta: int = 3) -> float:
    """The table accuracy of one replicate's answer (NaN: no cell reached full training)."""
    full = max(accuracy)
    order = iter(permutation)
    if method == "random":
        cells = [next(order) for _ in range(budget // full)]
        return float(truth[max(cells, key=lambda c: accuracy[full][c])])
    done: list[int] = []  # cells trained the full schedule
    left, plan, turn = budget, brackets(method, full, min_epochs, eta), 0
    while True:
        rungs = plan[turn % len(plan)]
        turn += 1
        alive: list[int] = []
        trained = 0
        for keep, epochs in rungs:
            if alive:  # the best ``keep`` at the previous rung go on
                alive = sorted(alive, key=lambda c: -accuracy[trained][c])[:keep]
            else:
                alive = [next(order) for _ in range(keep)]
            cost = keep * (epochs - trained)
            if cost > left:
                return float(truth[max(done, key=lambda c: accuracy[full][c])]) if done \
                    else float("nan")
            left, trained = left - cost, epochs
        done.extend(alive)


METHODS = ("random", "successive-halving", "hyperband")


def replicate_means(accuracy: dict[int, np.ndarray], truth: np.ndarray, budget: int,
                    replicates: int, rng: np.random.Generator, min_epochs: int = 1,
                    eta: int = 3) -> np.ndarray:
    """Per method, the mean answer over ``replicates`` shared cell orders, and the mean paired
    difference to random (rows: methods; columns: mean, stderr, difference, its stderr)."""
    answers = np.array([[replay(m, accuracy, truth, budget, order, min_epochs, eta)
                         for m in METHODS]
                        for order in (rng.permutation(truth.size) for _ in range(replicates))])
    rows = []
    for column in range(len(METHODS)):
        values, difference = answers[:, column], answers[:, column] - answers[:, 0]
        defined = ~np.isnan(values)
        rows.append([values[defined].mean(), values[defined].std(ddof=1) / np.sqrt(defined.sum()),
                     difference[defined].mean(),
                     difference[defined].std(ddof=1) / np.sqrt(defined.sum())])
    return np.array(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    accuracy, truth = load_curves(args.curves)
    rng = np.random.default_rng(args.seed)
    if args.min_epochs not in accuracy:
        raise SystemExit(f"fidelity_replay: --min-epochs must be a saved fidelity "
                         f"{sorted(accuracy)}, got {args.min_epochs}")
    print(f"{truth.size} cells, fidelities {sorted(accuracy)} epochs, budget {args.budget} "
          f"epochs, brackets from {args.min_epochs} epochs with eta {args.eta}, "
          f"{args.replicates} replicates (seed {args.seed})")
    these = replicate_means(accuracy, truth, args.budget, args.replicates, rng,
                            args.min_epochs, args.eta)
    spread = np.zeros_like(these)
    if args.bootstrap:
        print(f"and {args.bootstrap} resamples of the {truth.size} cells")
        resampled = []
        for _ in range(args.bootstrap):
            pick = rng.choice(truth.size, truth.size, replace=True)
            resampled.append(replicate_means({k: v[pick] for k, v in accuracy.items()},
                                             truth[pick], args.budget, args.replicates, rng,
                                             args.min_epochs, args.eta))
        spread = np.array(resampled).std(axis=0, ddof=1)
    rows: dict[str, Any] = {}
    print(f"{'method':<20} {'table acc':>14} {'vs random (paired)':>20}"
          + ("   (± over cell resamples)" if args.bootstrap else ""))
    for method, row, over_cells in zip(METHODS, these, spread, strict=True):
        rows[method] = {"table_accuracy_mean": float(row[0]), "stderr": float(row[1]),
                        "vs_random_mean": float(row[2]), "vs_random_stderr": float(row[3])}
        line = f"{method:<20} {row[0]:8.2f} ± {row[1]:.2f} {row[2]:+13.2f} ± {row[3]:.2f}"
        if args.bootstrap:
            rows[method]["cell_resample_sd"] = float(over_cells[0])
            rows[method]["vs_random_cell_resample_sd"] = float(over_cells[2])
            line += f"   {row[0]:.2f} ± {over_cells[0]:.2f}, {row[2]:+.2f} ± {over_cells[2]:.2f}"
        print(line)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
