"""Pareto dominance over score vectors, where larger is better in every coordinate (the
study's scores: objectives oriented so).

Non-dominated sorting and the hypervolume come from ``moocore`` (López-Ibáñez et al.),
which minimises: scores are negated on the way in.  Crowding distance is NSGA-II's (Deb
et al., "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 2002,
section III-B), and constrained domination its section IV: a feasible point beats an
infeasible one, and of two infeasible ones the smaller constraint violation wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

Points = Sequence[Sequence[float]] | np.ndarray


def _as_points(scores: Points) -> np.ndarray:
    points = np.asarray(scores, dtype=float)
    return points.reshape(len(points), -1) if points.size else np.zeros((0, 1))


def non_dominated(scores: Points) -> np.ndarray:
    """A boolean mask of the rows no other row dominates (at least as good everywhere and
    better somewhere); duplicates of a non-dominated row are all kept."""
    points = _as_points(scores)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(-points, keep_weakly=True), dtype=bool)


def pareto_ranks(scores: Points) -> np.ndarray:
    """Each row's front, 0 for the non-dominated ones, 1 for those only they dominate, ..."""
    points = _as_points(scores)
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(-points), dtype=int)


def constrained_ranks(scores: Points, violations: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fronts under constrained domination: the feasible rows (violation 0) by their Pareto
    ranks, then the infeasible ones, one front per distinct violation, smallest first."""
    points = _as_points(scores)
    violations = np.asarray(violations, dtype=float)
    ranks = np.zeros(len(points), dtype=int)
    feasible = violations <= 0
    if feasible.any():
        ranks[feasible] = pareto_ranks(points[feasible])
    if (~feasible).any():
        base = int(ranks[feasible].max()) + 1 if feasible.any() else 0
        levels = np.unique(violations[~feasible])
        ranks[~feasible] = base + np.searchsorted(levels, violations[~feasible])
    return ranks


def crowding_distance(scores: Points) -> np.ndarray:
    """NSGA-II's crowding distance of each row within its set: per objective, the rows
    sorted, the two extremes infinite, the others the gap between their neighbours over
    the objective's range, summed over objectives."""
    points = _as_points(scores)
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(points[:, k], kind="stable")
        values = points[order, k]
        span = values[-1] - values[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def hypervolume(scores: Points, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by the rows and bounded by ``reference`` (a point worse than
    every row worth counting; rows not better than it in every coordinate add nothing)."""
    points = _as_points(scores)
    ref = np.asarray(reference, dtype=float)
    if len(points) == 0:
        return 0.0
    inside = np.all(points > ref, axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(points[inside], ref=ref, maximise=True))
