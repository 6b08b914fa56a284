"""The study's two central figures: the best value so far (over trial number and over wall
clock) and the objective against cost, with the Pareto front of a multi-objective study."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from archsearch.objectives import Objective
from archsearch.report.numbers import rounded
from archsearch.report.plotkit import (
    KIND_NAMES,
    MARKERS,
    PALETTE,
    all_positive,
    axis,
    axis_name,
    kind_of,
    layout,
    marker,
    markers_trace,
    stacked_domains,
)
from archsearch.trial import FrozenTrial

#: Metrics that measure what a network costs, in the order the cost scatter offers them.
COST_METRICS = ("params", "flops", "macs", "latency_seconds", "latency_ms", "latency",
                "latency_spread_seconds", "train_seconds")


def objective_value(trial: FrozenTrial, k: int, objective: Objective) -> float | None:
    """The trial's value of objective ``k``: judged for a complete trial, else the metric
    as recorded (a pruned trial's last epoch), else None (a failed trial)."""
    if trial.values is not None:
        return trial.values[k]
    value = trial.metrics.get(objective.metric)
    return None if value is None else float(value)


def best_curve_figure(trials: Sequence[FrozenTrial], objectives: Sequence[Objective], *,
                      by_time: bool) -> dict[str, Any] | None:
    """Each objective's best so far (one subplot per objective) over trial number, or over
    seconds since the study started.  Complete trials are points, failed ones crosses on
    the curve (they have no value), pruned, repeated and infeasible ones marked apart."""
    placed = _placed(trials, by_time)
    if not placed:
        return None
    domains = stacked_domains(len(objectives))
    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    for k, objective in enumerate(objectives):
        data += _best_traces(placed, k, objective, by_time)
        axes[axis_name("yaxis", k)] = axis(f"{objective.metric} ({objective.direction[:3]})",
                                           domain=domains[k], anchor="x")
    what = "seconds since the first trial started" if by_time else "trial number"
    few = not by_time and len(placed) <= 12  # whole trial numbers on the ticks
    bottom = axis_name("y", len(objectives) - 1)
    return {"data": data, "layout": layout(
        height=300 + 200 * (len(objectives) - 1),
        xaxis=axis(what, anchor=bottom, **({"dtick": 1} if few else {})),
        meta={"trial": "customdata" if by_time else "x"}, **axes)}


def _placed(trials: Sequence[FrozenTrial], by_time: bool) -> list[tuple[float, FrozenTrial]]:
    """``(x, trial)`` for every finished trial, by x (stable: by number within a tie)."""
    starts = [t.started_at for t in trials if t.started_at is not None]
    start = min(starts, default=0.0)
    placed = []
    for t in trials:
        if kind_of(t) == "running":
            continue
        if not by_time:
            placed.append((float(t.number), t))
        elif t.finished_at is not None:
            placed.append((t.finished_at - start, t))
    return sorted(placed, key=lambda p: (p[0], p[1].number))


def _best_traces(placed: Sequence[tuple[float, FrozenTrial]], k: int, objective: Objective,
                 by_time: bool) -> list[dict[str, Any]]:
    better: Callable[[float, float], bool] = (
        (lambda a, b: a > b) if objective.direction == "maximize" else (lambda a, b: a < b))
    best: float | None = None
    line_x: list[float] = []
    line_y: list[float] = []
    groups: dict[str, tuple[list[Any], list[Any], list[int]]] = {}
    for x, t in placed:
        kind = kind_of(t)
        y = objective_value(t, k, objective)
        if kind == "complete" and y is not None and (best is None or better(y, best)):
            best = y
            line_x.append(x)
            line_y.append(y)
        xs, ys, numbers = groups.setdefault(kind, ([], [], []))
        xs.append(rounded(x))
        ys.append(rounded(y if y is not None else best))  # no value: marked on the curve
        numbers.append(t.number)
    if line_x:
        line_x.append(placed[-1][0])
        line_y.append(line_y[-1])
    first = rounded(line_y[0]) if line_y else 0
    yaxis = axis_name("y", k)
    traces = []
    for kind in MARKERS:
        if kind not in groups:
            continue
        xs, ys, numbers = groups[kind]
        trace = markers_trace(
            marker(kind), len(xs), name=KIND_NAMES[kind], x=xs,
            y=[first if y is None else y for y in ys], legendgroup=kind, showlegend=k == 0,
            xaxis="x", yaxis=yaxis,
            hovertemplate=f"trial %{{{'customdata' if by_time else 'x'}}}<br>%{{y}}"
                          f"<extra>{KIND_NAMES[kind]}</extra>")
        if by_time:  # the trial number, for the hover text and a click
            trace["customdata"] = numbers
        traces.append(trace)
    traces.append({"type": "scatter", "mode": "lines", "name": "best so far",
                   "x": [rounded(x) for x in line_x], "y": [rounded(y) for y in line_y],
                   "line": {"shape": "hv", "color": "#222", "width": 2}, "hoverinfo": "skip",
                   "legendgroup": "best", "showlegend": k == 0, "xaxis": "x", "yaxis": yaxis})
    return traces


def cost_options(trials: Sequence[FrozenTrial], objectives: Sequence[Objective]) -> list[str]:
    """What the cost scatter can put on x: the other objectives, then every recorded cost."""
    names = [o.metric for o in objectives[1:]]
    recorded = {m for t in trials for m in t.metrics}
    return names + [m for m in COST_METRICS if m in recorded and m not in names
                    and m != objectives[0].metric]


def cost_scatter_figure(trials: Sequence[FrozenTrial], objectives: Sequence[Objective],
                        highlighted: Collection[int]) -> dict[str, Any] | None:
    """The first objective against a cost (buttons choose which: the other objectives and
    the recorded costs), every complete trial once (repeats left out), the best trial or
    the Pareto front (``highlighted``) marked; with two objectives the front is drawn as a
    line when x is the second objective."""
    options = cost_options(trials, objectives)
    points = [t for t in trials if kind_of(t) in ("complete", "infeasible") and t.values]
    if not options or not points:
        return None
    groups = [[t for t in points if kind_of(t) == "complete"],
              [t for t in points if kind_of(t) == "infeasible"],
              [t for t in points if t.number in highlighted]]
    metrics = [o.metric for o in objectives]

    def x_of(t: FrozenTrial, option: str) -> Any:
        if option in metrics[1:]:
            k = metrics.index(option)
            return rounded(objective_value(t, k, objectives[k]))
        return rounded(t.metrics.get(option))

    def front_line(option: str) -> list[Any]:
        """The front members' x in the order of x, when the line is drawn (else none)."""
        if len(objectives) != 2 or option != metrics[1]:
            return []
        return sorted(x for t in groups[2] if (x := x_of(t, option)) is not None)

    # The line's y follow its x's order; x only changes with the buttons (to none).
    line_y = [rounded(objective_value(t, 0, objectives[0])) for t in
              sorted(groups[2], key=lambda t: x_of(t, metrics[-1]) or 0)] \
        if len(objectives) == 2 else []
    names = ["complete", "complete, infeasible",
             "Pareto front" if len(objectives) > 1 else "best trial"]
    styles = [marker("complete"), marker("infeasible"),
              {"symbol": "star", "size": 13, "color": PALETTE[3],
               "line": {"color": "#222", "width": 1}}]
    data: list[dict[str, Any]] = []
    for name, style, group in zip(names, styles, groups, strict=True):
        data.append(markers_trace(
            style, len(group), name=name, x=[x_of(t, options[0]) for t in group],
            y=[rounded(objective_value(t, 0, objectives[0])) for t in group],
            customdata=[t.number for t in group],
            hovertemplate="trial %{customdata}<br>x %{x}<br>y %{y}<extra></extra>"))
    data.append({"type": "scatter", "mode": "lines", "name": "front", "x": front_line(options[0]),
                 "y": line_y, "line": {"color": PALETTE[3], "dash": "dot"}, "hoverinfo": "skip",
                 "showlegend": False})
    buttons: list[dict[str, Any]] = []
    scales: list[str] = []
    for option in options:
        xs = [[x_of(t, option) for t in group] for group in groups]
        scale = "log" if option in COST_METRICS and all_positive(xs[0] + xs[1]) else "linear"
        scales.append(scale)
        buttons.append({"label": option, "method": "update", "args": [
            {"x": [*xs, front_line(option)]},
            {"xaxis.title.text": option, "xaxis.type": scale, "xaxis.autorange": True}]})
    # The x buttons above the legend, both left of Plotly's tool bar.
    menus = [{"type": "buttons", "direction": "right", "buttons": buttons, "showactive": True,
              "x": 0, "xanchor": "left", "y": 1.1, "yanchor": "bottom", "pad": {"r": 4}}]
    return {"data": data, "layout": layout(
        height=440, margin={"l": 70, "r": 20, "t": 80 if len(options) > 1 else 40, "b": 50},
        xaxis=axis(options[0], type=scales[0]),
        yaxis=axis(f"{objectives[0].metric} ({objectives[0].direction[:3]})"),
        updatemenus=menus if len(options) > 1 else [], meta={"trial": "customdata"})}
