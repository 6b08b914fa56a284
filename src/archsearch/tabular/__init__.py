"""Published benchmark tables, each exposed as a search space plus a lookup estimator.

* ``NB201Space`` / ``NB201Estimator``: NAS-Bench-201 cells looked up in AnalogNAS-Bench
  (CIFAR-10), from the ``analog-nasbench`` package.
* ``NBGraphSpace`` / ``NBGraphEstimator``: NAS-Bench-Graph on 9 graph datasets, from the
  ``nas-bench-graph`` package.

The spaces need nothing beyond archsearch; the estimators need the tables
(``pip install "archsearch[benchmarks]"``) and raise ``BenchmarkNotInstalled`` without
them.  Tables are read with a restricted unpickler (``safe_pickle``), once per process,
and only when an estimator is built: importing this package loads no data.
"""

from archsearch.space.nb201 import NB201_EDGE_NAMES, NB201_EDGES, NB201_OPS, NB201Space
from archsearch.tabular.nb201 import NB201_COLUMNS, NB201_METRICS, NB201Estimator, load_nb201_table
from archsearch.tabular.nbgraph import (
    NBGRAPH_DATASETS,
    NBGRAPH_LINKS,
    NBGRAPH_METRICS,
    NBGRAPH_OPS,
    NBGRAPH_PROTEINS_OPS,
    NBGraphEstimator,
    NBGraphSpace,
    load_nbgraph_table,
    valid_hash,
)
from archsearch.tabular.safe_pickle import (
    BenchmarkNotInstalled,
    RestrictedUnpickler,
    UnsafePickleError,
    safe_load,
)
from archsearch.tabular.table import TableEstimator, TableOptimum

__all__ = [
    "NB201_COLUMNS",
    "NB201_EDGES",
    "NB201_EDGE_NAMES",
    "NB201_METRICS",
    "NB201_OPS",
    "NBGRAPH_DATASETS",
    "NBGRAPH_LINKS",
    "NBGRAPH_METRICS",
    "NBGRAPH_OPS",
    "NBGRAPH_PROTEINS_OPS",
    "BenchmarkNotInstalled",
    "NB201Estimator",
    "NB201Space",
    "NBGraphEstimator",
    "NBGraphSpace",
    "RestrictedUnpickler",
    "TableEstimator",
    "TableOptimum",
    "UnsafePickleError",
    "load_nb201_table",
    "load_nbgraph_table",
    "safe_load",
    "valid_hash",
]
