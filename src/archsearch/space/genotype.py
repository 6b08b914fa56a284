"""Genotypes: frozen, hashable, JSON-able descriptions of one architecture.

A genotype is nothing but the values of a space's decisions.  It knows no torch and
no space; the space that produced it gives it meaning (see ``SearchSpace.key``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

#: The value of one decision.  Kept to JSON scalars so a genotype survives a round trip.
Value = str | int | bool


@dataclass(frozen=True)
class Genotype(Mapping[str, Value]):
    """An immutable mapping ``decision name -> value``.

    >>> g = Genotype.of({"depth": 2, "layer0.op": "conv3x3"})
    >>> Genotype.from_json(g.to_json()) == g
    True
    """

    items_: tuple[tuple[str, Value], ...]
    # A dict view for O(1) lookups; derived from items_, so not part of equality or hash.
    _lookup: dict[str, Value] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", dict(self.items_))

    @classmethod
    def of(cls, values: Mapping[str, Value]) -> Genotype:
        for name, value in values.items():
            if not isinstance(name, str):
                raise TypeError(f"decision names must be strings, got {name!r}")
            if not isinstance(value, (str, int, bool)):
                raise TypeError(f"decision {name!r} has a non-scalar value {value!r}")
        return cls(tuple(sorted(values.items())))

    def __getitem__(self, name: str) -> Value:
        return self._lookup[name]

    def __contains__(self, name: object) -> bool:
        return name in self._lookup

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    @property
    def pairs(self) -> tuple[tuple[str, Value], ...]:
        """The ``(name, value)`` pairs, sorted by name."""
        return self.items_

    def replace(self, **changes: Value) -> Genotype:
        return Genotype.of({**self._lookup, **changes})

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, so equal genotypes give equal text."""
        return json.dumps(self._lookup, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a genotype's JSON must be an object of decision -> value")
        return cls.of(data)

    def __repr__(self) -> str:
        return f"Genotype({dict(self.items_)!r})"
