"""The decisions a declarative space is made of: categorical and integer-range choices.

Each decision knows its legal values, how to sample itself, its neighbours and its
numeric encoding, so strategies never special-case a decision type (ConfigSpace's lesson).
A decision may be conditional: it exists only while another decision's value is in a set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from archsearch.space.genotype import Value


@dataclass(frozen=True)
class Condition:
    """Active only while ``parent``'s value is one of ``values`` (ConfigSpace's InCondition)."""

    parent: str
    values: frozenset[Value]

    def holds(self, assigned: Mapping[str, Value]) -> bool:
        return self.parent in assigned and assigned[self.parent] in self.values


@dataclass(frozen=True)
class Decision:
    """One choice among ``choices``.

    It is active when every one of ``conditions`` holds and, if ``any_of`` is given, at
    least one of ``any_of`` holds (e.g. a merge rule exists only if some skip exists).
    """

    name: str
    choices: tuple[Value, ...]
    conditions: tuple[Condition, ...] = field(default=())
    ordinal: bool = False  # neighbours are the adjacent values (integer ranges) rather than all
    any_of: tuple[Condition, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"decision {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"decision {self.name!r} repeats a choice: {self.choices!r}")
        # Keyed by type too, so True never matches 1 (bool is an int subclass).
        positions = {(type(c), c): i for i, c in enumerate(self.choices)}
        object.__setattr__(self, "_positions", positions)

    @property
    def size(self) -> int:
        return len(self.choices)

    def is_active(self, assigned: Mapping[str, Value]) -> bool:
        if not all(c.holds(assigned) for c in self.conditions):
            return False
        return not self.any_of or any(c.holds(assigned) for c in self.any_of)

    @property
    def parents(self) -> set[str]:
        return {c.parent for c in (*self.conditions, *self.any_of)}

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def index(self, value: Value) -> int:
        try:
            return self._positions[(type(value), value)]  # type: ignore[attr-defined]
        except (KeyError, TypeError):  # TypeError: an unhashable value is never a choice
            pass
        raise ValueError(
            f"{value!r} is not a legal value of {self.name!r}; choices are {list(self.choices)!r}"
        )

    def neighbours(self, value: Value) -> list[Value]:
        i = self.index(value)
        if self.ordinal:
            return [self.choices[j] for j in (i - 1, i + 1) if 0 <= j < len(self.choices)]
        return [c for j, c in enumerate(self.choices) if j != i]


def categorical(
    name: str,
    choices: Sequence[Value],
    conditions: Sequence[Condition] = (),
    any_of: Sequence[Condition] = (),
) -> Decision:
    return Decision(name, tuple(choices), tuple(conditions), any_of=tuple(any_of))


def when(parent: str, *values: Value) -> Condition:
    """Shorthand: ``when("depth", 2, 3)`` is active while depth is 2 or 3."""
    return Condition(parent, frozenset(values))


def int_range(
    name: str, low: int, high: int, conditions: Sequence[Condition] = ()
) -> Decision:
    """Integers ``low..high`` inclusive; mutation moves to an adjacent value."""
    if high < low:
        raise ValueError(f"decision {name!r}: empty range {low}..{high}")
    return Decision(name, tuple(range(low, high + 1)), tuple(conditions), ordinal=True)
