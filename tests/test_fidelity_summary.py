"""``benchmarks/fidelity_search.py``'s summary: methods paired with a baseline by seed,
with the two paired tests whose p-values RESULTS.md quotes, checked by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fidelity_search", BENCHMARKS / "fidelity_search.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(method: str, seed: int, accuracy: float | None) -> dict[str, object]:
    return {"method": method, "seed": seed, "table_accuracy": accuracy, "trials": 1,
            "complete": 1, "epochs_trained": 9.0, "wall_seconds": 1.0, "proxy_seconds": 0.0}


def test_methods_pair_with_the_baseline_by_seed() -> None:
    fidelity = load()
    # Differences to random by seed: +1, +2, -3, +4, +5 (seed 5 has no random: unpaired;
    # seed 6 found nothing: left out).
    results = [row("random", s, a) for s, a in enumerate([90.0, 91.0, 92.0, 89.0, 90.0])]
    results += [row("sh", s, a) for s, a in
                enumerate([91.0, 93.0, 89.0, 93.0, 95.0, 99.0, None])]
    summary = fidelity.summarise(results, best=94.0)
    sh = summary["sh"]
    assert sh["vs_random_seeds"] == 5 and sh["vs_random_wins"] == 4
    assert sh["vs_random_mean"] == pytest.approx(1.8)
    # Sample variance of (1, 2, -3, 4, 5) is 38.8 / 4; t = mean / s.e. on 4 degrees of
    # freedom, whose two-sided p has a closed form: 1 - t (6 + t^2) / (4 + t^2)^(3/2).
    stderr = math.sqrt(38.8 / 4 / 5)
    assert sh["vs_random_stderr"] == pytest.approx(stderr)
    t = 1.8 / stderr
    assert sh["vs_random_t_p"] == pytest.approx(1 - t * (6 + t * t) / (4 + t * t) ** 1.5)
    # Signed ranks: the one negative difference has rank 3. Exact two-sided p: twice the
    # share of the 32 sign patterns whose negative rank sum is 3 or less ({}, {1}, {2},
    # {3}, {1, 2}): 2 * 5 / 32.
    assert sh["vs_random_wilcoxon_p"] == pytest.approx(10 / 32)
    assert "vs_random_mean" not in summary["random"]
    assert summary["random"]["table_accuracy_mean"] == pytest.approx(90.4)


def test_equal_results_are_no_evidence() -> None:
    fidelity = load()
    results = [row(m, s, 91.0) for m in ("random", "asha") for s in range(3)]
    asha = fidelity.summarise(results, best=94.0)["asha"]
    assert asha["vs_random_mean"] == 0.0 and asha["vs_random_wins"] == 0
    assert asha["vs_random_t_p"] == 1.0 and asha["vs_random_wilcoxon_p"] == 1.0
    assert not math.isnan(asha["vs_random_stderr"])


def test_printed_p_values_never_read_as_zero() -> None:
    summary_row = {"vs_random_t_p": 0.0006, "vs_random_wilcoxon_p": 0.052,
                   "vs_random_wins": 27, "vs_random_seeds": 32}
    fidelity = load()
    assert fidelity._tests(summary_row, "random") == (
        "t-test p < 0.001, Wilcoxon p = 0.052, better on 27 of 32")
    assert fidelity._tests(summary_row, "zero-cost-ranked") == ""
