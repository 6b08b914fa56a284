"""Zero-cost proxies of every NAS-Bench-201 cell, computed by archsearch itself.

``data/nb201_proxies.npz`` holds, for each proxy it has, 15,625 float64 scores: entry i
is the proxy (``archsearch.estimation.zero_cost.PROXIES``) of the cell
``NB201Space().from_index(i)`` in the CIFAR-10 network (C=16, N=5) at the initialisation
seeded by i, on the minibatch of 64 CIFAR-10 training images (JPEG copy) that
``ZeroCostEstimator.batch(i)`` draws, exactly as ``benchmarks/proxy_ranking.py`` scores
its sample.  NaN where a proxy is undefined (jacob_cov of a cell whose output ignores its
input).  ``benchmarks/nb201_proxy_table.py`` computes it in resumable chunks and adds
proxies to the file; ``nb201_proxy_info`` says how, on which device and in how long.

So tabular searches and predictor-guided strategies can use a proxy on the NB201 table
without building a network or reading an image.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.space.nb201 import NB201_SIZE

#: The table, inside the ``archsearch.tabular`` package.
NB201_PROXY_FILE = "data/nb201_proxies.npz"


@functools.cache
def _load() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    source = resources.files("archsearch.tabular").joinpath(NB201_PROXY_FILE)
    with source.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name != "meta"}
        meta = json.loads(str(data["meta"].item()))
    for name, array in arrays.items():
        if array.shape != (NB201_SIZE,) or array.dtype != np.float64:
            raise ValueError(f"archsearch.tabular/{NB201_PROXY_FILE}: {name} is not "
                             f"{NB201_SIZE} float64 values")
        array.flags.writeable = False  # shared by every caller in the process
    return arrays, meta


def nb201_proxy_names() -> tuple[str, ...]:
    """The proxies the shipped table has."""
    return tuple(sorted(_load()[0]))


def load_nb201_proxy(name: str) -> np.ndarray:
    """The proxy ``name`` of all 15,625 cells: a read-only float64 array, entry i for the
    cell ``NB201Space().from_index(i)``.  Read once per process from the package data."""
    arrays = _load()[0]
    if name not in arrays:
        raise ConfigError(f"the shipped NAS-Bench-201 proxy table has {', '.join(sorted(arrays))}"
                          f", not {name!r}; benchmarks/nb201_proxy_table.py --proxies {name} "
                          "computes it")
    return arrays[name]


def nb201_proxy_info(name: str) -> dict[str, Any]:
    """How the proxy ``name`` was computed: network, batch, torch version, devices, and
    the seconds it took (``proxy_seconds``: the proxy alone; ``run_seconds``: the run)."""
    load_nb201_proxy(name)  # the same error for a proxy that is not there
    return dict(_load()[1][name])
