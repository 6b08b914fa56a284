"""Figures of how training went: learning curves of a multi-fidelity study and the
architecture weights of a one-shot search, per edge over epochs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from archsearch.objectives import Objective
from archsearch.report.numbers import rounded
from archsearch.report.plotkit import KIND_NAMES, PALETTE, axis, axis_name, kind_of, layout
from archsearch.space.base import SearchSpace
from archsearch.storage import OneShotEpoch
from archsearch.trial import FrozenTrial

#: At most this many learning curves are drawn (those that ended best): ten thousand
#: curves are a grey blur and megabytes of page.
MAX_CURVES = 300


def curve_metric(trials: Sequence[FrozenTrial], objective: Objective) -> str | None:
    """The objective when the curves record it, else ``val_accuracy``, else None."""
    for name in (objective.metric, "val_accuracy"):
        if any(name in point for t in trials for point in t.curve):
            return name
    return None


def learning_curves_figure(trials: Sequence[FrozenTrial], objective: Objective
                           ) -> tuple[dict[str, Any] | None, str]:
    """The curves of the trials that trained in epochs (one line each, coloured by how the
    trial ended) and a note saying which were drawn."""
    metric = curve_metric(trials, objective)
    curved = [t for t in trials if t.curve and not t.cached]
    if metric is None or not curved:
        return None, ""
    sign = 1.0 if objective.direction == "maximize" else -1.0

    def final(t: FrozenTrial) -> float:
        values = [p[metric] for p in t.last_run if metric in p]
        return sign * values[-1] if values and math.isfinite(values[-1]) else -math.inf

    drawn = sorted(curved, key=lambda t: (-final(t), t.number))[:MAX_CURVES]
    note = (f"all {len(curved)} trials that trained in epochs" if len(drawn) == len(curved) else
            f"the {len(drawn)} of {len(curved)} curves that ended best")
    # Lines alone past a few curves: a marker per epoch is an SVG element each.  A curve
    # of one epoch (a one-epoch training) is only a marker, a line needs two points.
    few = sum(len(t.last_run) for t in drawn) <= 1000
    longest = max(len(t.last_run) for t in drawn)
    mode = "lines+markers" if few else "lines"
    data = []
    # One trace per kind, the curves separated by gaps: one SVG path each, however many.
    for colour, kind in zip((PALETTE[0], PALETTE[6], PALETTE[3]), ("complete", "pruned", "failed"),
                            strict=True):
        xs: list[Any] = []
        ys: list[Any] = []
        labels: list[Any] = []
        for t in sorted(drawn, key=lambda t: t.number):
            if kind_of(t) != kind and not (kind == "complete" and kind_of(t) == "infeasible"):
                continue
            points = [p for p in t.last_run if metric in p]  # one run: epochs increase
            xs += [rounded(p.get("epoch")) for p in points] + [None]
            ys += [rounded(p[metric]) for p in points] + [None]
            labels += [t.number] * len(points) + [None]
        if xs:
            data.append({"type": "scatter", "mode": mode, "name": KIND_NAMES[kind],
                         "x": xs, "y": ys, "customdata": labels, "connectgaps": False,
                         "line": {"color": colour, "width": 1.5}, "opacity": 0.7,
                         "marker": {"size": 4, "color": colour},
                         "hovertemplate": "trial %{customdata}<br>epoch %{x}: %{y}<extra></extra>"})
    return {"data": data, "layout": layout(
        xaxis=axis("epoch", **({"dtick": 1} if longest <= 12 else {})), yaxis=axis(metric),
        meta={"trial": "customdata"})}, note


def oneshot_labels(space: SearchSpace | None, cell_type: str, edges: int,
                   ops: int) -> tuple[list[str], list[str]]:
    """Edge and op names of a cell type's weight matrix (rows edges, columns ops), as the
    supernet orders them; plain numbers when the space is unknown or does not match."""
    from archsearch.space import DartsSpace, NB201Space
    from archsearch.space.nb201 import NB201_EDGES, NB201_OPS

    edge_names = [f"edge {e}" for e in range(edges)]
    op_names = [f"op {o}" for o in range(ops)]
    if isinstance(space, NB201Space) and (edges, ops) == (len(NB201_EDGES), len(NB201_OPS)):
        return [f"{i}<-{j}" for i, j in NB201_EDGES], list(NB201_OPS)
    if isinstance(space, DartsSpace):
        # A DARTS supernet's columns are the space's ops with "none" first; its rows every
        # (node, input) pair, node by node (node i reads all i earlier nodes).
        names = list(space.ops) if "none" in space.ops else ["none", *space.ops]
        rows = [f"{i}<-{j}" for i in range(2, 2 + space.steps) for j in range(i)]
        if (len(rows), len(names)) == (edges, ops):
            return rows, names
    return edge_names, op_names


def oneshot_weights_figure(epochs: Sequence[OneShotEpoch], space: SearchSpace | None
                           ) -> dict[str, Any] | None:
    """One small plot per edge (per cell type): each op's weight over the epochs."""
    if not epochs:
        return None
    first = epochs[0].arch_weights
    panels: list[tuple[str, str, int]] = []  # (cell type, edge name, row)
    ops_of: dict[str, list[str]] = {}
    for cell_type, matrix in first.items():
        edge_names, op_names = oneshot_labels(space, cell_type, len(matrix), len(matrix[0]))
        ops_of[cell_type] = op_names
        panels += [(cell_type, name, row) for row, name in enumerate(edge_names)]
    columns = min(len(panels), 6)
    rows = math.ceil(len(panels) / columns)
    x = [e.epoch for e in epochs]
    step = max(1, math.ceil(len(x) / 5))  # whole epochs on the x ticks
    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    annotations = []
    seen_ops: set[str] = set()
    for p, (cell_type, edge, row) in enumerate(panels):
        r, c = divmod(p, columns)
        xd = [round(c / columns + 0.012, 4), round((c + 1) / columns - 0.012, 4)]
        yd = [round(1 - (r + 1) / rows + 0.04 / rows * 2, 4), round(1 - r / rows - 0.06 / rows * 2, 4)]
        axes[axis_name("xaxis", p)] = {"domain": xd, "anchor": axis_name("y", p), "dtick": step,
                                       "showticklabels": r == rows - 1, "gridcolor": "#e5e5e5"}
        # Each edge its own y range: DARTS's weights often move by hundredths, which a
        # shared 0-to-1 axis would flatten into one line.
        axes[axis_name("yaxis", p)] = {"domain": yd, "anchor": axis_name("x", p),
                                       "gridcolor": "#e5e5e5", "tickfont": {"size": 9}}
        title = edge if len(first) == 1 else f"{cell_type} {edge}"
        annotations.append({"text": title, "x": sum(xd) / 2, "y": yd[1], "xref": "paper",
                            "yref": "paper", "xanchor": "center", "yanchor": "bottom",
                            "showarrow": False, "font": {"size": 11}})
        for o, op in enumerate(ops_of[cell_type]):
            data.append({"type": "scatter", "mode": "lines", "name": op, "legendgroup": op,
                         "showlegend": op not in seen_ops, "x": x,
                         "y": [_weight(e.arch_weights, cell_type, row, o) for e in epochs],
                         "line": {"color": PALETTE[o % len(PALETTE)], "width": 1.5},
                         "xaxis": axis_name("x", p), "yaxis": axis_name("y", p),
                         "hovertemplate": f"{op}<br>epoch %{{x}}: %{{y}}<extra>{title}</extra>"})
            seen_ops.add(op)
    return {"data": data, "layout": layout(
        height=120 + 170 * rows, annotations=annotations,
        **axes)}


def _weight(weights: Mapping[str, Any], cell_type: str, row: int, op: int) -> float | None:
    try:
        return rounded(weights[cell_type][row][op], 4)
    except (KeyError, IndexError, TypeError):  # an epoch recorded with another shape
        return None
