"""The shipped NAS-Bench-201 cost table (FLOPs, parameters of every cell at C=16, N=5)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from archsearch.estimation.cost import count_flops, count_parameters
from archsearch.space.nb201 import NB201_SIZE, NB201Space
from archsearch.tabular.nb201_cost import count_nb201_cost, load_nb201_cost

HAS_ANB = importlib.util.find_spec("analognasbench") is not None
needs_anb = pytest.mark.skipif(not HAS_ANB, reason="analog-nasbench is not installed")


def test_nb201_cost_file_shape_and_values() -> None:
    flops, params = load_nb201_cost()
    for array in (flops, params):
        assert array.shape == (NB201_SIZE,) and array.dtype == np.int64
        assert np.isfinite(array).all() and (array > 0).all()
        assert not array.flags.writeable
    assert load_nb201_cost()[0] is flops  # loaded once
    # the range: every edge none / pooling / skip ... every edge a 3x3 conv
    assert (flops.min(), flops.max()) == (15_566_080, 440_239_360)
    assert (params.min(), params.max()) == (73_306, 1_531_546)


def test_nb201_cost_matches_a_fresh_count() -> None:
    space = NB201Space(channels=16, cells_per_stage=5)
    flops, params = load_nb201_cost()
    rng = np.random.default_rng(2026)
    for index in rng.choice(NB201_SIZE, size=5, replace=False).tolist():
        model = space.build_network(space.from_index(index), (3, 32, 32), 10)
        fresh = (count_flops(model, (3, 32, 32)), count_parameters(model))
        assert (int(flops[index]), int(params[index])) == fresh, space.to_string(space.from_index(index))


def test_nb201_cost_matches_the_nas_bench_201_api() -> None:
    """NAS-Bench-201's API (``get_cost_info``, CIFAR-10) gives 113.95137 MFLOPs and 0.802426 M
    parameters for this cell (quoted in D-X-Y/NATS-Bench issue #36): its counter counts a
    multiply-add once and adds the classifier's 10 bias additions; ours counts it twice."""
    space = NB201Space()
    g = space.from_string(
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    flops, params = load_nb201_cost()
    i = space.index(g)
    assert (int(flops[i]) // 2 + 10) / 1e6 == pytest.approx(113.95137, abs=1e-5)
    assert int(params[i]) == 802_426
    assert count_nb201_cost(i) == (flops[i], params[i])


def test_nb201_cost_depends_on_the_conv_counts_only() -> None:
    """What is built is what is counted: ``none`` edges are not built, every other op is built
    and run even on an unreached node, so only the numbers of 1x1 and 3x3 convs matter."""
    space = NB201Space()
    flops, params = load_nb201_cost()
    convs = ("nor_conv_1x1", "nor_conv_3x3")
    counts = np.array([[list(g.values()).count(op) for op in convs] for g in space.enumerate()])
    one_1x1, one_3x3 = 2 * 5**5, 3 * 5**5  # edge 1<-0 a conv, every other edge none
    assert space.to_string(space.from_index(one_3x3)).startswith("|nor_conv_3x3~0|+|none~0|")
    for array in (flops, params):
        per_1x1, per_3x3 = array[one_1x1] - array[0], array[one_3x3] - array[0]
        assert (array == array[0] + counts[:, 0] * per_1x1 + counts[:, 1] * per_3x3).all()


@needs_anb
def test_nb201_estimator_returns_the_cost() -> None:
    from archsearch.tabular import NB201Estimator

    est = NB201Estimator()
    flops, params = load_nb201_cost()
    rng = np.random.default_rng(7)
    for index in [0, NB201_SIZE - 1, *rng.choice(NB201_SIZE, size=20).tolist()]:
        metrics = est.lookup_index(index)
        assert metrics["flops"] == float(flops[index]) and metrics["params"] == float(params[index])
        assert est.evaluate(est.space.from_index(index)) == metrics
