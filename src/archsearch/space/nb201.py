"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), trainable and looked up.

The cell has 4 nodes and 6 edges ``i<-j`` (node i reads node j), each one of 5 ops:
5**6 = 15,625 cells, all distinct (the benchmark trained isomorphic cells separately).
Decisions are named ``"edge1<-0"`` ... ``"edge3<-2"`` and listed in NAS-Bench-201's
canonical edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, so ``enumerate()`` yields the
cell whose base-5 code (over ``NB201_OPS``, first edge most significant) is i at step i.
The table lookup of these cells is ``archsearch.tabular.nb201.NB201Estimator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archsearch.space.base import DecisionSpace, InvalidGenotype
from archsearch.space.decisions import categorical
from archsearch.space.genotype import Genotype

if TYPE_CHECKING:
    from torch import nn

#: NAS-Bench-201's op list, in its own order.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The edges (target, source) in NAS-Bench-201's canonical order.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NB201_EDGE_NAMES = tuple(f"edge{i}<-{j}" for i, j in NB201_EDGES)
NB201_SIZE = len(NB201_OPS) ** len(NB201_EDGES)
#: Two-letter op names of ``NB201Space.format_compact``.
NB201_SHORT = {"none": "no", "skip_connect": "sk", "nor_conv_1x1": "c1", "nor_conv_3x3": "c3",
               "avg_pool_3x3": "ap"}

_OP_INDEX = {op: k for k, op in enumerate(NB201_OPS)}
_EDGE_INDEX = {edge: k for k, edge in enumerate(NB201_EDGES)}


class NB201Space(DecisionSpace):
    """The NAS-Bench-201 cell: one op per edge; mutation changes one edge's op.

    With the training estimator a cell is trained inside the NAS-Bench-201 macro network
    (``archsearch.nn.cells.NB201Network``): ``channels`` (C) and ``cells_per_stage`` (N)
    shape that network; the table was measured at C=16, N=5.  They change neither the
    cells, nor their keys, nor the table lookup.

    >>> space = NB201Space()
    >>> g = space.from_string("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|"
    ...                       "nor_conv_1x1~1|nor_conv_3x3~2|")
    >>> g["edge2<-1"], space.size(), len(space.neighbours(g))
    ('skip_connect', 15625, 24)
    >>> space.from_index(space.index(g)) == g
    True
    """

    name = "nb201"

    def __init__(self, channels: int = 16, cells_per_stage: int = 5) -> None:
        if channels < 1 or cells_per_stage < 1:
            raise ValueError("channels and cells_per_stage must be >= 1")
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        super().__init__([categorical(name, NB201_OPS) for name in NB201_EDGE_NAMES])

    def index(self, genotype: Genotype) -> int:
        """The cell's base-5 code, 0..15,624: its position in ``enumerate()``."""
        # Fast path: a Genotype keeps its items sorted by name, which is the edge order.
        items = genotype.pairs if isinstance(genotype, Genotype) else ()
        if len(items) == len(NB201_EDGE_NAMES):
            code = 0
            for (name, op), expected in zip(items, NB201_EDGE_NAMES, strict=True):
                k = _OP_INDEX.get(op) if name == expected and isinstance(op, str) else None
                if k is None:
                    break
                code = code * 5 + k
            else:
                return code
        self.validate(genotype)  # raises, naming the problem
        raise InvalidGenotype(f"not an NB201 cell: {genotype!r}")  # pragma: no cover

    def from_index(self, index: int) -> Genotype:
        if not 0 <= index < NB201_SIZE:
            raise ValueError(f"an NB201 index is 0..{NB201_SIZE - 1}, got {index}")
        ops: list[str] = []
        for _ in NB201_EDGES:
            index, k = divmod(index, 5)
            ops.append(NB201_OPS[k])
        return Genotype.of(dict(zip(NB201_EDGE_NAMES, reversed(ops), strict=True)))

    def edges(self, genotype: Genotype) -> list[tuple[int, int, str]]:
        """``(target, source, op)`` per edge, in canonical order (for network builders)."""
        self.validate(genotype)
        pairs = zip(NB201_EDGES, NB201_EDGE_NAMES, strict=True)
        return [(i, j, str(genotype[name])) for (i, j), name in pairs]

    def to_string(self, genotype: Genotype) -> str:
        """NAS-Bench-201's text form, ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        ops = {(i, j): op for i, j, op in self.edges(genotype)}
        groups = ("|" + "|".join(f"{ops[i, j]}~{j}" for j in range(i)) + "|" for i in (1, 2, 3))
        return "+".join(groups)

    def format(self, genotype: Genotype) -> str:
        return self.to_string(genotype)

    def format_compact(self, genotype: Genotype) -> str:
        """NAS-Bench-201's text form without its redundant parts, 17 characters: the
        ops abbreviated (``NB201_SHORT``), edges of a node split by ``|`` (from node 0, 1,
        2 in turn), nodes 1, 2, 3 by ``+``; ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...``
        is ``c3+no|sk+...``."""
        ops = {(i, j): NB201_SHORT[op] for i, j, op in self.edges(genotype)}
        return "+".join("|".join(ops[i, j] for j in range(i)) for i in (1, 2, 3))

    def from_string(self, text: str) -> Genotype:
        """Parse NAS-Bench-201's text form; raise ``InvalidGenotype`` saying what is wrong."""
        if not isinstance(text, str):
            raise InvalidGenotype(f"expected an NB201 string, got {type(text).__name__}")
        example = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise InvalidGenotype(
                f"an NB201 string has 3 '+'-separated groups (nodes 1, 2, 3) like {example}; "
                f"got {len(groups)} in {text!r}"
            )
        values: dict[str, str] = {}
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidGenotype(
                    f"group {node} of {text!r} must start and end with '|': {group!r}"
                )
            entries = group[1:-1].split("|")
            if len(entries) != node:
                raise InvalidGenotype(
                    f"group {node} of {text!r} must list {node} edge(s) op~j, got {group!r}"
                )
            for entry in entries:
                op, sep, source = entry.partition("~")
                if not sep or not source.isdigit():
                    raise InvalidGenotype(f"{entry!r} in {text!r} is not of the form op~j")
                j = int(source)
                if j >= node:
                    raise InvalidGenotype(
                        f"{entry!r} in group {node} of {text!r}: node {node} reads nodes "
                        f"0..{node - 1} only"
                    )
                if op not in _OP_INDEX:
                    raise InvalidGenotype(
                        f"unknown op {op!r} in {text!r}; ops are {list(NB201_OPS)}"
                    )
                name = NB201_EDGE_NAMES[_EDGE_INDEX[node, j]]
                if name in values:
                    raise InvalidGenotype(f"edge {node}<-{j} appears twice in {text!r}")
                values[name] = op
        return Genotype.of(values)

    def build_network(self, genotype: Genotype, input_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module:
        """The NAS-Bench-201 macro network of this cell at C = ``channels``,
        N = ``cells_per_stage``."""
        from archsearch.nn.cells import NB201Network

        if len(input_shape) != 3:
            raise ValueError(f"the nb201 network takes (C, H, W) images, "
                             f"not inputs of shape {input_shape}")
        return NB201Network(self.edges(genotype), channels=self.channels,
                            cells_per_stage=self.cells_per_stage, num_classes=num_classes,
                            in_channels=input_shape[0])

    def build_supernet(self, *, num_classes: int, in_channels: int, channels: int | None = None,
                       cells: int | None = None, **options: Any) -> nn.Module:
        """The supernet of this space (``archsearch.nn.supernet.NB201Supernet``), at the
        space's size unless ``channels`` / ``cells`` (per stage) say otherwise; ``options``
        are the supernet's (``auxiliary_skip``, ``auxiliary_op``, ``include_none``)."""
        from archsearch.nn.supernet import NB201Supernet

        return NB201Supernet(channels=channels or self.channels,
                             cells_per_stage=cells or self.cells_per_stage,
                             num_classes=num_classes, in_channels=in_channels, **options)

