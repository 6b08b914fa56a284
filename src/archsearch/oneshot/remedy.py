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
