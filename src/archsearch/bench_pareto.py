"""``archsearch bench --objectives``: multi-objective search on a published table, judged by
hypervolume regret.

The objectives are scored (oriented so larger is better) and normalised to [0, 1] by
their range over the whole table; the reference point is -0.1 in every normalised
coordinate (the table's worst value pushed out by a tenth of its range, so the front's
extreme points count).  The *true front* is the table's own (every architecture looked
up); a run's *hypervolume regret* after q queries is the true front's hypervolume minus
that of the non-dominated set of its first q queries, both in the normalised space.
Every run goes through the ordinary ``Study`` loop; a strategy that is not
multi-objective itself is driven through ParEGO's scalarisation (``Study`` does that).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from archsearch import registry
from archsearch.errors import ConfigError
from archsearch.objectives import Objective, parse_objectives
from archsearch.pareto import hypervolume, non_dominated
from archsearch.study import Budget, Study
from archsearch.tabular.table import TableEstimator
from archsearch.trial import FrozenTrial

#: The reference point's place in every normalised coordinate.
REFERENCE = -0.1


@dataclass(frozen=True)
class TrueFront:
    """A table's objective scores, normalised: the ranges used and the true front."""

    objectives: tuple[Objective, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    front: np.ndarray  # normalised scores of the table's non-dominated architectures
    hypervolume: float

    def normalise(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        low, high = np.asarray(self.low), np.asarray(self.high)
        span = np.where(high > low, high - low, 1.0)
        return (np.asarray(scores, dtype=float) - low) / span


def parse_objectives_arg(text: str) -> tuple[Objective, ...]:
    """``"val_accuracy:max,flops:min"`` -> the objectives."""
    return parse_objectives([part.strip() for part in text.split(",") if part.strip()])


def table_scores(estimator: TableEstimator, objectives: Sequence[Objective]) -> np.ndarray:
    """Every architecture's scores, in table order (an error naming a missing metric)."""
    rows = []
    for index in range(len(estimator.objective_values())):
        metrics = estimator.lookup_index(index)
        missing = [o.metric for o in objectives if o.metric not in metrics]
        if missing:
            raise ConfigError(f"the table reports no {missing[0]!r}; it has "
                              f"{', '.join(sorted(metrics))}")
        rows.append([o.oriented(float(metrics[o.metric])) for o in objectives])
    return np.asarray(rows)


def true_front(estimator: TableEstimator, objectives: Sequence[Objective]) -> TrueFront:
    scores = table_scores(estimator, objectives)
    low, high = scores.min(axis=0), scores.max(axis=0)
    found = TrueFront(tuple(objectives), tuple(map(float, low)), tuple(map(float, high)),
                      np.zeros((0, len(objectives))), 0.0)
    normalised = found.normalise(scores)
    front = np.unique(normalised[non_dominated(normalised)], axis=0)
    reference = [REFERENCE] * len(objectives)
    return TrueFront(found.objectives, found.low, found.high, front,
                     hypervolume(front, reference))


@lru_cache(maxsize=8)
def true_front_cached(problem: str, objectives: str) -> TrueFront:
    """The true front of a benchmark under ``objectives``; once per process."""
    from archsearch.bench import load_problem

    _, estimator = load_problem(problem, None)
    return true_front(estimator, parse_objectives_arg(objectives))


def run_one_pareto(problem: str, strategy: str, seed: int, budget: int, objectives: str,
                   count_repeats: bool = False) -> dict[str, Any]:
    """One seeded run: after each query, the hypervolume of the normalised non-dominated
    set found so far, and at the end that set's normalised points."""
    from archsearch.bench import load_problem, parse_strategy

    name, params = parse_strategy(strategy)
    torch = sys.modules.get("torch")
    if torch is not None:  # a controller's tiny ops lose badly to thread contention
        torch.set_num_threads(1)
    space, estimator = load_problem(problem, None)
    goals = parse_objectives_arg(objectives)
    truth = true_front_cached(problem, objectives)
    reference = [REFERENCE] * len(goals)
    found: list[np.ndarray] = []
    curve: list[float] = []

    def record(study: Study, trial: FrozenTrial) -> None:
        if trial.cached and not count_repeats:
            return
        if trial.scores is not None and trial.feasible and not trial.cached:
            point = truth.normalise(trial.scores)
            if not any(np.all(f >= point) for f in found):  # a dominated point adds nothing
                found[:] = [f for f in found if not np.all(point >= f)] + [point]
        curve.append(hypervolume(np.asarray(found), reference) if found else 0.0)

    strategy_obj = registry.construct("strategy", registry.resolve("strategy", name), params,
                                      space=space, seed=seed)
    study = Study(space, strategy_obj, estimator, seed=seed, objectives=goals)
    reason = study.optimize(budget=Budget(trials=budget, count_repeats=count_repeats),
                            callbacks=[record])
    return {"strategy": strategy, "seed": seed, "stop": reason.name, "hypervolume": curve,
            "front": [list(map(float, f)) for f in found]}


def summarise_pareto(runs: Sequence[dict[str, Any]], truth: TrueFront, budget: int,
                     report: Sequence[int]) -> dict[str, Any]:
    """Mean, standard error, std and median of the hypervolume regret at the report budgets."""
    out: dict[str, Any] = {
        "objectives": [o.to_dict() for o in truth.objectives], "reference": REFERENCE,
        "ranges": {"low": truth.low, "high": truth.high},
        "true_front_size": len(truth.front), "true_hypervolume": truth.hypervolume,
        "budget": budget, "strategies": {}}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        curves = np.array([_pad(r["hypervolume"], budget) for r in mine])
        regret = truth.hypervolume - curves
        at = {}
        for b in [b for b in report if b <= budget] or [budget]:
            column = regret[:, b - 1]
            at[str(b)] = {"hypervolume_regret": {
                "mean": float(column.mean()), "std": float(column.std()),
                "stderr": float(column.std(ddof=1) / math.sqrt(len(column)))
                if len(column) > 1 else 0.0,
                "median": float(np.median(column))}}
        out["strategies"][name] = {"runs": len(mine), "at": at}
    return out


def _pad(curve: Sequence[float], n: int) -> list[float]:
    out = list(curve[:n])
    return out + [out[-1] if out else 0.0] * (n - len(out))


def markdown_pareto(summary: dict[str, Any]) -> str:
    budgets = list(next(iter(summary["strategies"].values()))["at"])
    lines = ["| strategy | " + " | ".join(f"HV regret @{b}" for b in budgets) + " |",
             "|---" * (len(budgets) + 1) + "|"]
    for name, s in summary["strategies"].items():
        cells = [f"{s['at'][b]['hypervolume_regret']['mean']:.4f} ± "
                 f"{s['at'][b]['hypervolume_regret']['stderr']:.4f}" for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_pareto(runs: Sequence[dict[str, Any]], truth: TrueFront, budget: int, path: Path,
                title: str) -> bool:
    """Left: mean hypervolume regret per query with a 95% band (log scale).  Right (two
    objectives): the true front and, per strategy, the front of its median run.  False
    if matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(dict.fromkeys(r["strategy"] for r in runs))
    two = len(truth.objectives) == 2
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(13 if two else 7, 5), squeeze=False)
    steps = np.arange(1, budget + 1)
    for name in names:
        mine = [r for r in runs if r["strategy"] == name]
        regret = truth.hypervolume - np.array([_pad(r["hypervolume"], budget) for r in mine])
        mean = regret.mean(axis=0)
        half = 1.96 * regret.std(axis=0, ddof=1) / math.sqrt(len(mine)) if len(mine) > 1 else 0
        line, = axes[0][0].plot(steps, np.maximum(mean, 1e-6), label=name)
        axes[0][0].fill_between(steps, np.maximum(mean - half, 1e-6),
                                np.maximum(mean + half, 1e-6), color=line.get_color(), alpha=0.2)
        if two:
            final = regret[:, -1]
            median_run = mine[int(np.argsort(final)[len(final) // 2])]
            front = np.array(sorted(median_run["front"])) if median_run["front"] else None
            if front is not None:
                axes[0][1].step(front[:, 0], front[:, 1], where="pre", color=line.get_color(),
                                marker="o", markersize=3, label=name)
    axes[0][0].set(yscale="log", xlabel="queries", ylabel="hypervolume regret (normalised)",
                   title=title)
    axes[0][0].legend(fontsize=8)
    if two:
        true = truth.front[np.argsort(truth.front[:, 0])]
        axes[0][1].step(true[:, 0], true[:, 1], where="pre", color="black", linewidth=2,
                        label="true front")
        labels = [f"{o.metric} ({'higher' if o.direction == 'maximize' else 'lower'} is "
                  "better, normalised score)" for o in truth.objectives]
        axes[0][1].set(xlabel=labels[0], ylabel=labels[1],
                       title=f"fronts after {budget} queries (median run)")
        axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
