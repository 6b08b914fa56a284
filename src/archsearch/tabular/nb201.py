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

from archsearch.space.nb201 import (
    NB201_EDGES,
    NB201_OPS,
    NB201_SIZE,
    NB201Space,
)
from archsearch.tabular.nb201_cost import load_nb201_cost
from archsearch.tabular.safe_pickle import (
    ANALOGNASBENCH_GLOBALS,
    ArchitectureRecord,
    DriftRecord,
    find_package_file,
    safe_load,
)
from archsearch.tabular.table import TableEstimator

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


# _KEY_WEIGHTS[p][c]: what code c at position p of a table key adds to our base-5 index.
_KEY_WEIGHTS = tuple(
    tuple(5 ** (5 - NB201_EDGES.index(edge)) * NB201_OPS.index(op) for op in _TABLE_OPS)
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
    returned too, and the cell's cost: ``flops`` and ``params`` of the CIFAR-10 network
    (C=16, N=5) as ``count_flops`` (a multiply-add = 2 FLOPs) and ``count_parameters``
    count them, from archsearch's own table (``archsearch.tabular.nb201_cost``), in the
    units of the training estimator.  ``path`` reads another copy of ``data.anb``.
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
        self._flops, self._params = load_nb201_cost()
        self._column = NB201_COLUMNS.index(NB201_METRICS[metric])

    def lookup_index(self, index: int) -> dict[str, float]:
        """The metrics of the cell ``space.from_index(index)``."""
        row = self._table[index].tolist()
        value = row[self._column]
        out = {"val_accuracy": value, "test_accuracy": value}
        out.update(zip(NB201_COLUMNS, row, strict=True))
        out["flops"] = float(self._flops[index])
        out["params"] = float(self._params[index])
        return out

    def objective_values(self) -> np.ndarray:
        """The objective of every cell, indexed like ``space.enumerate()`` (read-only)."""
        return self._table[:, self._column]
