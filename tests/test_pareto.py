"""``archsearch.pareto`` against the definitions: crowding distance on a hand-computed
example, non-dominated sorting and constrained ranks against O(n^2) brute force, and the
hypervolume against an exact count of the grid cells the points dominate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from archsearch.pareto import (
    constrained_ranks,
    crowding_distance,
    hypervolume,
    non_dominated,
    pareto_ranks,
)


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Larger is better: at least as good everywhere, better somewhere."""
    return bool(np.all(a >= b) and np.any(a > b))


def _brute_ranks(points: np.ndarray) -> np.ndarray:
    """Peel fronts: front 0 is what nothing dominates, front 1 what nothing left
    dominates once front 0 is gone, ..."""
    ranks = np.full(len(points), -1)
    front = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        for i in left:
            if not any(_dominates(points[j], points[i]) for j in left):
                ranks[i] = front
        front += 1
    return ranks


def _random_points(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Small integer coordinates, so ties in a coordinate and whole duplicates occur."""
    points = rng.integers(0, 5, size=(n, m)).astype(float)
    points[-1] = points[0]  # at least one duplicate row
    return points


# -- crowding distance ----------------------------------------------------------------------
def test_crowding_distance_of_a_hand_computed_front() -> None:
    # A (1, 5), B (2, 3), C (4, 2), D (6, 1): one front, both objectives maximised.
    # Objective 1 sorted: A 1, B 2, C 4, D 6; range 5; A and D extremes (inf);
    #   B: (4 - 1) / 5 = 0.6;   C: (6 - 2) / 5 = 0.8.
    # Objective 2 sorted: D 1, C 2, B 3, A 5; range 4; D and A extremes (inf);
    #   C: (3 - 1) / 4 = 0.5;   B: (5 - 2) / 4 = 0.75.
    # Sums: A inf, B 0.6 + 0.75 = 1.35, C 0.8 + 0.5 = 1.3, D inf.
    distance = crowding_distance([[1, 5], [2, 3], [4, 2], [6, 1]])
    assert distance[0] == distance[3] == np.inf
    assert distance[1] == pytest.approx(1.35)
    assert distance[2] == pytest.approx(1.3)


def test_crowding_distance_of_a_flat_objective_and_of_tiny_sets() -> None:
    # Objective 1: 1, 2, 3 (range 2): the middle one gets (3 - 1) / 2 = 1.
    # Objective 2 is 0 for all (range 0): it adds nothing but still marks its extremes
    # (rows 0 and 2 in the stable order) infinite.
    distance = crowding_distance([[1, 0], [2, 0], [3, 0]])
    assert distance[1] == pytest.approx(1.0)
    assert distance[0] == distance[2] == np.inf
    assert list(crowding_distance([[1, 2], [2, 1]])) == [np.inf, np.inf]
    assert list(crowding_distance([[1, 2]])) == [np.inf]


# -- non-dominated sorting ---------------------------------------------------------------------
@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_and_ranks_match_brute_force(m: int, seed: int) -> None:
    points = _random_points(np.random.default_rng(seed), 40, m)
    expected = _brute_ranks(points)
    assert list(pareto_ranks(points)) == list(expected)
    assert list(non_dominated(points)) == list(expected == 0)
    # duplicates share a front
    assert pareto_ranks(points)[0] == pareto_ranks(points)[-1]


def test_non_dominated_of_nothing_and_of_one() -> None:
    assert non_dominated(np.zeros((0, 2))).shape == (0,)
    assert list(non_dominated([[1.0, 2.0]])) == [True]
    assert list(pareto_ranks([[3.0], [1.0], [3.0], [2.0]])) == [0, 2, 0, 1]  # one objective


# -- constrained domination --------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_constrained_ranks_put_feasible_first_and_smaller_violations_next(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = _random_points(rng, 30, 2)
    violations = np.where(rng.random(30) < 0.4, rng.integers(1, 4, size=30) / 2, 0.0)
    ranks = constrained_ranks(points, violations)
    feasible = violations == 0
    # among the feasible: their own Pareto ranks
    assert list(ranks[feasible]) == list(_brute_ranks(points[feasible]))
    for i, j in itertools.permutations(range(30), 2):
        if feasible[i] and not feasible[j]:
            assert ranks[i] < ranks[j]  # feasible beats infeasible, whatever the scores
        elif not feasible[i] and not feasible[j]:
            # smaller violation beats larger; equal violations share a front
            assert np.sign(ranks[i] - ranks[j]) == np.sign(violations[i] - violations[j])


def test_constrained_ranks_without_feasible_points() -> None:
    ranks = constrained_ranks([[5, 5], [0, 0], [1, 1]], [0.5, 0.1, 0.5])
    assert list(ranks) == [1, 0, 1]


# -- hypervolume ---------------------------------------------------------------------------------
def _hypervolume_sweep_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact 2-D sweep (maximisation): by the first coordinate, largest first, each point
    that raises the best second coordinate so far adds a strip reaching back to the
    reference."""
    volume, top = 0.0, reference[1]
    for x, y in sorted(map(tuple, points), reverse=True):
        if x > reference[0] and y > top:
            volume += (x - reference[0]) * (y - top)
            top = y
    return volume


def _hypervolume_grid(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact in any dimension: the points' coordinates (above the reference) cut the box
    into cells; a cell is dominated iff some point is >= its upper corner everywhere, and
    the volume is the sum of the dominated cells' volumes."""
    cuts = [np.unique(np.concatenate([[r], points[:, k][points[:, k] > r]]))
            for k, r in enumerate(reference)]
    volume = 0.0
    for cell in itertools.product(*(range(len(c) - 1) for c in cuts)):
        upper = np.array([cuts[k][i + 1] for k, i in enumerate(cell)])
        if np.any(np.all(points >= upper, axis=1)):
            volume += float(np.prod([cuts[k][i + 1] - cuts[k][i] for k, i in enumerate(cell)]))
    return volume


@pytest.mark.parametrize("seed", range(10))
def test_hypervolume_2d_matches_an_exact_sweep(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(int(rng.integers(1, 40)), 2))
    points[-1] = points[0]  # a duplicate
    if len(points) > 3:  # a tie in one coordinate
        points[1, 0] = points[2, 0]
    reference = np.array([-1.0, -1.5])  # some points lie beyond it and count for nothing
    expected = _hypervolume_sweep_2d(points, reference)
    assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert _hypervolume_grid(points, reference) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_hypervolume_3d_matches_exact_cell_counting(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 9))  # up to 8 points: at most 9^3 cells
    points = np.round(rng.uniform(-0.5, 3.0, size=(n, 3)), 1)  # rounding makes ties
    front = points[non_dominated(points)] if seed % 2 else points  # fronts and clouds
    reference = np.zeros(3)
    assert hypervolume(front, reference) == pytest.approx(
        _hypervolume_grid(front, reference), rel=1e-12, abs=1e-12)


def test_hypervolume_of_nothing_and_of_points_beyond_the_reference() -> None:
    assert hypervolume(np.zeros((0, 2)), [0.0, 0.0]) == 0.0
    assert hypervolume([[-1.0, 5.0], [3.0, 0.0]], [0.0, 0.0]) == 0.0
    assert hypervolume([[2.0, 3.0]], [0.0, 1.0]) == pytest.approx(4.0)
