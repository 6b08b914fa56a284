"""Architecture encodings for learned strategies: the BANANAS path encoding of a
NAS-Bench-201 cell (White et al., AAAI 2021; REFERENCES.md section 9.1).

A cell is a set of paths from the input node to the output node, each a sequence of ops.
NAS-Bench-201's cell has four such paths (edges numbered in ``NB201_EDGES`` order,
1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)::

    [3]        0 -> 3
    [0, 4]     0 -> 1 -> 3
    [1, 5]     0 -> 2 -> 3
    [0, 2, 5]  0 -> 1 -> 2 -> 3

Each possible op sequence has a slot: sequences of length 1 take slots 0..4, length 2
slots 5..29, length 3 slots 30..154, and a sequence's slot is its length's offset plus
``sum(op_index * 5**position)`` over the reference's op list ``PATH_OPS`` (alphabetical,
not ``NB201_OPS``' order).  The encoding has a 1 in the slot of each of the cell's four
paths (two paths with equal op sequences share one).  As in the reference, a path through
a ``none`` edge keeps its slot (``none`` is op 3 like any other), so the encoding does not
cut paths at ``none``; and the default truncation keeps the first 30 slots, the paths of
length 1 and 2, so the op on edge 2<-1, which only the length-3 path crosses, is not
encoded at all.
"""

from __future__ import annotations

import numpy as np

from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201_EDGE_NAMES

#: NAS-Bench-201's ops in the order the BANANAS code indexes them (sorted by name).
PATH_OPS = ("avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3", "none", "skip_connect")
#: The input-to-output paths of the cell, as positions in ``NB201_EDGES``.
NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
#: Slots of the full path encoding: 5 + 25 + 125 op sequences of length 1, 2 and 3.
NB201_PATH_SLOTS = 5 + 5**2 + 5**3
#: The BANANAS default truncation on NAS-Bench-201: the first 30 slots.
NB201_PATH_CUTOFF = 30

_OP = {op: k for k, op in enumerate(PATH_OPS)}
_OFFSET = {1: 0, 2: 5, 3: 5 + 5**2}


def nb201_path_indices(genotype: Genotype) -> tuple[int, ...]:
    """The slot of each of the cell's four paths, in ``NB201_PATHS`` order."""
    ops = [_OP[str(genotype[name])] for name in NB201_EDGE_NAMES]
    return tuple(_OFFSET[len(path)] + sum(ops[edge] * 5**position
                                          for position, edge in enumerate(path))
                 for path in NB201_PATHS)


def nb201_path_encoding(genotype: Genotype, cutoff: int | None = NB201_PATH_CUTOFF) -> np.ndarray:
    """The (truncated) path encoding: ``cutoff`` floats, 1.0 in the slot of each path;
    ``cutoff=None`` keeps all 155 slots.

    >>> from archsearch.space import NB201Space
    >>> g = NB201Space().from_index(0)  # 'none' on every edge: op 3 on each path
    >>> nb201_path_indices(g), int(nb201_path_encoding(g).sum())
    ((3, 23, 23, 123), 2)
    """
    encoding = np.zeros(NB201_PATH_SLOTS)
    encoding[list(nb201_path_indices(genotype))] = 1.0
    return encoding if cutoff is None else encoding[:cutoff]
