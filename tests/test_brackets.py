"""Hyperband / successive-halving bracket arithmetic (HpBandSter's rules) and top_k."""

from __future__ import annotations

import pytest

from archsearch.errors import ConfigError
from archsearch.fidelity import (
    Bracket,
    bracket_for_iteration,
    hyperband_brackets,
    successive_halving_bracket,
    top_k,
)
from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial, TrialState


def shape(bracket: Bracket) -> list[tuple[int, int]]:
    return [(r.configs, r.epochs) for r in bracket.rungs]


def test_nb201_bohb_example() -> None:
    # min 12, max 200, eta 3: s_max = floor(log3(200 / 12)) = floor(2.56) = 2; budgets
    # 200/9 = 22.2, 200/3 = 66.7, 200, rounded half up to 22, 67, 200.
    # s=2: n0 = floor(3/3) * 9 = 9 -> 9, 3, 1;  s=1: n0 = floor(3/2) * 3 = 3 -> 3, 1;
    # s=0: n0 = floor(3/1) * 1 = 3 -> 3.
    brackets = hyperband_brackets(12, 200, eta=3)
    assert [b.s for b in brackets] == [2, 1, 0]
    assert [shape(b) for b in brackets] == [[(9, 22), (3, 67), (1, 200)], [(3, 67), (1, 200)], [(3, 200)]]
    budgets = [r.budget for r in brackets[0].rungs]
    assert budgets == pytest.approx([200 / 9, 200 / 3, 200.0])
    assert [round(b, 1) for b in budgets] == [22.2, 66.7, 200.0]
    # Every bracket shares the top budgets: anchored at max, not at min.
    assert brackets[1].rungs[0].budget == brackets[0].rungs[1].budget


def test_powers_of_three_example() -> None:
    # min 1, max 27, eta 3: s_max = 3, budgets 1, 3, 9, 27 (exact).
    # s=3: n0 = floor(4/4) * 27 = 27 -> 27, 9, 3, 1 on 1, 3, 9, 27
    # s=2: n0 = floor(4/3) * 9 = 9   -> 9, 3, 1 on 3, 9, 27
    # s=1: n0 = floor(4/2) * 3 = 6   -> 6, 2 on 9, 27
    # s=0: n0 = floor(4/1) * 1 = 4   -> 4 on 27
    # (HpBandSter's floor((s_max+1)/(s+1)); Li et al.'s paper rounds up instead.)
    brackets = hyperband_brackets(1, 27, eta=3)
    assert [shape(b) for b in brackets] == [
        [(27, 1), (9, 3), (3, 9), (1, 27)],
        [(9, 3), (3, 9), (1, 27)],
        [(6, 9), (2, 27)],
        [(4, 27)],
    ]
    assert all(r.budget == r.epochs for b in brackets for r in b.rungs)


def test_exact_powers_keep_every_bracket() -> None:
    # log(1/1000)/log(10) is -2.9999999999999996 in floats, which drops a bracket in
    # HpBandSter; integer arithmetic gives s_max = 3.
    assert [b.s for b in hyperband_brackets(1, 1000, eta=10)] == [3, 2, 1, 0]
    assert [r.epochs for r in successive_halving_bracket(1, 1000, eta=10).rungs] == [1, 10, 100, 1000]


def test_rounding_is_half_up_and_never_merges_rungs() -> None:
    # min 2, max 5, eta 2: budgets 2.5, 5 -> 3 (half up, where round() would give 2), 5.
    assert [r.epochs for r in successive_halving_bracket(2, 5, eta=2).rungs] == [3, 5]
    # The smallest budget is >= min_epochs >= 1 and neighbours differ by (eta - 1) * b >= 1,
    # so rounding keeps rungs strictly increasing; check it over a grid of settings.
    for eta in (2, 3, 4, 5):
        for max_epochs in range(1, 130):
            for min_epochs in range(1, max_epochs + 1, 3):
                for bracket in hyperband_brackets(min_epochs, max_epochs, eta):
                    epochs = [r.epochs for r in bracket.rungs]
                    assert epochs[-1] == max_epochs
                    assert epochs[0] >= min_epochs
                    assert all(a < b for a, b in zip(epochs, epochs[1:], strict=False))
                    assert all(abs(r.epochs - r.budget) <= 0.5 for r in bracket.rungs)
                    configs = [r.configs for r in bracket.rungs]
                    assert all(a >= b >= 1 for a, b in zip(configs, configs[1:], strict=False))


def test_min_equal_to_max_is_one_bracket_on_max() -> None:
    brackets = hyperband_brackets(7, 7)
    assert [shape(b) for b in brackets] == [[(1, 7)]]


def test_iterations_cycle_from_most_aggressive() -> None:
    brackets = hyperband_brackets(1, 27, eta=3)
    # Iteration i runs s = s_max - (i mod (s_max + 1)).
    assert [bracket_for_iteration(i, brackets).s for i in range(9)] == [3, 2, 1, 0, 3, 2, 1, 0, 3]
    with pytest.raises(ConfigError, match="iteration"):
        bracket_for_iteration(-1, brackets)
    with pytest.raises(ConfigError, match="empty"):
        bracket_for_iteration(0, [])


def test_successive_halving_is_the_most_aggressive_bracket() -> None:
    bracket = successive_halving_bracket(12, 200, eta=3)
    assert bracket == hyperband_brackets(12, 200, eta=3)[0]
    assert bracket.s == 2 and shape(bracket) == [(9, 22), (3, 67), (1, 200)]
    # eta 2, 1..8 epochs: 8 on 1, 4 on 2, 2 on 4, 1 on 8.
    assert shape(successive_halving_bracket(1, 8, eta=2)) == [(8, 1), (4, 2), (2, 4), (1, 8)]


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 10, 3), "min_epochs"), ((5, 4, 3), "min_epochs <= max_epochs"), ((1, 10, 1), "eta"),
     ((1.5, 10, 3), "min_epochs: must be an integer"), ((1, 10, True), "eta: must be an integer")],
)
def test_bad_arguments(args: tuple[int, int, int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        hyperband_brackets(*args)
    with pytest.raises(ValueError):  # a ConfigError is a ValueError too
        successive_halving_bracket(*args)


def trial(number: int, values: list[float], cached: bool = False) -> FrozenTrial:
    curve = tuple({"epoch": float(e), "val_accuracy": v} for e, v in enumerate(values, start=1))
    return FrozenTrial(number=number, state=TrialState.RUNNING, genotype=Genotype.of({"n": number}),
                       key=str(number), curve=curve, cached=cached)


def test_top_k() -> None:
    nan = float("nan")
    trials = [trial(0, [0.1, 0.5]), trial(1, [0.2, nan]), trial(2, [0.3, 0.7]), trial(3, [0.4]),
              trial(4, [0.9, 0.7]), trial(5, [0.0, 0.6])]
    # At epoch 2: 0.7 (#2), 0.7 (#4: tie, higher number), 0.6, 0.5, then NaN (#1) and missing (#3).
    assert [t.number for t in top_k(trials, 2, 4, "val_accuracy", maximize=True)] == [2, 4, 5, 0]
    assert [t.number for t in top_k(trials, 2, 6, "val_accuracy", maximize=True)] == [2, 4, 5, 0, 1, 3]
    # Minimising: the low values first; NaN and missing still last.
    assert [t.number for t in top_k(trials, 2, 6, "val_accuracy", maximize=False)] == [0, 5, 2, 4, 1, 3]
    assert top_k(trials, 2, 0, "val_accuracy", maximize=True) == []
    assert len(top_k(trials, 1, 10, "val_accuracy", maximize=True)) == 6
    with pytest.raises(ConfigError, match="k"):
        top_k(trials, 2, -1, "val_accuracy", maximize=True)
