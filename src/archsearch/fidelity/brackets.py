"""Hyperband and successive-halving brackets: how many architectures train for how many
epochs, as HpBandSter computes them (``hpbandster/optimizers/hyperband.py``).

With ``s_max = floor(log_eta(max / min))`` the budgets are ``max * eta**-k`` for
``k = s_max .. 0``, anchored at ``max`` (the smallest is then at least ``min``, not equal
to it).  Iteration ``i`` runs bracket ``s = s_max - i mod (s_max + 1)``: it starts
``n0 = floor((s_max + 1) / (s + 1)) * eta**s`` architectures on the ``s + 1`` largest budgets
and keeps ``floor(n0 / eta**j)`` of them (at least 1) for rung ``j``.

>>> [[r.configs for r in b.rungs] for b in hyperband_brackets(12, 200, eta=3)]
[[9, 3, 1], [3, 1], [3]]
>>> [r.epochs for r in hyperband_brackets(12, 200, eta=3)[0].rungs]
[22, 67, 200]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from archsearch.errors import ConfigError
from archsearch.fidelity.pruners import curve_value, rank_key
from archsearch.trial import FrozenTrial


@dataclass(frozen=True)
class Rung:
    """``configs`` architectures train to ``epochs`` (``budget``, HpBandSter's real-valued
    budget, rounded half up; the last rung of every bracket is exactly ``max_epochs``)."""

    configs: int
    budget: float
    epochs: int


@dataclass(frozen=True)
class Bracket:
    """One successive-halving run: ``s + 1`` rungs, fewer architectures on more epochs."""

    s: int
    rungs: tuple[Rung, ...]


def _check(min_epochs: int, max_epochs: int, eta: int) -> None:
    for name, value in (("min_epochs", min_epochs), ("max_epochs", max_epochs), ("eta", eta)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: must be an integer, got {value!r}")
    if not 1 <= min_epochs <= max_epochs:
        raise ConfigError(f"need 1 <= min_epochs <= max_epochs, got min_epochs={min_epochs}, "
                          f"max_epochs={max_epochs}")
    if eta < 2:
        raise ConfigError(f"eta: must be >= 2, got {eta}")


def _s_max(min_epochs: int, max_epochs: int, eta: int) -> int:
    # Integer arithmetic: HpBandSter's float log loses a bracket at exact powers
    # (log(1/1000) / log(10) is -2.9999999999999996, so 1..1000 epochs at eta 10 get 3).
    s = 0
    while min_epochs * eta ** (s + 1) <= max_epochs:
        s += 1
    return s


def hyperband_brackets(min_epochs: int, max_epochs: int, eta: int = 3) -> list[Bracket]:
    """Hyperband's brackets in the order its iterations run them: ``s = s_max`` (the most
    aggressive) first, down to ``s = 0`` (every architecture on ``max_epochs``).

    Rounding never makes two rungs of a bracket equal, so nothing is merged or raised:
    consecutive budgets ``b`` and ``eta * b`` differ by ``(eta - 1) * b >= 1`` because the
    smallest budget is at least ``min_epochs >= 1``, and rounding half up keeps two numbers
    at least 1 apart in distinct integers.
    """
    _check(min_epochs, max_epochs, eta)
    s_max = _s_max(min_epochs, max_epochs, eta)
    # Budget k steps below the top; dividing keeps max_epochs / 1 exact.
    budgets = [max_epochs / eta**k for k in range(s_max, -1, -1)]
    brackets = []
    for s in range(s_max, -1, -1):
        n0 = (s_max + 1) // (s + 1) * eta**s
        rungs = tuple(
            Rung(configs=max(n0 // eta**j, 1), budget=b, epochs=max(1, int(b + 0.5)))
            for j, b in enumerate(budgets[s_max - s:])
        )
        brackets.append(Bracket(s=s, rungs=rungs))
    return brackets


def bracket_for_iteration(i: int, brackets: Sequence[Bracket]) -> Bracket:
    """The bracket Hyperband iteration ``i`` (from 0) runs: they cycle in the given order."""
    if isinstance(i, bool) or not isinstance(i, int) or i < 0:
        raise ConfigError(f"iteration: must be an integer >= 0, got {i!r}")
    if not brackets:
        raise ConfigError("brackets: empty")
    return brackets[i % len(brackets)]


def successive_halving_bracket(min_epochs: int, max_epochs: int, eta: int = 3) -> Bracket:
    """Plain successive halving: Hyperband's most aggressive bracket (``s = s_max``), which
    starts ``eta**s_max`` architectures on the smallest budget."""
    return hyperband_brackets(min_epochs, max_epochs, eta)[0]


def top_k(
    trials: Sequence[FrozenTrial], epoch: int, k: int, metric: str, maximize: bool,
    value: Callable[[FrozenTrial, int, str], float | None] = curve_value,
) -> list[FrozenTrial]:
    """The ``k`` best of ``trials`` by ``metric`` at ``epoch`` of their curves (``value``
    reads it; another fidelity than epochs passes its own reader), best first: a missing
    or NaN value ranks last, ties go to the lower trial number.  The caller chooses the
    trials (a rung's, cached ones left out)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"k: must be an integer >= 0, got {k!r}")
    ranked = sorted(trials, key=lambda t: (rank_key(value(t, epoch, metric), maximize), t.number))
    return ranked[:k]
