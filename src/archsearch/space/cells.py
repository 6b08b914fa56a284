"""The DARTS cell space (Liu, Simonyan & Yang, ICLR 2019): a normal and a reduction cell.

A cell has 2 input nodes (0 = the output of the cell before the previous one, 1 = the
previous cell's) and ``steps`` intermediate nodes 2, 3, ...; intermediate node i sums two
edges, each an operation applied to one of the nodes before it, and the cell outputs the
concatenation of its intermediate nodes.  The two edges of a node are unordered (a sum)
and read two *different* nodes, as in DARTS's derived cells.

So each node is declared as **one** categorical decision over unordered pairs of
``(op, input)``, spelled ``"op~i|op~j"`` with ``i < j``: every genotype is then its own
canonical form, ``size()`` counts distinct networks exactly, and a strategy that changes
one decision changes one node.  Mutation (``neighbours``) is finer: it changes the op or
the input of one edge.  With the 7 DARTS ops and 4 steps a cell has
49 * 147 * 294 * 490 choices, about 1.0e9, and the space about 1.1e18.

``none`` is not a discrete choice by default: DARTS derives cells without it (it only
competes inside the supernet's mixed operations).  ``channels`` and ``cells`` describe the
network the training estimator builds (stem of ``3 * channels``, reduction cells at 1/3 and
2/3 of the depth); they do not change the genotypes.

>>> space = DartsSpace()
>>> g = space.from_string(
...     "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
...     "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
...     "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
...     "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
...     "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
>>> g["normal.node4"]
'skip_connect~0|sep_conv_3x3~1'
>>> space.from_string(space.to_string(g)) == g
True
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.space.base import DecisionSpace, InvalidGenotype
from archsearch.space.decisions import categorical
from archsearch.space.genotype import Genotype

if TYPE_CHECKING:  # spaces import no torch at run time
    from torch import nn

#: DARTS's candidate operations, in its ``PRIMITIVES`` order (``none`` first).
DARTS_PRIMITIVES = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
#: The ops a derived (discrete) DARTS cell may use: all but ``none``.
DARTS_OPS = DARTS_PRIMITIVES[1:]
CELL_TYPES = ("normal", "reduce")
#: Two-letter op names of ``DartsSpace.format_compact``.
DARTS_SHORT = {"none": "no", "max_pool_3x3": "mp", "avg_pool_3x3": "ap", "skip_connect": "sk",
               "sep_conv_3x3": "s3", "sep_conv_5x5": "s5", "dil_conv_3x3": "d3",
               "dil_conv_5x5": "d5"}

#: One edge of a cell: (op, input node).
Edge = tuple[str, int]


def _pair_value(a: Edge, b: Edge) -> str:
    (op_a, i), (op_b, j) = sorted((a, b), key=lambda e: e[1])
    return f"{op_a}~{i}|{op_b}~{j}"


def _parse_pair(value: str) -> tuple[Edge, Edge]:
    first, second = value.split("|")
    op_a, i = first.rsplit("~", 1)
    op_b, j = second.rsplit("~", 1)
    return (op_a, int(i)), (op_b, int(j))


class DartsSpace(DecisionSpace):
    """Normal and reduction cells of the DARTS CNN space; one decision per node.

    Decisions are named ``"normal.node2"`` .. ``"reduce.node{steps + 1}"``.
    ``cell(genotype, "normal")`` gives the DARTS list of ``(op, input)`` pairs, two per node.
    """

    name = "darts"

    def __init__(
        self,
        steps: int = 4,
        ops: Sequence[str] = DARTS_OPS,
        channels: int = 16,
        cells: int = 8,
    ) -> None:
        if steps < 1:
            raise ValueError(f"a cell needs at least 1 intermediate node, got steps={steps}")
        unknown = sorted(set(ops) - set(DARTS_PRIMITIVES))
        if unknown or not ops or len(set(ops)) != len(ops):
            raise ValueError(f"ops must be distinct names from {list(DARTS_PRIMITIVES)}, got {ops}")
        if channels < 1 or cells < 1:
            raise ValueError("channels and cells must be >= 1")
        self.steps = steps
        self.ops = tuple(ops)
        self.channels = channels
        self.cells = cells
        decisions = []
        for cell in CELL_TYPES:
            for node in range(2, 2 + steps):
                edges = [(op, i) for i in range(node) for op in self.ops]
                pairs = [_pair_value(a, b) for a, b in itertools.combinations(edges, 2)
                         if a[1] != b[1]]
                decisions.append(categorical(f"{cell}.node{node}", pairs))
        super().__init__(decisions)
        self._op_index = {op: k for k, op in enumerate(self.ops)}

    # -- DARTS's own form -----------------------------------------------------------------
    def cell(self, genotype: Genotype, cell_type: str) -> list[Edge]:
        """The cell as DARTS lists it: ``[(op, input), ...]``, two per node, in node order."""
        self.validate(genotype)
        out: list[Edge] = []
        for node in range(2, 2 + self.steps):
            out.extend(_parse_pair(str(genotype[f"{cell_type}.node{node}"])))
        return out

    def from_cells(self, normal: Sequence[Edge], reduce: Sequence[Edge]) -> Genotype:
        """The genotype of two DARTS edge lists (the pair order within a node is free)."""
        values: dict[str, str] = {}
        for cell_type, edges in (("normal", normal), ("reduce", reduce)):
            edges = [(str(op), int(i)) for op, i in edges]
            if len(edges) != 2 * self.steps:
                raise InvalidGenotype(
                    f"a {cell_type} cell lists 2 edges per node, {2 * self.steps} in all; "
                    f"got {len(edges)}")
            for k, node in enumerate(range(2, 2 + self.steps)):
                a, b = edges[2 * k], edges[2 * k + 1]
                values[f"{cell_type}.node{node}"] = _pair_value(a, b)
        genotype = Genotype.of(values)
        self.validate(genotype)
        return genotype

    def build_network(self, genotype: Genotype, input_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module:
        """The DARTS network of ``cells`` cells (reductions at 1/3 and 2/3 of the depth)
        starting at ``channels`` channels; ``archsearch.nn.cells.DartsNetwork``."""
        from archsearch.nn.cells import DartsNetwork

        if len(input_shape) != 3:
            raise ValueError(f"the darts network takes (C, H, W) images, "
                             f"not inputs of shape {input_shape}")
        return DartsNetwork(self.cell(genotype, "normal"), self.cell(genotype, "reduce"),
                            channels=self.channels, cells=self.cells, num_classes=num_classes,
                            in_channels=input_shape[0])

    def build_supernet(self, *, num_classes: int, in_channels: int, channels: int | None = None,
                       cells: int | None = None, **options: Any) -> nn.Module:
        """The supernet of this space (``archsearch.nn.supernet.DartsSupernet``), with
        ``none`` among its ops as in DARTS's search, at the space's size unless
        ``channels`` / ``cells`` say otherwise; ``options`` are the supernet's
        (``auxiliary_skip``, ``auxiliary_op``; it never derives ``none``, so
        ``include_none`` is accepted and has no effect)."""
        from archsearch.nn.supernet import DartsSupernet

        options.pop("include_none", None)
        ops = self.ops if "none" in self.ops else ("none", *self.ops)
        return DartsSupernet(channels=channels or self.channels, cells=cells or self.cells,
                             steps=self.steps, ops=ops, num_classes=num_classes,
                             in_channels=in_channels, **options)

    def to_string(self, genotype: Genotype) -> str:
        """The DARTS paper's form, ``Genotype(normal=[...], normal_concat=[2, 3, 4, 5], ...)``."""
        concat = list(range(2, 2 + self.steps))
        normal, reduce = self.cell(genotype, "normal"), self.cell(genotype, "reduce")
        return (f"Genotype(normal={normal}, normal_concat={concat}, "
                f"reduce={reduce}, reduce_concat={concat})")

    def from_string(self, text: str) -> Genotype:
        """Parse the DARTS paper's form; raise ``InvalidGenotype`` saying what is wrong."""
        if not isinstance(text, str):
            raise InvalidGenotype(f"expected a DARTS genotype string, got {type(text).__name__}")
        cells: dict[str, list[Edge]] = {}
        for cell_type in CELL_TYPES:
            found = re.search(rf"\b{cell_type}\s*=\s*(\[[^\]]*\])", text)
            if found is None:
                raise InvalidGenotype(f"no '{cell_type}=[...]' list in {text!r}")
            try:
                edges = ast.literal_eval(found.group(1))  # literals only: never code
            except (ValueError, SyntaxError):
                raise InvalidGenotype(f"the {cell_type} list of {text!r} is not a list of "
                                      "('op', input) pairs") from None
            if not all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str)
                       and isinstance(e[1], int) for e in edges):
                raise InvalidGenotype(f"the {cell_type} list of {text!r} must hold ('op', input) "
                                      "pairs")
            cells[cell_type] = edges
        return self.from_cells(cells["normal"], cells["reduce"])

    def format(self, genotype: Genotype) -> str:
        return self.to_string(genotype)

    def format_compact(self, genotype: Genotype) -> str:
        """Both cells with abbreviated ops (``DARTS_SHORT``): ``N:`` the normal cell,
        ``R:`` the reduction cell, each node's two edges ``op~input`` joined by ``,`` and
        nodes by ``|``, e.g. ``N:s3~0,s3~1|sk~0,s3~1 R:mp~0,mp~1|sk~2,mp~1``."""
        def cell(kind: str) -> str:
            edges = [f"{DARTS_SHORT.get(op, op)}~{i}" for op, i in self.cell(genotype, kind)]
            return "|".join(",".join(edges[k:k + 2]) for k in range(0, len(edges), 2))

        return f"N:{cell('normal')} R:{cell('reduce')}"

    # -- search operators ---------------------------------------------------------------
    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """Change the op, or the input, of one edge (inputs stay distinct within a node)."""
        self.validate(genotype)
        out: list[Genotype] = []
        for d in self.decisions:
            node = int(d.name.rsplit("node", 1)[1])
            edges = _parse_pair(str(genotype[d.name]))
            for k in (0, 1):
                (op, i), other = edges[k], edges[1 - k]
                changed = [(o, i) for o in self.ops if o != op]
                changed += [(op, j) for j in range(node) if j not in (i, other[1])]
                out.extend(genotype.replace(**{d.name: _pair_value(e, other)}) for e in changed)
        return out

    def encode(self, genotype: Genotype) -> np.ndarray:
        """Per node, a multi-hot over (input, op): two ones, one per edge."""
        self.validate(genotype)
        parts = []
        n_ops = len(self.ops)
        for d in self.decisions:
            node = int(d.name.rsplit("node", 1)[1])
            vec = np.zeros(node * n_ops, dtype=np.float32)
            for op, i in _parse_pair(str(genotype[d.name])):
                vec[i * n_ops + self._op_index[op]] = 1.0
            parts.append(vec)
        return np.concatenate(parts)

    def describe(self) -> str:
        return (f"darts space ({self.steps} nodes per cell, {len(self.ops)} ops) with "
                f"{self.size():.3g} architectures")

