"""A remedy against DARTS's collapse onto parameter-free operations.

Plain DARTS on NAS-Bench-201 ends with skip connections on (nearly) every edge: a skip
connection helps the supernet train, so its alpha grows whatever it would be worth in a
discrete cell.  DARTS- (Chu et al., ICLR 2021) gives every mixed op an auxiliary skip
connection outside the softmax,

    out = sum_o softmax(alpha)_o * op_o(x) + beta * skip(x),

so the supernet gets its residual path for free and the skip op's alpha must earn its place
like any other.  ``beta`` decays linearly from ``beta0 = 1`` to 0 over the search, so the
final supernet is the plain one.  Use it as ``DARTS(supernet, auxiliary_skip=True)`` (the
supernet built with ``auxiliary_skip=True``), or ``strategy: {name: darts,
auxiliary_skip: true}`` in a study config.

A departure, optional: ``auxiliary_op="skip_bn"`` puts an affine-free BN after each
auxiliary identity.  DARTS-'s code adds its skips in the DARTS space, whose cells
re-normalise their inputs, so what the summed skips add stays inside one cell (its code
also offers a 1x1 convolution in their place).  NAS-Bench-201 chains its cells with
nothing in between: there the identities summed on every edge multiply a cell's input
(node 1 = x, node 2 = x + node 1, node 3 = x + node 1 + node 2), which compounds over the
cells, so while ``beta`` is large the mixed ops, whose outputs are of order 1, barely reach
the classifier.  With the BN each skip adds a term of unit spread and the growth is
additive.  ``benchmarks/aux_skip_scale.py`` measures both; results are in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsearch.errors import ConfigError
from archsearch.nn.supernet import AUXILIARY_OPS


@dataclass(frozen=True)
class AuxiliarySkip:
    """DARTS-'s setting: what its auxiliary skip is on a stride-1 edge, ``"skip"`` (the
    identity) or ``"skip_bn"`` (the identity, then an affine-free BN)."""

    op: str = "skip"

    def __post_init__(self) -> None:
        if self.op not in AUXILIARY_OPS:
            raise ConfigError(f"auxiliary_op must be one of {AUXILIARY_OPS}, got {self.op!r}")


def auxiliary_skip_beta(epoch: int, epochs: int, beta0: float = 1.0) -> float:
    """DARTS-'s weight of the auxiliary skip in ``epoch`` (0-based): ``beta0 (E - e) / E``.

    >>> [auxiliary_skip_beta(e, 4) for e in range(4)]
    [1.0, 0.75, 0.5, 0.25]
    """
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in 0..{epochs - 1}, got {epoch}")
    return beta0 * (epochs - epoch) / epochs
