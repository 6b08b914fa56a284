"""The shipped zero-cost proxy table of NAS-Bench-201 and the zero-cost-ranked search
that reads it."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import archsearch
from archsearch.errors import ConfigError
from archsearch.estimation.zero_cost import PROXIES
from archsearch.space.nb201 import NB201_SIZE, NB201Space
from archsearch.strategy.proxy_ranked import ProxyRankedSearch
from archsearch.tabular.nb201_proxies import (
    load_nb201_proxy,
    nb201_proxy_info,
    nb201_proxy_names,
)

HAS_ANB = importlib.util.find_spec("analognasbench") is not None
needs_anb = pytest.mark.skipif(not HAS_ANB, reason="analog-nasbench is not installed")


def test_the_table_has_synflow_for_every_cell() -> None:
    assert "synflow" in nb201_proxy_names()
    synflow = load_nb201_proxy("synflow")
    assert synflow.shape == (NB201_SIZE,) and not synflow.flags.writeable
    assert np.isfinite(synflow).all() and (synflow >= 0).all()
    assert synflow[0] == 0.0  # every edge none: the output ignores every weight
    info = nb201_proxy_info("synflow")
    assert info["channels"] == 16 and info["cells_per_stage"] == 5 and info["batch_size"] == 64
    assert info["cells"] == NB201_SIZE and info["proxy_seconds"] > 0


@pytest.mark.parametrize("index", [15624, 7770, 12329, 3083])
def test_synflow_in_the_table_is_a_fresh_computation(index: int) -> None:
    """Synflow reads only the input's shape, so the CIFAR-10 network's score is recomputed
    here without the images, as the table's script computes it."""
    space = NB201Space()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(index)
        model = space.build_network(space.from_index(index), (3, 32, 32), 10)
        torch.manual_seed(index)
        fresh = PROXIES["synflow"](model, torch.zeros(64, 3, 32, 32), torch.zeros(64).long())
    assert fresh == pytest.approx(load_nb201_proxy("synflow")[index], rel=1e-9)


def test_the_table_has_jacob_cov_for_every_cell_that_reads_its_input() -> None:
    jacob_cov = load_nb201_proxy("jacob_cov")
    assert jacob_cov.shape == (NB201_SIZE,) and not jacob_cov.flags.writeable
    assert np.isnan(jacob_cov[0])  # every edge none: no gradient reaches the input
    assert 0 < np.isnan(jacob_cov).sum() < NB201_SIZE // 10
    info = nb201_proxy_info("jacob_cov")
    assert info["cells"] == NB201_SIZE and info["proxy_seconds"] > 0


RANK_STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "logs" / \
    "proxy-ranking-2026-12-03"


@pytest.mark.skipif(not RANK_STUDY.is_dir(), reason="needs the repository's benchmarks/logs")
@pytest.mark.parametrize("proxy", ["synflow", "jacob_cov"])
def test_the_table_equals_the_rank_study_on_its_sample(proxy: str) -> None:
    """The table's script and ``proxy_ranking.py`` are separate runs (other processes,
    other days) of one scoring; on the 1,000 sampled cells they agree bit for bit."""
    table = load_nb201_proxy(proxy)
    compared = 0
    for chunk in sorted(RANK_STUDY.glob("chunk-*.json")):
        saved = json.loads(chunk.read_text())
        for index, score in zip(saved["indices"], saved["scores"][proxy], strict=True):
            expected = math.nan if score is None else score
            assert table[index] == expected or (math.isnan(table[index])
                                                and math.isnan(expected)), index
            compared += 1
    assert compared == 1000


def test_a_proxy_the_table_lacks_is_a_clear_error() -> None:
    missing = next(p for p in PROXIES if p not in nb201_proxy_names())
    with pytest.raises(ConfigError, match=f"not '{missing}'.*--proxies {missing}"):
        load_nb201_proxy(missing)


@needs_anb
@pytest.mark.parametrize(("proxy", "least"), [("synflow", 0.6), ("jacob_cov", 0.5)])
def test_the_proxies_rank_the_table(proxy: str, least: float) -> None:
    from scipy.stats import spearmanr

    from archsearch.tabular.nb201 import NB201Estimator

    accuracy = NB201Estimator().objective_values()
    scores = load_nb201_proxy(proxy)
    defined = ~np.isnan(scores)
    rho = spearmanr(scores[defined], accuracy[defined]).statistic
    assert rho > least  # published 0.74 and 0.73 on NAS-Bench-201's own CIFAR-10 accuracies


@needs_anb
def test_zero_cost_ranked_searches_the_table_without_data() -> None:
    from archsearch.tabular.nb201 import NB201Estimator

    table = NB201Estimator()
    study = archsearch.create_study(table.space, "zero-cost-ranked", table, seed=2,
                                    strategy_params={"pool": 300})
    study.optimize(trials=20)
    strategy = study.strategy
    assert isinstance(strategy, ProxyRankedSearch)
    synflow = load_nb201_proxy("synflow")
    pool = strategy.scored_pool()
    assert [s for _, s in pool] == [synflow[table.space.index(g)] for g, _ in pool]
    best_first = sorted(pool, key=lambda gs: -gs[1])[:20]
    assert [t.key for t in study.trials] == [table.space.key(g) for g, _ in best_first]


def test_a_trainable_nb201_space_of_another_size_still_needs_data() -> None:
    strategy = ProxyRankedSearch(NB201Space(channels=8, cells_per_stage=1), pool=5)
    with pytest.raises(ConfigError, match="was given no dataset"):
        strategy.ask([], np.random.default_rng(0))
