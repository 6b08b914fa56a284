"""Paired differences of regret between two strategies on the same seeds, from the
``runs.jsonl`` and ``summary.json`` that ``archsearch bench`` writes: hypervolume regret
with ``--objectives``, search regret (the table's best search metric against the
incumbent's) with one objective.

    python3 benchmarks/paired_regret.py A_DIR:local-search B_DIR:optuna:tpe --at 100,200

Each argument is ``DIR:STRATEGY`` (the strategy's runs in that output folder).  For every
seed both hold, regret = the table's true hypervolume - the hypervolume after q queries;
printed: the two means on the shared seeds, the mean difference (A - B) and its standard
error (paired, over seeds), and how many standard errors that is.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def regrets(spec: str, at: list[int]) -> dict[int, list[float]]:
    folder, _, strategy = spec.partition(":")
    summary = json.loads((Path(folder) / "summary.json").read_text())
    if "true_hypervolume" in summary:
        truth, field = summary["true_hypervolume"], "hypervolume"
    else:  # one objective: the incumbent's search metric, either direction
        truth, field = summary["oracle"]["best_search"], "search"
    out: dict[int, list[float]] = {}
    for line in (Path(folder) / "runs.jsonl").read_text().splitlines():
        run = json.loads(line)
        if run["strategy"] == strategy:
            curve = run[field]  # a run that stopped early keeps its last incumbent
            out[run["seed"]] = [abs(truth - curve[min(q, len(curve)) - 1]) for q in at]
    if not out:
        raise SystemExit(f"no runs of {strategy!r} in {folder}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--at", default="100,200")
    args = parser.parse_args(argv)
    at = [int(q) for q in args.at.split(",")]
    a, b = regrets(args.a, at), regrets(args.b, at)
    seeds = sorted(set(a) & set(b))
    print(f"{len(seeds)} shared seeds ({seeds[0]}-{seeds[-1]})")
    for i, q in enumerate(at):
        diffs = [a[s][i] - b[s][i] for s in seeds]
        mean = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        se = sd / math.sqrt(len(diffs))
        mean_a = sum(a[s][i] for s in seeds) / len(seeds)
        mean_b = sum(b[s][i] for s in seeds) / len(seeds)
        print(f"@{q}: A {mean_a:.4f}  B {mean_b:.4f}  A-B {mean:+.4f} ± {se:.4f} "
              f"({mean / se:+.1f} s.e.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
