"""The report of an ``archsearch bench`` output directory: regret curves per strategy with
their bands (mean ± standard error over seeds), a table of the runs, and the summary.

``runs.jsonl`` holds each run's incumbent after every query; regrets are taken against
``summary.json``'s oracle exactly as ``archsearch.bench.summarise`` takes them, in the
summary's ``direction``.  Folders written before the summary stored it (archsearch 0.2)
have it read off the curves: an incumbent above the best value means the metric is
minimised."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.report.errors import ReportError
from archsearch.report.numbers import formatted, rounded
from archsearch.report.page import Page, Section
from archsearch.report.plotkit import PALETTE, axis, axis_name, layout


def bench_page(folder: Path) -> Page:
    runs, summary = _read(folder)
    budget = int(summary.get("budget") or max(len(_curve(r)) for r in runs))
    regrets = _regrets(runs, summary, budget)
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    first = next(iter(regrets))
    finals = {s: _band(regrets[first][s])[0][-1] for s in strategies}
    ranked = sorted((v, s) for s, v in finals.items() if v is not None and math.isfinite(v))
    best_value, best_strategy = ranked[0] if ranked else (None, "")
    facts = [("problem", str(summary.get("problem", "?"))),
             ("judged by", _judged_by(summary)),
             ("budget", f"{budget} queries per run"
              + (", repeats count as queries" if summary.get("repeats_count_as_queries") else "")),
             ("seeds", f"{summary.get('seeds', '?')} from {summary.get('first_seed', 0)}"),
             ("strategies", ", ".join(strategies)),
             ("runs", str(len(runs)))]
    if best_strategy:
        facts.append(("lowest final " + first, f"{best_strategy}: {formatted(best_value)}"))
    sections = [
        Section("regret-curves", "Regret per strategy",
                note="mean over seeds, band: ± one standard error; the buttons switch the "
                     "y axis between linear and log"),
        Section("trials-table", "Runs", kind="table", note="click a header to sort"),
        Section("config", "Summary (summary.json)", kind="config")]
    return Page(
        title=f"bench {summary.get('problem', folder.name)}", subtitle=str(folder),
        facts=facts, best_label=f"lowest mean {first} after {budget} queries"
        + (f" ({best_strategy})" if best_strategy else ""),
        best_text=formatted(best_value), best_number=best_value, sections=sections,
        config_text=json.dumps(summary, indent=2), trials=len(runs),
        data={"kind": "bench", "figures": {"regret-curves": _figure(regrets, strategies, budget)},
              "table": _table(runs, regrets, strategies)})


def _read(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    runs_file, summary_file = folder / "runs.jsonl", folder / "summary.json"
    if not runs_file.is_file() or not summary_file.is_file():
        raise ReportError(f"{folder} is a directory but not an `archsearch bench` output "
                          "(it needs runs.jsonl and summary.json)")
    runs = []
    for number, line in enumerate(runs_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            raise ReportError(f"{runs_file} line {number} is not JSON") from None
        if not isinstance(run, dict) or "strategy" not in run or not _curve(run):
            raise ReportError(f"{runs_file} line {number} is not a bench run "
                              "(strategy, seed and its curve)")
        runs.append(run)
    try:
        summary = json.loads(summary_file.read_text())
    except json.JSONDecodeError:
        raise ReportError(f"{summary_file} is not JSON") from None
    if not runs or not isinstance(summary, dict):
        raise ReportError(f"{folder} holds no bench runs")
    pareto = "hypervolume" in runs[0]
    needed = "true_hypervolume" if pareto else "oracle"
    if needed not in summary:
        raise ReportError(f"{summary_file} has no {needed!r}: not the summary of these runs")
    return runs, summary


def _curve(run: dict[str, Any]) -> list[Any]:
    curve = run.get("hypervolume", run.get("search"))
    return curve if isinstance(curve, list) else []


def _judged_by(summary: dict[str, Any]) -> str:
    if "true_hypervolume" in summary:
        goals = ", ".join(f"{o['metric']} ({o['direction']})" for o in summary.get("objectives", []))
        return (f"hypervolume regret over {goals} (normalised; true front "
                f"{summary.get('true_front_size', '?')} architectures)")
    oracle = summary["oracle"]
    return (f"regret of {summary.get('metric', 'the search metric')} (table best "
            f"{formatted(oracle.get('best_search'))}) and of {summary.get('test_metric', 'test')} "
            f"(test of that best {formatted(oracle.get('test_of_best_search'))})")


def _padded(curve: Sequence[Any], budget: int, empty: float) -> list[float]:
    """A run that stopped early (space exhausted) keeps its last value, as the summary does."""
    out = [math.nan if v is None else float(v) for v in curve[:budget]]
    return out + [out[-1] if out else empty] * (budget - len(out))


def _regrets(runs: Sequence[dict[str, Any]], summary: dict[str, Any], budget: int
             ) -> dict[str, dict[str, np.ndarray]]:
    """Regret kind -> strategy -> (runs x budget) array."""
    out: dict[str, dict[str, np.ndarray]] = {}
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    if "true_hypervolume" in summary:
        truth = float(summary["true_hypervolume"])
        out["hypervolume regret"] = {s: truth - np.array(
            [_padded(r["hypervolume"], budget, 0.0) for r in runs if r["strategy"] == s])
            for s in strategies}
        return out
    oracle = summary["oracle"]
    searched = [v for r in runs for v in r["search"] if v is not None and math.isfinite(v)]
    if summary.get("direction") in ("maximize", "minimize"):
        sign = 1.0 if summary["direction"] == "maximize" else -1.0
    else:
        sign = -1.0 if any(v > oracle["best_search"] + 1e-12 for v in searched) else 1.0
    for kind, key, best in (("search regret", "search", oracle["best_search"]),
                            ("test regret", "test", oracle["test_of_best_search"])):
        out[kind] = {s: sign * (float(best) - np.array(
            [_padded(r.get(key, []), budget, math.nan) for r in runs if r["strategy"] == s]))
            for s in strategies}
    return out


def _band(regret: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """Mean and standard error per query over the runs (a run without an incumbent yet
    does not count at that query)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a query where no run has a value
        mean = np.nanmean(regret, axis=0)
        count = np.sum(np.isfinite(regret), axis=0)
        spread = np.nanstd(regret, axis=0, ddof=1) if len(regret) > 1 else np.zeros(len(mean))
        stderr = np.where(count > 1, spread / np.sqrt(np.maximum(count, 1)), 0.0)
    return [rounded(v) for v in mean], [rounded(v) for v in stderr]


def _figure(regrets: dict[str, dict[str, np.ndarray]], strategies: Sequence[str],
            budget: int) -> dict[str, Any]:
    panels = len(regrets)
    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    for p, (kind, by_strategy) in enumerate(regrets.items()):
        gap = 0.08
        width = (1 - gap * (panels - 1)) / panels
        axes[axis_name("xaxis", p)] = axis("queries", anchor=axis_name("y", p),
                                           domain=[round(p * (width + gap), 4),
                                                   round(p * (width + gap) + width, 4)])
        axes[axis_name("yaxis", p)] = axis(f"{kind} (mean ± s.e.)", anchor=axis_name("x", p))
        for s, name in enumerate(strategies):
            mean, stderr = _band(by_strategy[name])
            steps = [q + 1 for q in range(budget) if mean[q] is not None]
            shown = [(m, e or 0.0) for m, e in zip(mean, stderr, strict=True) if m is not None]
            colour = PALETTE[s % len(PALETTE)]
            where = {"xaxis": axis_name("x", p), "yaxis": axis_name("y", p), "legendgroup": name}
            data.append({"type": "scatter", "mode": "lines", "name": f"{name} ± s.e.",
                         "x": steps + steps[::-1], "fill": "toself", "fillcolor": _faded(colour),
                         "y": [rounded(m + e) for m, e in shown]
                         + [rounded(m - e) for m, e in shown][::-1],
                         "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, **where})
            data.append({"type": "scatter", "mode": "lines", "name": name, "x": steps,
                         "y": [m for m, _ in shown], "line": {"color": colour, "width": 2},
                         "showlegend": p == 0, **where,
                         "hovertemplate": f"{name}<br>query %{{x}}: %{{y}}<extra>{kind}</extra>"})
    scale = {f"{axis_name('yaxis', p)}.type": "log" for p in range(panels)}
    menus = [{"type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.1,
              "yanchor": "bottom", "buttons": [
                  {"label": "linear", "method": "relayout",
                   "args": [{k: "linear" for k in scale}]},
                  {"label": "log", "method": "relayout", "args": [scale]}]}]
    return {"data": data, "layout": layout(
        height=460, margin={"l": 70, "r": 20, "t": 80, "b": 50},
        updatemenus=menus, **axes)}


def _faded(colour: str) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.2)"


def _table(runs: Sequence[dict[str, Any]], regrets: dict[str, dict[str, np.ndarray]],
           strategies: Sequence[str]) -> dict[str, Any]:
    """One row per run: strategy, seed, how it stopped, and its final regrets."""
    position = {name: 0 for name in strategies}
    rows = []
    for run in runs:
        index = position[run["strategy"]]
        position[run["strategy"]] += 1
        finals = [rounded(by[run["strategy"]][index][-1]) for by in regrets.values()]
        rows.append([run["strategy"], run.get("seed"), run.get("stop", ""), *finals])
    columns = [("strategy", "text"), ("seed", "num"), ("stopped", "text"),
               *((f"final {kind}", "num") for kind in regrets)]
    return {"columns": [{"name": n, "type": kind} for n, kind in columns], "rows": rows}
