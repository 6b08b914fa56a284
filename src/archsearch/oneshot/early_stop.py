"""A third remedy against DARTS's collapse: stop the search when the curvature rises.

DARTS-ES (Zela et al., "Understanding and Robustifying Differentiable Architecture
Search", ICLR 2020) observed that the cells DARTS degenerates to coincide with a rising
dominant eigenvalue of the Hessian of the validation loss with respect to alpha: the
supernet sits in a sharp minimum of architecture space, which the discretisation then
leaves.  Its early stop:

    after each epoch e: lambda_e = the Hessian's largest eigenvalue
    mean_e = the mean of lambda over the epochs e-2..e+2      (a centred window of 5)
    once mean_c / mean_{c-4} > 1.3 for some c >= start + 4:    stop, and return the cell
                                                                derived after epoch c-4

The settings are those of the authors' code (``automl/RobustDARTS``: window 5, delta 4,
factor 1.3, ``es_start_epoch`` 10; the paper writes the test as mean_{c-k} / mean_c < 0.75).
As there, the Hessian includes alpha's L2 weight decay (Adam's ``weight_decay`` adds
``decay * alpha`` to the gradient, hence ``decay * I`` to the Hessian) and the window is cut
short at the first epochs.  Our departures: the Hessian is taken on a fixed batch (the first
images of the validation split in a fixed random order, the same every epoch: the split's own
order can be one class after another) rather than on the epoch's last random batch, so that
the curve follows the search rather than the batch drawn; the rule is checked
after the last epoch too (the authors' code skips it there); and a search that never trains
alpha, or samples it (GDAS), does not offer it.

The rule is a pure function of the recorded eigenvalues (``EigenvalueStop.stop_epoch``), so
a resumed search reaches the same decision, and a search that only records them
(``track_eigenvalue``) shows where the rule would have stopped it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from archsearch.errors import ConfigError
from archsearch.oneshot.darts import BilevelSearch
from archsearch.oneshot.data import SearchData
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch

#: Up to this many architecture parameters the Hessian is built row by row and solved
#: exactly (NAS-Bench-201 has 6 x 5 = 30); beyond it (the DARTS space has 2 x 14 x 8 = 224)
#: Lanczos finds the largest eigenvalue from a few dozen Hessian-vector products.
DENSE_LIMIT = 64


@dataclass(frozen=True)
class EigenvalueStop:
    """DARTS-ES's stopping rule on the per-epoch dominant eigenvalues (epochs 0-based).

    >>> rule = EigenvalueStop(window=1, lag=2, factor=1.5, start=0)
    >>> rule.stop_epoch([1.0, 1.0, 1.2, 1.4, 2.0, 4.0])
    2
    >>> rule.stop_epoch([1.0, 1.1, 1.2, 1.3]) is None
    True
    """

    window: int = 5
    lag: int = 4
    factor: float = 1.3
    start: int = 10

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ConfigError(f"early_stop_window must be a positive odd number, got {self.window}")
        if self.lag < 1:
            raise ConfigError(f"early_stop_lag must be >= 1, got {self.lag}")
        if self.factor <= 1:
            raise ConfigError(f"early_stop_factor must be > 1, got {self.factor}")
        if self.start < 0:
            raise ConfigError(f"early_stop_start must be >= 0, got {self.start}")

    def epochs_to_decide(self, epoch: int) -> int:
        """How many epochs are recorded when the rule goes back to ``epoch``: the window of
        ``epoch + lag`` must be complete, ``window // 2`` epochs past it."""
        return epoch + self.lag + self.window // 2 + 1

    @property
    def min_epochs(self) -> int:
        """The fewest recorded epochs on which the rule can fire (it goes back no earlier
        than ``start``).

        >>> EigenvalueStop().min_epochs   # the authors' settings: not before 17 epochs
        17
        """
        return self.epochs_to_decide(self.start)

    def smoothed(self, eigenvalues: Sequence[float], epoch: int) -> float:
        """The mean over the window centred on ``epoch`` (cut short at the first epochs)."""
        half = self.window // 2
        return float(np.mean(eigenvalues[max(0, epoch - half):epoch + half + 1]))

    def stop_epoch(self, eigenvalues: Sequence[float]) -> int | None:
        """The epoch whose cell to return if the rule fired on these eigenvalues (the first
        time it did), else None.  A window mean must be complete before it is compared, and
        a non-positive earlier mean never triggers (the ratio means nothing there)."""
        half = self.window // 2
        for current in range(self.start + self.lag, len(eigenvalues) - half):
            earlier = self.smoothed(eigenvalues, current - self.lag)
            if earlier > 0 and self.smoothed(eigenvalues, current) / earlier > self.factor:
                return current - self.lag
        return None


def recorded_eigenvalues(records: Sequence[OneShotEpoch]) -> list[float]:
    """The Hessian eigenvalue of every recorded epoch (an error if an epoch lacks it)."""
    missing = [r.epoch for r in records if "hessian_eigenvalue" not in r.metrics]
    if missing:
        raise ConfigError(f"early_stop needs the Hessian's eigenvalue of every epoch; epochs "
                          f"{missing[:5]} were recorded without it (by a search without "
                          "early_stop): start a new study")
    return [r.metrics["hessian_eigenvalue"] for r in records]


@dataclass(frozen=True)
class EigenvalueWatch:
    """DARTS-ES in a search: the eigenvalue recorded after every epoch, and the search
    stopped by ``rule`` when ``stop`` (else the rule only shows where it would have)."""

    rule: EigenvalueStop = EigenvalueStop()
    stop: bool = True

    def rule_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The epoch whose cell the rule picks from the recorded eigenvalues (None: it has
        not fired)."""
        return self.rule.stop_epoch(recorded_eigenvalues(records))

    def stop_message(self, records: Sequence[OneShotEpoch], chosen: int,
                     describe: Callable[[Genotype], str]) -> str:
        """Why the search stopped after the recorded epochs, returning epoch ``chosen``."""
        values = recorded_eigenvalues(records)
        current = chosen + self.rule.lag
        return (f"early stop after epoch {len(records)}: the Hessian's dominant eigenvalue rose "
                f"from {self.rule.smoothed(values, chosen):.4g} (mean around epoch {chosen + 1}) "
                f"to {self.rule.smoothed(values, current):.4g} (around epoch {current + 1}); "
                f"the cell of epoch {chosen + 1}: {describe(records[chosen].genotype)}")


def eigenvalue_metrics(search: BilevelSearch, data: SearchData, batch_size: int
                       ) -> dict[str, float]:
    """The Hessian's dominant eigenvalue on the first ``batch_size`` validation images in
    ``val_order`` (the same ones every epoch), and the seconds it took."""
    began = time.perf_counter()
    first = data.val_order[:batch_size]
    value = hessian_eigenvalue(search, data.x_val[first], data.y_val[first])
    return {"hessian_eigenvalue": value, "hessian_seconds": time.perf_counter() - began}


def hessian_eigenvalue(search: BilevelSearch, x: torch.Tensor, y: torch.Tensor,
                       dense_limit: int = DENSE_LIMIT) -> float:
    """The largest eigenvalue of the Hessian of ``L(x, y)`` + alpha's weight decay term with
    respect to the supernet's alphas, at its current weights and alphas.

    Exact second derivatives (double backward through the supernet), not finite
    differences.  The supernet is in training mode, as during the search; its buffers (BN
    running statistics) are put back afterwards, so computing the eigenvalue leaves the
    search exactly as it was.
    """
    supernet, alphas = search.supernet, search.alphas
    decay = float(search.a_optimizer.param_groups[0]["weight_decay"])
    saved = [b.detach().clone() for b in supernet.buffers()]
    supernet.train()
    try:
        loss, _ = search.loss(x, y, None)
        grads = torch.autograd.grad(loss, alphas, create_graph=True)
        flat = torch.cat([g.flatten() for g in grads])
        size = flat.numel()

        def hvp(vector: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.ravel(vector), dtype=flat.dtype, device=flat.device)
            rows = torch.autograd.grad(flat, alphas, grad_outputs=v, retain_graph=True)
            product = torch.cat([r.flatten() for r in rows]) + decay * v
            return product.detach().double().cpu().numpy()

        if size <= dense_limit:
            hessian = np.stack([hvp(column) for column in np.eye(size)])
            # Symmetrise the rounding; the exact Hessian is symmetric.
            return float(np.linalg.eigvalsh((hessian + hessian.T) / 2)[-1])
        operator = LinearOperator((size, size), matvec=hvp, dtype=np.float64)
        # A fixed start vector keeps ARPACK, and so the run, deterministic.
        value = eigsh(operator, k=1, which="LA", v0=np.ones(size), tol=1e-6,
                      return_eigenvectors=False)
        return float(value[0])
    finally:
        with torch.no_grad():
            for buffer, value_before in zip(supernet.buffers(), saved, strict=True):
                buffer.copy_(value_before)
