"""PyTorch networks from search-space layers.  This package imports torch;
``archsearch.space`` never does."""

from archsearch.nn.builder import (
    Layer,
    LayeredSpace,
    Network,
    build_network,
)
from archsearch.nn.ops import (
    Standardize,
    make_activation,
    make_norm,
    make_op,
    make_projection,
)

__all__ = [
    "Layer",
    "LayeredSpace",
    "Network",
    "Standardize",
    "build_network",
    "make_activation",
    "make_norm",
    "make_op",
    "make_projection",
]
