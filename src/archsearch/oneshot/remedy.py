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
nothing in between: there the skips pass about 4 times a cell's input on (node 1 = x,
node 2 = x + node 1, node 3 = x + node 1 + node 2), which compounds over the cells; at
``beta = 1`` the last of the 15 cells of C=16, N=5 puts out a standard deviation of 1e12
(0.7 without the skips; ``benchmarks/aux_skip_scale.py``), so the mixed ops, whose
outputs are of order 1, barely reach the classifier until ``beta`` is small.  With the BN
each skip adds a term of unit spread and the growth is additive (13 at the last cell).
Measured on NAS-Bench-201 (benchmarks/RESULTS.md), neither variant kept its cell: with
five cells per stage both held convolutions until ``beta`` fell below about 0.15 in the
last epochs, then turned most edges into skip connections.
"""

from __future__ import annotations


def auxiliary_skip_beta(epoch: int, epochs: int, beta0: float = 1.0) -> float:
    """DARTS-'s weight of the auxiliary skip in ``epoch`` (0-based): ``beta0 (E - e) / E``.

    >>> [auxiliary_skip_beta(e, 4) for e in range(4)]
    [1.0, 0.75, 0.5, 0.25]
    """
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"epoch must be in 0..{epochs - 1}, got {epoch}")
    return beta0 * (epochs - epoch) / epochs
