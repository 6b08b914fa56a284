"""The benchmark harness: protocol, summary arithmetic and the files it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from archsearch.bench import parse_problem, parse_strategy, split_strategies, summarise
from archsearch.cli import main
from archsearch.space import Genotype
from archsearch.tabular import TableOptimum

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason='needs Optuna: pip install "archsearch[optuna]"')
needs_tables = pytest.mark.skipif(
    importlib.util.find_spec("analognasbench") is None
    or importlib.util.find_spec("nas_bench_graph") is None,
    reason='needs the benchmark tables: pip install "archsearch[benchmarks]"')


def test_problem_names_are_checked() -> None:
    assert parse_problem("nb201") == ("nb201", {})
    assert parse_problem("nbgraph:cora") == ("nbgraph", {"table": "cora"})
    for bad in ("nb101", "nbgraph", "nb201:cifar100"):
        with pytest.raises(ValueError):
            parse_problem(bad)


def test_summary_regrets_are_computed_against_the_oracle() -> None:
    cell = Genotype.of({"edge": "conv"})
    oracle = TableOptimum(genotype=cell, val=10.0, test_at_best_val=9.0,
                          best_test_genotype=cell, best_test=9.5)
    runs = [
        {"strategy": "a", "seed": 0, "search": [8.0] * 9 + [10.0], "test": [7.0] * 9 + [9.0]},
        {"strategy": "a", "seed": 1, "search": [6.0] * 10, "test": [9.5] * 10},
        {"strategy": "b", "seed": 0, "search": [10.0] * 3, "test": [9.0] * 3},  # stopped early
    ]
    summary = summarise(runs, oracle, budget=10)
    a = summary["strategies"]["a"]["at"]["10"]
    assert a["search_regret"]["mean"] == pytest.approx(2.0)  # (0 + 4) / 2
    assert a["test_regret"]["mean"] == pytest.approx(-0.25)  # (0 + -0.5) / 2: test can beat it
    assert summary["strategies"]["a"]["fraction_reaching_optimum"] == 0.5
    b = summary["strategies"]["b"]
    assert b["at"]["10"]["search_regret"]["mean"] == 0.0  # padded with its last incumbent
    assert b["median_queries_to_optimum"] == 1


@needs_tables
@pytest.mark.parametrize("problem", ["nb201", "nbgraph:cora"])
def test_bench_writes_every_file(tmp_path: Path, problem: str) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--space", problem, "--strategies", "random,grid", "--budget", "12",
                 "--seeds", "3", "--workers", "2", "--out", str(out)]) == 0
    for name in ("runs.jsonl", "summary.json", "summary.md", "regret.png"):
        assert (out / name).stat().st_size > 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 6 and all(len(r["search"]) == 12 for r in runs)
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["strategies"]) == ["random", "grid"]
    assert set(summary["strategies"]["random"]["at"]) == {"10"}
    assert summary["direction"] == "maximize"  # the report reads regrets' sign from it
    # The incumbent's search metric never gets worse.
    assert all(a <= b for r in runs for a, b in zip(r["search"], r["search"][1:], strict=False))


@needs_tables
def test_bench_runs_are_reproducible(tmp_path: Path) -> None:
    from archsearch.bench import run_one

    a = run_one("nb201", "random", 4, 30, None, "test_accuracy")
    b = run_one("nb201", "random", 4, 30, None, "test_accuracy")
    assert a == b


def test_bench_rejects_unknown_strategy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--space", "nb201", "--strategies", "random,nope", "--budget", "5",
                 "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err


def test_strategy_specs_split_and_parse() -> None:
    specs = split_strategies("random, local-search[guided=true, initial_samples=5],optuna:tpe")
    assert specs == ["random", "local-search[guided=true, initial_samples=5]", "optuna:tpe"]
    assert parse_strategy(specs[1]) == ("local-search", {"guided": True, "initial_samples": 5})
    with pytest.raises(ValueError, match="unknown key 'foo'"):
        parse_strategy("local-search[foo=1]")
    with pytest.raises(ValueError, match="expected int"):
        parse_strategy("local-search[initial_samples=many]")
    with pytest.raises(ValueError, match="expected key=value"):
        parse_strategy("local-search[guided]")
    with pytest.raises(ValueError, match="bad strategy"):
        parse_strategy("local-search[guided=true")


@needs_tables
def test_bench_passes_parameters_and_seeds(tmp_path: Path) -> None:
    from archsearch.bench import run_one

    out = tmp_path / "bench"
    assert main(["bench", "--space", "nb201", "--strategies",
                 "regularized-evolution[population_size=5, sample_size=2]", "--budget", "10",
                 "--seeds", "2", "--first-seed", "7", "--workers", "1", "--out", str(out)]) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in runs] == [7, 8]
    assert runs[0] == run_one("nb201", "regularized-evolution[population_size=5, sample_size=2]",
                              7, 10, None, "test_accuracy")
    assert runs[0] != run_one("nb201", "regularized-evolution", 7, 10, None, "test_accuracy")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["first_seed"] == 7


@needs_optuna
def test_optuna_strategy_specs_parse() -> None:
    assert parse_strategy("optuna:tpe") == ("optuna:tpe", {})
    with pytest.raises(ValueError, match="unknown key 'foo'"):
        parse_strategy("optuna:tpe[foo=1]")


@needs_tables
def test_bench_on_the_proteins_table_uses_the_tables_own_space(tmp_path: Path) -> None:
    """ogbn-proteins has its own ops; the space must be the one the table was read with
    (the harness once built the default space and failed on every strategy)."""
    from archsearch.bench import load_problem, run_one

    space, estimator = load_problem("nbgraph:proteins")
    assert space is estimator.space and "gat" not in space.decision("op0").choices
    run = run_one("nbgraph:proteins", "random", 0, 5, None, "test_accuracy")
    assert len(run["search"]) == 5 and run["stop"] == "BUDGET"


def test_a_benchmark_setting_the_table_does_not_take_is_an_error() -> None:
    from archsearch.bench import load_problem

    with pytest.raises(ValueError, match="unknown key 'metric'"):
        load_problem("nbgraph:cora", metric="baseline")


@needs_tables
def test_multi_objective_bench_reports_hypervolume_regret(tmp_path: Path) -> None:
    from archsearch.bench_pareto import REFERENCE, true_front_cached
    from archsearch.pareto import hypervolume, non_dominated

    out = tmp_path / "mo"
    assert main(["bench", "--space", "nbgraph:cora", "--objectives", "val_accuracy:max,latency:min",
                 "--strategies", "random", "--budget", "12", "--seeds", "3", "--workers", "1",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    truth = true_front_cached("nbgraph:cora", "val_accuracy:max,latency:min")
    assert summary["true_hypervolume"] == pytest.approx(truth.hypervolume)
    # The true front is the table's non-dominated set, and nothing found can beat it.
    assert non_dominated(truth.front).all() and truth.front.min() >= 0 and truth.front.max() <= 1
    assert truth.hypervolume == pytest.approx(hypervolume(truth.front, [REFERENCE] * 2))
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    for run in runs:
        curve = run["hypervolume"]
        assert len(curve) == 12 and all(a <= b for a, b in zip(curve, curve[1:], strict=False))
        assert 0 < curve[-1] <= truth.hypervolume
        assert curve[-1] == pytest.approx(hypervolume(run["front"], [REFERENCE] * 2))
    regret = summary["strategies"]["random"]["at"]["10"]["hypervolume_regret"]
    assert regret["mean"] > 0 and regret["stderr"] >= 0
    assert (out / "regret.png").stat().st_size > 0
