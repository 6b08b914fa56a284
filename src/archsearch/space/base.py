"""The search-space interface, and ``DecisionSpace``, which implements it for any
declarative list of (possibly conditional) decisions.

Every strategy talks to a space through this interface alone, so any strategy runs on
any space.  Nothing here imports torch: networks are built from genotypes in
``archsearch.nn``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from archsearch.errors import InvalidGenotype, SpaceTooLarge
from archsearch.space.decisions import Decision
from archsearch.space.genotype import Genotype, Value

if TYPE_CHECKING:  # spaces import no torch at run time
    from torch import nn

#: Grid search refuses to enumerate spaces larger than this unless told otherwise.
DEFAULT_ENUMERATION_LIMIT = 1_000_000


class SearchSpace(ABC):
    """What can be built.  Subclasses describe one family of architectures."""

    #: Registry name, e.g. ``"chain"``.
    name: str = ""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniformly chosen value for each active decision."""

    @abstractmethod
    def size(self) -> int:
        """The number of distinct architectures (canonical keys)."""

    @abstractmethod
    def enumerate(self, limit: int = DEFAULT_ENUMERATION_LIMIT) -> Iterator[Genotype]:
        """Every architecture once, in a fixed order; ``SpaceTooLarge`` past ``limit``."""

    @abstractmethod
    def validate(self, genotype: Genotype) -> None:
        """Raise ``InvalidGenotype`` naming the problem when the genotype is not ours."""

    @abstractmethod
    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """Architectures one edit away, in a fixed order, the genotype itself excluded."""

    @abstractmethod
    def encode(self, genotype: Genotype) -> np.ndarray:
        """A fixed-length float vector, for learned strategies and predictors."""

    def canonicalize(self, genotype: Genotype) -> Genotype:
        """One spelling per architecture; spaces with symmetries override this."""
        return genotype

    def key(self, genotype: Genotype) -> str:
        """The identity of an architecture: equal for two spellings of one network."""
        return self.canonicalize(genotype).to_json()

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """A random neighbour (a different architecture, one edit away)."""
        options = self.neighbours(genotype)
        if not options:
            return genotype
        return options[int(rng.integers(len(options)))]

    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        """A child that takes each decision from one parent or the other."""
        return a if rng.random() < 0.5 else b

    def format(self, genotype: Genotype) -> str:
        """A short human-readable form of an architecture (for tables and logs)."""
        return self.canonicalize(genotype).to_json()

    def format_compact(self, genotype: Genotype) -> str:
        """A one-line form short enough for an 80-column table (``archsearch show``); a
        space whose ``format`` is long abbreviates it here.  Defaults to ``format``."""
        return self.format(genotype)

    def describe(self) -> str:
        return f"{self.name} space with {self.size():,} architectures"


@runtime_checkable
class TrainableSpace(Protocol):
    """A space whose architectures can be built as PyTorch networks: what the training
    estimator (and any estimator that builds networks) needs.  Implement it on a space of
    your own and every trainable feature works on it.

    ``build_network`` returns an ``nn.Module`` mapping a batch of ``input_shape`` inputs
    ((C, H, W) images or (F,) vectors) to ``num_classes`` logits; import torch inside it,
    so that the space itself stays torch-free.
    """

    def build_network(self, genotype: Genotype, input_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module: ...


@runtime_checkable
class SupernetSpace(Protocol):
    """A cell space that one-shot search (DARTS, GDAS) can search: it builds a supernet
    (``archsearch.nn.supernet.Supernet``) whose ``derive()`` gives genotypes of the space.
    ``channels`` / ``cells`` override the space's own size; ``options`` are the supernet's
    (``auxiliary_skip``, ``auxiliary_op``, ``include_none``)."""

    def build_supernet(self, *, num_classes: int, in_channels: int, channels: int | None = None,
                       cells: int | None = None, **options: Any) -> nn.Module: ...


class DecisionSpace(SearchSpace):
    """A space declared as an ordered list of decisions; parents precede their children."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        names = [d.name for d in decisions]
        if len(set(names)) != len(names):
            raise ValueError("decision names must be unique")
        seen: set[str] = set()
        for d in decisions:
            for parent in sorted(d.parents):
                if parent not in seen:
                    raise ValueError(f"{d.name!r} depends on {parent!r}, which must come first")
            seen.add(d.name)
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self._by_name = {d.name: d for d in self.decisions}
        self._controllers = frozenset(p for d in self.decisions for p in d.parents)
        # _live[i]: the controllers that decisions i.. still depend on; counting memoises
        # on their values, which keeps size() linear in the number of decisions.
        self._live: list[tuple[str, ...]] = []
        for i in range(len(self.decisions) + 1):
            later = {p for d in self.decisions[i:] for p in d.parents}
            self._live.append(tuple(sorted(later)))
        self._size: int | None = None
        self._unconditional = not any(d.conditions or d.any_of for d in self.decisions)
        # encode(): one one-hot block per decision, in declaration order.
        sizes = [d.size for d in self.decisions]
        self._offsets = tuple(int(x) for x in np.cumsum([0, *sizes[:-1]]))
        self._width = sum(sizes)

    # -- helpers -----------------------------------------------------------------------
    def decision(self, name: str) -> Decision:
        return self._by_name[name]

    def active_values(self, values: Mapping[str, Value]) -> dict[str, Value]:
        """The values of the decisions active under ``values``, in declaration order."""
        if self._unconditional:  # every decision is always active (NAS-Bench-201)
            return {d.name: values[d.name] for d in self.decisions if d.name in values}
        out: dict[str, Value] = {}
        for d in self.decisions:
            if d.is_active(out) and d.name in values:
                out[d.name] = values[d.name]
        return out

    def _complete(
        self, partial: Mapping[str, Value], fill: Mapping[str, Value] | None,
        rng: np.random.Generator | None,
    ) -> Genotype:
        """Keep ``partial``'s active values; newly active decisions come from ``fill``,
        then ``rng``, then the first choice (deterministic neighbours need no rng)."""
        out: dict[str, Value] = {}
        for d in self.decisions:
            if not d.is_active(out):
                continue
            if d.name in partial:
                out[d.name] = partial[d.name]
            elif fill is not None and d.name in fill:
                out[d.name] = fill[d.name]
            elif rng is not None:
                out[d.name] = d.sample(rng)
            else:
                out[d.name] = d.choices[0]
        return Genotype.of(out)

    # -- the interface -----------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genotype:
        return self._complete({}, None, rng)

    def canonicalize(self, genotype: Genotype) -> Genotype:
        # Inactive decisions are dropped: two spellings differing only there are one network.
        return Genotype.of(self.active_values(genotype))

    def validate(self, genotype: Genotype) -> None:
        if not isinstance(genotype, Genotype):
            raise InvalidGenotype(f"expected a Genotype, got {type(genotype).__name__}")
        unknown = sorted(set(genotype) - set(self._by_name))
        if unknown:
            raise InvalidGenotype(f"unknown decision(s) for the {self.name} space: {unknown}")
        assigned: dict[str, Value] = {}
        for d in self.decisions:
            if not d.is_active(assigned):
                continue
            if d.name not in genotype:
                raise InvalidGenotype(f"missing decision {d.name!r} for the {self.name} space")
            try:
                d.index(genotype[d.name])
            except ValueError as err:
                raise InvalidGenotype(str(err)) from None
            assigned[d.name] = genotype[d.name]

    def _count(self, i: int, assigned: dict[str, Value], memo: dict[object, int]) -> int:
        """Completions of decisions i.. given the values assigned before them."""
        if i == len(self.decisions):
            return 1
        state = (i, tuple((n, assigned.get(n)) for n in self._live[i]))
        if state in memo:
            return memo[state]
        d = self.decisions[i]
        if not d.is_active(assigned):
            total = self._count(i + 1, assigned, memo)
        elif d.name in self._controllers:
            total = 0
            for v in d.choices:
                assigned[d.name] = v
                total += self._count(i + 1, assigned, memo)
            del assigned[d.name]
        else:
            total = d.size * self._count(i + 1, assigned, memo)
        memo[state] = total
        return total

    def size(self) -> int:
        if self._size is None:
            self._size = self._count(0, {}, {})
        return self._size

    def enumerate(self, limit: int = DEFAULT_ENUMERATION_LIMIT) -> Iterator[Genotype]:
        n = self.size()
        if n > limit:
            raise SpaceTooLarge(
                f"the {self.name} space has {n:,} architectures, more than the {limit:,} "
                "that can be enumerated; use a sampling strategy or a smaller space"
            )
        return self._enumerate({}, 0)

    def _enumerate(self, assigned: dict[str, Value], start: int) -> Iterator[Genotype]:
        for i in range(start, len(self.decisions)):
            d = self.decisions[i]
            if d.is_active(assigned):
                for v in d.choices:
                    assigned[d.name] = v
                    yield from self._enumerate(assigned, i + 1)
                del assigned[d.name]
                return
        yield Genotype.of(assigned)

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        current = self.active_values(genotype)
        out: list[Genotype] = []
        for name, value in current.items():
            for other in self._by_name[name].neighbours(value):
                if self._unconditional:  # nothing to bring to life or drop
                    out.append(Genotype.of({**current, name: other}))
                else:
                    out.append(self._complete({**current, name: other}, genotype, None))
        return out

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """Change one active decision to another of its values; decisions this brings to
        life are sampled.  Equal to a uniform neighbour when decisions have equal sizes
        (as in NAS-Bench-201), without building every neighbour."""
        current = self.active_values(genotype)
        names = [n for n in current if self._by_name[n].size > 1]
        if not names:
            return genotype
        name = names[int(rng.integers(len(names)))]
        options = self._by_name[name].neighbours(current[name])
        return self._complete({**current, name: options[int(rng.integers(len(options)))]}, None, rng)

    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        out: dict[str, Value] = {}
        for d in self.decisions:
            if not d.is_active(out):
                continue
            donors = [g for g in (a, b) if d.name in g]
            if donors:
                out[d.name] = donors[int(rng.integers(len(donors)))][d.name]
            else:
                out[d.name] = d.sample(rng)
        return Genotype.of(out)

    def encode(self, genotype: Genotype) -> np.ndarray:
        current = self.active_values(genotype)
        out = np.zeros(self._width, dtype=np.float32)
        for offset, d in zip(self._offsets, self.decisions, strict=True):
            if d.name in current:  # an inactive decision stays all zeros
                out[offset + d.index(current[d.name])] = 1.0
        return out
