"""NAS-Bench-201 as a space, and the AnalogNAS-Bench table of it as an estimator.

The cell has 4 nodes and 6 edges ``i<-j`` (node i reads node j), each one of 5 ops:
5**6 = 15,625 cells, all distinct (the benchmark trained isomorphic cells separately).
Decisions are named ``"edge1<-0"`` ... ``"edge3<-2"`` and listed in NAS-Bench-201's
canonical edge order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, so ``enumerate()`` yields the
cell whose base-5 code (over ``NB201_OPS``, first edge most significant) is i at step i.

The AnalogNAS-Bench table (``data.anb`` in the ``analog-nasbench`` package) keys a cell
by 6 integers in NASLib's convention, which differs from NAS-Bench-201's in two ways:

* edge order 1<-0, 2<-0, **3<-0, 2<-1**, 3<-1, 3<-2 (edges grouped by source node);
* op codes 0 = skip_connect, 1 = none, 2 = nor_conv_3x3, 3 = nor_conv_1x1, 4 = avg_pool_3x3.

Both were checked on the table itself: exactly the 341 cells whose output is cut off from
the input score 10 %; cells of one parameter-free op score by the *number* of input-output
paths for code 0 (86.5 % for one path of any length, as identity ops would) but by path
*length* for code 4 (75 % for one op, 62 % for three in a chain, as repeated pooling would).
(Codes 0 and 4 are sometimes quoted the other way round; the table contradicts that.)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

import numpy as np

from archsearch.space.base import DecisionSpace, InvalidGenotype
from archsearch.space.decisions import categorical
from archsearch.space.genotype import Genotype
from archsearch.tabular.safe_pickle import (
    ANALOGNASBENCH_GLOBALS,
    ArchitectureRecord,
    DriftRecord,
    find_package_file,
    safe_load,
)
from archsearch.tabular.table import TableEstimator, TableOptimum

#: NAS-Bench-201's op list, in its own order.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The edges (target, source) in NAS-Bench-201's canonical order.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NB201_EDGE_NAMES = tuple(f"edge{i}<-{j}" for i, j in NB201_EDGES)
NB201_SIZE = len(NB201_OPS) ** len(NB201_EDGES)

_OP_INDEX = {op: k for k, op in enumerate(NB201_OPS)}
_EDGE_INDEX = {edge: k for k, edge in enumerate(NB201_EDGES)}

# The table's conventions (see the module docstring), mapped to ours in this one place.
_TABLE_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
_TABLE_EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))

_ACCURACY_FIELDS = ("baseline", "ptq", "qat", "noisy", "analog")
_DRIFT_SECONDS = (60, 3600, 86400, 2592000)
_DRIFT_KINDS = ("baseline", "analog")

#: Every number the table has per cell, as ``evaluate`` names them (percent).  The drifts
#: are accuracies after ``t`` seconds of simulated conductance drift on analog in-memory
#: hardware, for the baseline-trained and the hardware-aware-trained network, each
#: with its ``_uncertainty`` (the spread over repeated drift simulations).
NB201_COLUMNS: tuple[str, ...] = tuple(f"{a}_accuracy" for a in _ACCURACY_FIELDS) + tuple(
    name
    for kind in _DRIFT_KINDS
    for t in _DRIFT_SECONDS
    for name in (f"{kind}_drift_{t}s", f"{kind}_drift_{t}s_uncertainty")
)

#: ``metric`` choices of ``NB201Estimator`` -> the column that becomes the objective.
NB201_METRICS: Mapping[str, str] = {
    **{a: f"{a}_accuracy" for a in _ACCURACY_FIELDS},
    **{f"{kind}_drift_{t}s": f"{kind}_drift_{t}s" for kind in _DRIFT_KINDS for t in _DRIFT_SECONDS},
}


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
        items = genotype.items_ if isinstance(genotype, Genotype) else ()
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


# _KEY_WEIGHTS[p][c]: what code c at position p of a table key adds to our base-5 index.
_KEY_WEIGHTS = tuple(
    tuple(5 ** (5 - _EDGE_INDEX[edge]) * _OP_INDEX[op] for op in _TABLE_OPS)
    for edge in _TABLE_EDGES
)
_DRIFT_FIELDS = tuple(f"{kind}_drift_{t}" for kind in _DRIFT_KINDS for t in _DRIFT_SECONDS)
_ACCURACY_ATTRS = tuple(f"{a}_accuracy" for a in _ACCURACY_FIELDS)


@functools.cache
def _load_nb201(path: str) -> np.ndarray:
    raw = safe_load(path, ANALOGNASBENCH_GLOBALS)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of cells, got {type(raw).__name__}")
    table = np.full((NB201_SIZE, len(NB201_COLUMNS)), np.nan)
    seen = np.zeros(NB201_SIZE, dtype=bool)
    for key, record in raw.items():
        if not isinstance(record, ArchitectureRecord) or not isinstance(key, tuple):
            raise ValueError(f"{path}: unexpected entry for cell {key!r}")
        try:
            if min(key) < 0:  # negative codes would index from the end
                raise ValueError("negative op code")
            code = sum(weights[c] for weights, c in zip(_KEY_WEIGHTS, key, strict=True))
            state = record.state
            row = [float(state[name]) for name in _ACCURACY_ATTRS]
            for name in _DRIFT_FIELDS:
                drift = state[name]
                if not isinstance(drift, DriftRecord):
                    raise TypeError(f"{name} is a {type(drift).__name__}")
                row += (float(drift.state["value"]), float(drift.state["uncertainty"]))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
            raise ValueError(f"{path}: unexpected entry for cell {key!r}: {err!r}") from None
        if seen[code]:
            raise ValueError(f"{path}: cell {key!r} appears twice")
        table[code] = row
        seen[code] = True
    if not seen.all():
        raise ValueError(f"{path}: {int((~seen).sum())} of the {NB201_SIZE} cells are missing")
    table.flags.writeable = False  # shared by every estimator in the process
    return table


def load_nb201_table(path: str | os.PathLike[str] | None = None) -> np.ndarray:
    """The AnalogNAS-Bench table as a read-only ``(15625, len(NB201_COLUMNS))`` array,
    row i = the cell ``NB201Space().from_index(i)``.  Loaded once per process and file."""
    if path is None:
        path = find_package_file("analognasbench", "data.anb", "analog-nasbench")
    return _load_nb201(os.path.realpath(path))


class NB201Estimator(TableEstimator):
    """Looks a NAS-Bench-201 cell up in the AnalogNAS-Bench table (CIFAR-10, percent).

    ``metric`` picks the number searched on: ``"baseline"`` (standard training, the
    default), ``"ptq"``, ``"qat"`` (quantised), ``"noisy"`` (trained digitally, run on
    simulated analog hardware), ``"analog"`` (hardware-aware training), or a drift column
    such as ``"analog_drift_86400s"`` (see ``NB201_METRICS``).

    The table has one accuracy per setting, measured on the CIFAR-10 test set; there is
    no separate validation number.  So ``val_accuracy`` (the objective) and
    ``test_accuracy`` are the same value here; every column of ``NB201_COLUMNS`` is
    returned too.  ``path`` reads another copy of ``data.anb``.
    """

    space: NB201Space

    def __init__(self, metric: str = "baseline", path: str | os.PathLike[str] | None = None):
        super().__init__()
        if metric not in NB201_METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(NB201_METRICS)}")
        self.metric = metric
        self.path = path
        self.space = NB201Space()
        self._table = load_nb201_table(path)
        self._column = NB201_COLUMNS.index(NB201_METRICS[metric])

    def lookup_index(self, index: int) -> dict[str, float]:
        """The metrics of the cell ``space.from_index(index)``."""
        row = self._table[index].tolist()
        value = row[self._column]
        out = {"val_accuracy": value, "test_accuracy": value}
        out.update(zip(NB201_COLUMNS, row, strict=True))
        return out

    def objective_values(self) -> np.ndarray:
        """The objective of every cell, indexed like ``space.enumerate()`` (read-only)."""
        return self._table[:, self._column]

    def oracle(self) -> TableOptimum:
        genotype, value = self.optimum()
        return TableOptimum(genotype, value, value, genotype, value)
