"""Cell spaces and cell networks: the DARTS space, the NAS-Bench-201 and DARTS networks,
and both trained by the training estimator under the ask/tell strategies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from archsearch.data import Dataset, load_digits
from archsearch.estimation.training import TrainingEstimator
from archsearch.nn.cells import AvgPool3x3, DartsNetwork, NB201Network, darts_reductions
from archsearch.space import InvalidGenotype
from archsearch.space.cells import DARTS_OPS, DartsSpace
from archsearch.space.nb201 import NB201Space
from archsearch.storage import InMemoryStorage
from archsearch.strategy.evolution import Evolution
from archsearch.strategy.random_search import RandomSearch
from archsearch.strategy.reinforce import Reinforce
from archsearch.study import Budget, Study

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the DARTS space ------------------------------------------------------------------------


def test_darts_space_parses_and_prints_the_papers_genotype() -> None:
    space = DartsSpace()
    g = space.from_string(DARTS_V2)
    assert space.from_string(space.to_string(g)) == g
    assert space.cell(g, "normal")[4:6] == [("skip_connect", 0), ("sep_conv_3x3", 1)]
    assert g["reduce.node5"] == "max_pool_3x3~1|skip_connect~2"  # pairs sorted by input


def test_the_two_edges_of_a_node_are_unordered() -> None:
    space = DartsSpace(steps=2, ops=("skip_connect", "sep_conv_3x3"))
    a = space.from_cells([("skip_connect", 1), ("sep_conv_3x3", 0),
                          ("skip_connect", 2), ("skip_connect", 0)],
                         [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 2)
    b = space.from_cells([("sep_conv_3x3", 0), ("skip_connect", 1)]
                         + [("skip_connect", 0), ("skip_connect", 2)],
                         [("sep_conv_3x3", 1), ("sep_conv_3x3", 0)] * 2)
    assert a == b and space.key(a) == space.key(b)


def test_darts_space_size_counts_unordered_pairs_of_distinct_inputs() -> None:
    space = DartsSpace()
    per_cell = math.prod(math.comb(n, 2) * 7 * 7 for n in (2, 3, 4, 5))
    assert space.size() == per_cell ** 2
    assert "none" not in DARTS_OPS


@pytest.mark.parametrize("text", [
    "Genotype(normal=[('sep_conv_3x3', 0)], reduce=[])",
    "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 0)] * 4",
    "nothing here",
    DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)"),
    DARTS_V2.replace("dil_conv_3x3", "conv_7x7"),
    DARTS_V2.replace("('dil_conv_3x3', 2)", "__import__('os')"),
])
def test_bad_darts_strings_are_refused(text: str) -> None:
    with pytest.raises(InvalidGenotype):
        DartsSpace().from_string(text)


def test_darts_neighbours_change_one_edge() -> None:
    space = DartsSpace()
    g = space.sample(np.random.default_rng(0))
    neighbours = space.neighbours(g)
    assert len(neighbours) == 2 * sum(2 * (6 + k) for k in range(4))
    assert len({space.key(n) for n in neighbours}) == len(neighbours)
    for n in neighbours[:20]:
        changed = [d.name for d in space.decisions if n[d.name] != g[d.name]]
        assert len(changed) == 1
    assert space.encode(g).sum() == 16  # two edges per node, 8 nodes


# -- networks -------------------------------------------------------------------------------


def test_nb201_network_shapes_and_zero_cells() -> None:
    all_none = [(i, j, "none") for i, j in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))]
    net = NB201Network(all_none, channels=4, cells_per_stage=2, num_classes=7)
    assert net(torch.randn(3, 3, 16, 16)).shape == (3, 7)
    space = NB201Space(channels=4, cells_per_stage=1)
    g = space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                          "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    model = space.build_network(g, (1, 8, 8), 10)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # 3 stages of 1 cell with 3 convs each, 2 residual blocks, stem and head.
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 3 * 3 + 2 * 3


def test_fast_average_pool_matches_torch() -> None:
    x = torch.randn(2, 3, 9, 6)
    expected = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(AvgPool3x3()(x), expected)


def test_darts_network_shapes() -> None:
    space = DartsSpace(channels=4, cells=5)
    g = space.from_string(DARTS_V2)
    assert darts_reductions(8) == (2, 5) and darts_reductions(5) == (1, 3)
    model = space.build_network(g, (3, 16, 16), 10)
    assert isinstance(model, DartsNetwork)
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)
    out.sum().backward()


# -- trained by the estimator, searched by ask/tell strategies ------------------------------


@pytest.mark.parametrize("space", [
    NB201Space(channels=4, cells_per_stage=1),
    DartsSpace(steps=2, channels=4, cells=3),
], ids=["nb201", "darts"])
def test_strategies_search_cell_spaces_with_training(space: NB201Space | DartsSpace) -> None:
    digits = load_digits()
    few = Dataset("digits", digits.x_train[:400], digits.y_train[:400], digits.x_test[:100],
                  digits.y_test[:100], digits.classes)
    estimator = TrainingEstimator(few, space, epochs=1, batch_size=64, latency_repeats=1)
    strategies = [RandomSearch(space, seed=0),
                  Evolution(space, seed=0, population_size=2, parents=2, tournament_size=2),
                  Reinforce(space, seed=0, batch_size=2)]
    for strategy in strategies:
        study = Study(space, strategy, estimator, InMemoryStorage(), seed=0)
        study.optimize(budget=Budget(trials=3))
        assert [t.state.value for t in study.trials] == ["complete"] * 3, \
            [t.error for t in study.trials]
        assert all(0 <= t.metrics["val_accuracy"] <= 1 for t in study.trials)
