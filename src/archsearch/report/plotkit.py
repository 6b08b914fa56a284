"""What every figure of the report shares: colours, marker styles per trial state, and the
base layout.  Figures are plain dicts in Plotly's JSON form (``{"data": [...], "layout":
{...}}``), handed to ``Plotly.newPlot`` by ``assets/report.js``; only SVG ``scatter`` traces
are used, since WebGL (``scattergl``) is missing in a headless browser without a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.trial import FrozenTrial, TrialState

#: Tableau 10 (as Vega orders it): distinct hues that stay readable when printed grey.
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#bab0ac")

#: How each kind of trial is marked wherever trials are drawn, so a legend learnt once reads
#: every plot: a failed trial is a red cross, a repeat an open grey circle, and so on.
MARKERS: dict[str, dict[str, Any]] = {
    "complete": {"symbol": "circle", "color": PALETTE[0], "size": 6, "opacity": 0.55},
    "infeasible": {"symbol": "diamond", "color": PALETTE[1], "size": 7, "opacity": 0.7},
    "repeat": {"symbol": "circle-open", "color": "#8c8c8c", "size": 7, "opacity": 0.8},
    "pruned": {"symbol": "triangle-down", "color": PALETTE[6], "size": 7, "opacity": 0.7},
    "failed": {"symbol": "x", "color": PALETTE[3], "size": 8, "opacity": 0.9},
}

#: What each kind is called in legends.
KIND_NAMES = {"complete": "complete", "infeasible": "complete, infeasible",
              "repeat": "repeat (cached)", "pruned": "pruned", "failed": "failed"}


def kind_of(trial: FrozenTrial) -> str:
    """The trial's kind for marking: failed and pruned first, then a repeat (answered from
    an earlier trial's record), then complete, feasible or not; ``running`` is not drawn."""
    if trial.state is TrialState.FAILED:
        return "failed"
    if trial.state is TrialState.PRUNED:
        return "pruned"
    if trial.state is TrialState.RUNNING:
        return "running"
    if trial.cached:
        return "repeat"
    return "complete" if trial.feasible else "infeasible"


def marker(kind: str) -> dict[str, Any]:
    style = MARKERS[kind]
    return {"symbol": style["symbol"], "color": style["color"], "size": style["size"],
            "opacity": style["opacity"]}


#: Past this many points a trace draws a spread-out subset of them (Plotly's
#: ``marker.maxdisplayed``; zooming in draws more): every SVG marker is a DOM element, and
#: three plots of 10,000 took about 2 s to open where 1,500 each take 0.5 s.  Hover and
#: click still reach every point.
MAX_DRAWN_POINTS = 1500


def markers_trace(kind_marker: dict[str, Any], count: int, **trace: Any) -> dict[str, Any]:
    """A ``scatter`` trace of markers, thinned on screen past ``MAX_DRAWN_POINTS``."""
    style = dict(kind_marker)
    if count > MAX_DRAWN_POINTS:
        style["maxdisplayed"] = MAX_DRAWN_POINTS
    return {"type": "scatter", "mode": "markers", "marker": style, **trace}


def layout(height: int = 380, **extra: Any) -> dict[str, Any]:
    """The base layout: a compact margin, the legend above the plot.  No title: the
    section's heading above the plot says what it is."""
    return {"height": height, "margin": {"l": 70, "r": 20, "t": 40, "b": 50},
            "hovermode": "closest", "paper_bgcolor": "#fff",
            # The legend top left: Plotly's tool bar takes the top right.
            "plot_bgcolor": "#fafafa", "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom",
                                                  "x": 0, "xanchor": "left"},
            **extra}


def axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "zeroline": False, "gridcolor": "#e5e5e5", **extra}


def stacked_domains(rows: int, gap: float = 0.08) -> list[list[float]]:
    """Vertical domains of ``rows`` subplots, top first."""
    height = (1 - gap * (rows - 1)) / rows
    return [[round(1 - r * (height + gap) - height, 4), round(1 - r * (height + gap), 4)]
            for r in range(rows)]


def axis_name(prefix: str, index: int) -> str:
    """Plotly's names: ``x``, ``x2``, ... in traces; ``xaxis``, ``xaxis2``, ... in layouts."""
    return prefix if index == 0 else f"{prefix}{index + 1}"


def all_positive(values: Sequence[float | int | None]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(v > 0 for v in present)
