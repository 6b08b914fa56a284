"""One table and one plot of the rank study: every zero-cost proxy
(``proxy_ranking.py``) and short training (``training_ranking.py``), each estimator's
Spearman and Kendall correlation with the NAS-Bench-201 table against its seconds per
cell, with the Pareto frontier (no other estimator ranks better for less) marked.

    python3 benchmarks/rank_plot.py --proxies build/proxy-ranking \\
        --training build/training-ranking --out build/rank-study

Correlations are over the cells each study scored (proxies: the 1,000-cell sample;
training: its first cells), and, so that the two can be compared on the same cells, the
proxies' again over the cells that were trained.  The standard errors are bootstrap
over cells (``--resamples``, seeded).  Writes ``rank_study.md`` (the table),
``rank_study.png`` (the plot) and ``rank_study.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_ranking import ROOT  # noqa: E402

#: Spearman on NAS-Bench-201 CIFAR-10, Abdelfattah et al. (ICLR 2021), REFERENCES.md s. 10.
PUBLISHED = {"synflow": 0.737, "jacob_cov": 0.731, "snip": 0.596, "grad_norm": 0.594,
             "grasp": 0.514, "fisher": 0.360}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", type=Path, default=ROOT / "build" / "proxy-ranking")
    parser.add_argument("--training", type=Path, default=ROOT / "build" / "training-ranking")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "rank-study")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_chunks(folder: Path) -> list[dict[str, Any]]:
    chunks = [json.loads(p.read_text()) for p in sorted(folder.glob("chunk-*.json"))]
    if not chunks:
        raise SystemExit(f"no chunk-*.json in {folder}")
    return chunks


def estimators(proxy_chunks: list[dict[str, Any]],
               training_chunks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Name -> {"kind", "cells", "values", "truth", "seconds"}, per cell, in order."""
    out: dict[str, dict[str, Any]] = {}
    cells = [i for c in proxy_chunks for i in c["indices"]]
    truth = np.concatenate([c["val_accuracy"] for c in proxy_chunks])
    for name in proxy_chunks[0]["scores"]:
        out[name] = {
            "kind": "proxy", "cells": cells, "truth": truth,
            "values": np.concatenate([c["scores"][name] for c in proxy_chunks]).astype(float),
            "seconds": np.concatenate([c["seconds"][name] for c in proxy_chunks]).astype(float),
        }
    trained = [i for c in training_chunks for i in c["indices"]]
    trained_truth = np.concatenate([c["val_accuracy"] for c in training_chunks])
    for k in training_chunks[0]["accuracy"]:
        out[f"train {k} ep"] = {
            "kind": "training", "cells": trained, "truth": trained_truth,
            "values": np.concatenate([c["accuracy"][k] for c in training_chunks]),
            "seconds": np.concatenate([c["seconds"][k] for c in training_chunks]),
        }
    return out


def rank_stats(values: np.ndarray, truth: np.ndarray, resamples: int,
               rng: np.random.Generator) -> dict[str, float]:
    """Spearman and Kendall over the cells with a score, and bootstrap standard errors."""
    from scipy.stats import kendalltau, spearmanr

    ok = ~np.isnan(values)
    v, t = values[ok], truth[ok]
    boot = []
    for _ in range(resamples):
        pick = rng.integers(0, v.size, v.size)
        boot.append(spearmanr(v[pick], t[pick]).statistic)
    return {"spearman": float(spearmanr(v, t).statistic),
            "spearman_se": float(np.nanstd(boot, ddof=1)),
            "kendall": float(kendalltau(v, t).statistic), "scored": int(ok.sum())}


def pareto(rows: dict[str, dict[str, Any]]) -> set[str]:
    """Estimators no other one beats on both seconds (fewer) and Spearman (higher)."""
    front = set()
    for name, row in rows.items():
        dominated = any(
            o["seconds_per_cell"] <= row["seconds_per_cell"] and o["spearman"] >= row["spearman"]
            and (o["seconds_per_cell"], o["spearman"]) != (row["seconds_per_cell"],
                                                           row["spearman"])
            for other, o in rows.items() if other != name)
        if not dominated:
            front.add(name)
    return front


def plot(rows: dict[str, dict[str, Any]], front: set[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        colour = "tab:blue" if row["kind"] == "proxy" else "tab:orange"
        ax.errorbar(row["seconds_per_cell"], row["spearman"], yerr=row["spearman_se"],
                    fmt="o", color=colour, mfc=colour if name in front else "white")
        ax.annotate(name, (row["seconds_per_cell"], row["spearman"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    line = sorted((rows[n]["seconds_per_cell"], rows[n]["spearman"]) for n in front)
    ax.step([x for x, _ in line], [y for _, y in line], where="post", color="grey",
            linestyle="--", linewidth=1, label="Pareto frontier (filled)")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per cell, one CPU core (log)")
    ax.set_ylabel("Spearman with the NB201 table")
    ax.set_title("Ranking NAS-Bench-201 cells: zero-cost proxies (blue), short training")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    found = estimators(load_chunks(args.proxies), load_chunks(args.training))
    trained = set(next(e for e in found.values() if e["kind"] == "training")["cells"])
    rows: dict[str, dict[str, Any]] = {}
    for name, est in found.items():
        row = {"kind": est["kind"], "cells": len(est["cells"]),
               "seconds_per_cell": float(est["seconds"].mean()),
               **rank_stats(est["values"], est["truth"], args.resamples, rng)}
        if est["kind"] == "proxy":  # again, on the trained cells only
            same = np.isin(est["cells"], list(trained))
            sub = rank_stats(est["values"][same], est["truth"][same], args.resamples, rng)
            row["spearman_on_trained_cells"] = sub["spearman"]
            row["published_spearman"] = PUBLISHED.get(name, math.nan)
        rows[name] = row
    front = pareto(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, front, args.out / "rank_study.png")
    (args.out / "rank_study.json").write_text(json.dumps(
        {"rows": rows, "pareto": sorted(front)}, indent=2))
    lines = ["| estimator | cells | Spearman | Kendall | on the trained cells | "
             "published | s per cell | frontier |", "|---|---|---|---|---|---|---|---|"]
    for name, row in sorted(rows.items(), key=lambda kv: kv[1]["seconds_per_cell"]):
        same = row.get("spearman_on_trained_cells", row["spearman"])
        pub = row.get("published_spearman", math.nan)
        lines.append(
            f"| {name} | {row['scored']} | {row['spearman']:.3f} ± {row['spearman_se']:.3f} | "
            f"{row['kendall']:.3f} | {same:.3f} | {'-' if math.isnan(pub) else f'{pub:.3f}'} | "
            f"{row['seconds_per_cell']:.3g} | {'yes' if name in front else ''} |")
    (args.out / "rank_study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
