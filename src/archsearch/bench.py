"""``archsearch bench``: compare strategies on a published table over many seeds.

Every run goes through the ordinary ``Study`` loop (in memory), so what is measured is
what users run.  The budget is the number of estimator queries: a repeated architecture
is answered from the study's record and does not count (see ``Study.evaluate``).

For the architecture that is best on the search metric so far (the incumbent), a run
records two regrets after each query: *search regret* (the table's best search metric
minus the incumbent's) and *test regret* (the test metric of the table's best-on-search
architecture minus the incumbent's test metric).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from archsearch import registry
from archsearch.config import check_params
from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.study import Budget, Study
from archsearch.tabular.table import TableEstimator, TableOptimum
from archsearch.trial import FrozenTrial

#: Budgets at which summary.json reports regrets (those up to the run's budget).
REPORT_BUDGETS = (10, 25, 50, 100, 200, 300, 500, 1000)


def split_strategies(text: str) -> list[str]:
    """``"random,local-search[initial_samples=5, restart_samples=2]"`` -> the two specs
    (commas inside brackets belong to the parameters)."""
    specs: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            specs.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    specs.append("".join(current).strip())
    return [s for s in specs if s]


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """``"regularized-evolution[population_size=50, sample_size=25]"`` -> the name and its
    keyword arguments (values read as YAML scalars), checked against the constructor."""
    match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*", spec)
    if match is None:
        raise ConfigError(f"bad strategy {spec!r}; expected name or name[key=value, ...]")
    name, body = match.group(1), match.group(2) or ""
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"bad parameter {item!r} in {spec!r}; expected key=value")
        params[key.strip()] = yaml.safe_load(value.strip())
    check_params(f"strategy {name}", registry.resolve("strategy", name), params)
    return name, params


def parse_problem(problem: str) -> tuple[str, dict[str, Any]]:
    """``nb201`` or ``nbgraph:cora`` -> (table name, keyword arguments)."""
    name, _, dataset = problem.partition(":")
    if name not in ("nb201", "nbgraph"):
        raise ConfigError(f"unknown benchmark space {problem!r}; use nb201 or nbgraph:<dataset>")
    if name == "nbgraph" and not dataset:
        raise ConfigError("nbgraph needs a dataset, e.g. nbgraph:cora")
    if name == "nb201" and dataset:
        raise ConfigError(f"nb201 takes no dataset (got {dataset!r})")
    return name, ({"table": dataset} if dataset else {})


@lru_cache(maxsize=8)
def load_problem(problem: str, metric: str | None = None) -> tuple[SearchSpace, TableEstimator]:
    """The space and estimator of a benchmark: the space is the one the table was read
    with (``estimator.space``: NAS-Bench-Graph's proteins table has its own ops); cached,
    so a worker loads each table once."""
    name, params = parse_problem(problem)
    if metric:
        params["metric"] = metric
    target = registry.resolve("estimator", name)
    check_params(f"estimator ({problem})", target, params)
    estimator = registry.construct("estimator", target, params)
    space = getattr(estimator, "space", None)
    if not isinstance(estimator, TableEstimator) or not isinstance(space, SearchSpace):
        raise ConfigError(f"{problem!r} is not a benchmark table")
    return space, estimator


def run_one(
    problem: str, strategy: str, seed: int, budget: int, metric: str | None, test_metric: str,
    count_repeats: bool = False,
) -> dict[str, Any]:
    """One seeded run: the incumbent's search and test metric after each query (with
    ``count_repeats``, a repeated architecture counts as a query too)."""
    name, params = parse_strategy(strategy)
    strategy_cls = registry.resolve("strategy", name)
    torch = sys.modules.get("torch")
    if torch is not None:  # a controller's tiny ops lose badly to thread contention
        torch.set_num_threads(1)
    space, estimator = load_problem(problem, metric)
    search_curve: list[float] = []
    test_curve: list[float] = []
    incumbent: list[FrozenTrial] = []

    def record(study: Study, trial: FrozenTrial) -> None:
        if trial.cached and not count_repeats:
            return
        if trial.score is not None and (not incumbent or trial.score > incumbent[0].score):  # type: ignore[operator]
            incumbent[:] = [trial]
        if incumbent:
            search_curve.append(float(incumbent[0].value))  # type: ignore[arg-type]
            test_curve.append(float(incumbent[0].metrics[test_metric]))
        else:
            search_curve.append(math.nan)
            test_curve.append(math.nan)

    strategy_obj = strategy_cls(space, seed=seed, **params)
    study = Study(space, strategy_obj, estimator, seed=seed)
    reason = study.optimize(budget=Budget(trials=budget, count_repeats=count_repeats),
                            callbacks=[record])
    return {"strategy": strategy, "seed": seed, "stop": reason.name,
            "search": search_curve, "test": test_curve}


def _pad(curve: Sequence[float], n: int) -> list[float]:
    """A run that stopped early (space exhausted) keeps its last incumbent."""
    out = list(curve[:n])
    last = out[-1] if out else math.nan
    return out + [last] * (n - len(out))


def summarise(runs: Sequence[dict[str, Any]], oracle: TableOptimum, budget: int,
              direction: str = "maximize") -> dict[str, Any]:
    """Mean, std and median of both regrets at the report budgets, per strategy."""
    sign = 1.0 if direction == "maximize" else -1.0
    out: dict[str, Any] = {"oracle": {"best_search": oracle.val,
                                      "test_of_best_search": oracle.test_at_best_val,
                                      "best_test": oracle.best_test},
                           "budget": budget, "direction": direction, "strategies": {}}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        search = sign * (oracle.val - np.array([_pad(r["search"], budget) for r in mine]))
        test = sign * (oracle.test_at_best_val - np.array([_pad(r["test"], budget) for r in mine]))
        at: dict[str, Any] = {}
        for b in [b for b in REPORT_BUDGETS if b <= budget] or [budget]:
            at[str(b)] = {
                kind: {"mean": float(np.mean(v[:, b - 1])), "std": float(np.std(v[:, b - 1])),
                       "median": float(np.median(v[:, b - 1]))}
                for kind, v in (("search_regret", search), ("test_regret", test))
            }
        reached = [int(np.argmax(row <= 1e-9)) + 1 if np.any(row <= 1e-9) else math.inf
                   for row in search]
        median_reach = float(np.median(reached))
        out["strategies"][name] = {
            "runs": len(mine), "at": at,
            "median_queries_to_optimum": None if math.isinf(median_reach) else median_reach,
            "fraction_reaching_optimum": float(np.mean([not math.isinf(x) for x in reached])),
        }
    return out


def markdown_table(summary: dict[str, Any]) -> str:
    budgets = list(next(iter(summary["strategies"].values()))["at"])
    lines = [
        "| strategy | " + " | ".join(f"search regret @{b}" for b in budgets)
        + " | test regret @" + budgets[-1] + " | median queries to optimum |",
        "|---" * (len(budgets) + 3) + "|",
    ]
    for name, s in summary["strategies"].items():
        cells = [f"{s['at'][b]['search_regret']['mean']:.4f} ± {s['at'][b]['search_regret']['std']:.4f}"
                 for b in budgets]
        test = s["at"][budgets[-1]]["test_regret"]
        reach = s["median_queries_to_optimum"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {test['mean']:.4f} ± {test['std']:.4f}"
                     f" | {'not reached' if reach is None else f'{reach:g}'} |")
    return "\n".join(lines) + "\n"


def plot_regret(runs: Sequence[dict[str, Any]], oracle: TableOptimum, budget: int, path: Path,
                title: str, direction: str = "maximize") -> bool:
    """Mean regret with a 95% confidence band, log scale; False if matplotlib is absent.
    A mean at or below zero (test regret can be negative) is drawn at the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    x = np.arange(1, budget + 1)
    for ax, kind, best in ((axes[0], "search", oracle.val),
                           (axes[1], "test", oracle.test_at_best_val)):
        for name in dict.fromkeys(r["strategy"] for r in runs):
            sign = 1.0 if direction == "maximize" else -1.0
            curves = sign * (best - np.array([_pad(r[kind], budget) for r in runs
                                              if r["strategy"] == name]))
            mean = np.nanmean(curves, axis=0)
            half = 1.96 * np.nanstd(curves, axis=0) / math.sqrt(len(curves))
            floor = 1e-4
            ax.plot(x, np.maximum(mean, floor), label=name)
            ax.fill_between(x, np.maximum(mean - half, floor), np.maximum(mean + half, floor),
                            alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("queries")
        ax.set_ylabel(f"{kind} regret (mean, 95% CI)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _run_all(function: Callable[..., dict[str, Any]], jobs: list[tuple[Any, ...]],
             workers: int | None, progress: Callable[[int, int], None] | None
             ) -> list[dict[str, Any]]:
    """``function(*job)`` for every job, in order, on ``workers`` processes."""
    workers = workers or os.cpu_count() or 1
    runs: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            runs.append(function(*job))
            if progress:
                progress(len(runs), len(jobs))
        return runs
    # fork shares the loaded tables with the workers (copy-on-write); the parent has
    # started no threads of its own at this point.
    context = get_context("fork" if "fork" in get_all_start_methods() else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunk = max(1, len(jobs) // (workers * 8))
        for result in pool.map(function, *zip(*jobs, strict=True), chunksize=chunk):
            runs.append(result)
            if progress:
                progress(len(runs), len(jobs))
    return runs


def run_bench(
    problem: str,
    strategies: Sequence[str],
    budget: int,
    seeds: int,
    out: Path,
    *,
    first_seed: int = 0,
    workers: int | None = None,
    metric: str | None = None,
    test_metric: str = "test_accuracy",
    count_repeats: bool = False,
    objectives: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every strategy (a name, or ``name[key=value, ...]``) for seeds ``first_seed`` to
    ``first_seed + seeds - 1``; write the four outputs, return the summary.  With
    ``objectives`` (``"val_accuracy:max,flops:min"``) the runs are multi-objective and
    judged by hypervolume regret (``archsearch.bench_pareto``)."""
    if budget < 1 or seeds < 1:
        raise ConfigError("budget and seeds must be at least 1")
    for spec in strategies:
        parse_strategy(spec)  # fail before any work on a bad name or parameter
    if objectives is not None:
        if metric is not None:
            raise ConfigError("--metric is for one objective; name it in --objectives")
        return _run_pareto(problem, strategies, budget, seeds, out, first_seed=first_seed,
                           workers=workers, count_repeats=count_repeats,
                           objectives=objectives, progress=progress)
    space, estimator = load_problem(problem, metric)
    oracle = estimator.oracle(test_metric)
    jobs = [(problem, s, seed, budget, metric, test_metric, count_repeats) for s in strategies
            for seed in range(first_seed, first_seed + seeds)]
    runs = _run_all(run_one, jobs, workers, progress)
    _write_runs(out, runs)
    summary = summarise(runs, oracle, budget, estimator.direction)
    summary.update({"problem": problem, "seeds": seeds, "metric": estimator.objective,
                    "first_seed": first_seed, "test_metric": test_metric,
                    "repeats_count_as_queries": count_repeats})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    title = f"{problem}, seeds {first_seed}-{first_seed + seeds - 1}"
    (out / "summary.md").write_text(
        f"{title}, budget {budget}, search metric {estimator.objective}"
        f"{', repeats count as queries' if count_repeats else ''} (mean ± std over seeds)\n\n"
        + markdown_table(summary))
    plot_regret(runs, oracle, budget, out / "regret.png", title, estimator.direction)
    return summary


def _write_runs(out: Path, runs: Sequence[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "runs.jsonl", "w") as f:
        for r in runs:
            f.write(json.dumps(r) + "\n")


def _run_pareto(problem: str, strategies: Sequence[str], budget: int, seeds: int, out: Path, *,
                first_seed: int, workers: int | None, count_repeats: bool, objectives: str,
                progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    from archsearch.bench_pareto import (
        markdown_pareto,
        plot_pareto,
        run_one_pareto,
        summarise_pareto,
        true_front_cached,
    )

    truth = true_front_cached(problem, objectives)  # before the workers fork: shared
    jobs = [(problem, s, seed, budget, objectives, count_repeats) for s in strategies
            for seed in range(first_seed, first_seed + seeds)]
    runs = _run_all(run_one_pareto, jobs, workers, progress)
    _write_runs(out, runs)
    summary = summarise_pareto(runs, truth, budget, REPORT_BUDGETS)
    summary.update({"problem": problem, "seeds": seeds, "first_seed": first_seed,
                    "repeats_count_as_queries": count_repeats})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    title = f"{problem}, {objectives}, seeds {first_seed}-{first_seed + seeds - 1}"
    (out / "summary.md").write_text(
        f"{title}, budget {budget}: hypervolume regret in the normalised objective space, "
        f"reference point {summary['reference']} per coordinate (mean ± standard error over "
        "seeds)\n\n" + markdown_pareto(summary))
    plot_pareto(runs, truth, budget, out / "regret.png", title)
    return summary
