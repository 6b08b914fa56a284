"""The replay benchmark's budget accounting (``benchmarks/fidelity_replay.py``): what it
reports in RESULTS.md is only as good as the rule by which it spends epochs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fidelity_replay.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_replay", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def perfect_curves(truth: np.ndarray) -> dict[int, np.ndarray]:
    return {epochs: truth.copy() for epochs in (1, 3, 10)}


def test_random_takes_the_best_of_the_cells_it_can_afford() -> None:
    replay = load_script().replay
    truth = np.arange(100, dtype=float)
    order = np.random.default_rng(0).permutation(100)
    assert replay("random", perfect_curves(truth), truth, 35, order) == truth[order[:3]].max()


def test_one_bracket_costs_22_epochs_and_keeps_the_best_of_nine() -> None:
    """Eta 3 from 1 to 10 epochs: 9 cells x 1, the best 3 go 2 more, the best 1 goes 7 more."""
    replay = load_script().replay
    truth = np.arange(100, dtype=float)
    order = np.random.default_rng(1).permutation(100)
    curves = perfect_curves(truth)
    assert replay("successive-halving", curves, truth, 22, order) == truth[order[:9]].max()
    assert np.isnan(replay("successive-halving", curves, truth, 21, order))
    assert replay("successive-halving", curves, truth, 44, order) == truth[order[:18]].max()


def test_with_a_perfect_first_epoch_halving_never_loses_to_random() -> None:
    """It sees a superset of random's cells (same order) and never drops the best one."""
    replay = load_script().replay
    rng = np.random.default_rng(2)
    truth = rng.normal(90, 2, 200)
    for _ in range(50):
        order = rng.permutation(200)
        assert (replay("successive-halving", perfect_curves(truth), truth, 146, order)
                >= replay("random", perfect_curves(truth), truth, 146, order))


def test_a_first_epoch_that_ranks_backwards_keeps_the_worst() -> None:
    replay = load_script().replay
    truth = np.arange(100, dtype=float)
    curves = {1: -truth, 3: -truth, 10: truth}
    order = np.random.default_rng(3).permutation(100)
    assert replay("successive-halving", curves, truth, 22, order) == truth[order[:9]].min()
