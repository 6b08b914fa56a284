"""GDAS (Dong & Yang, CVPR 2019): one Gumbel-softmax-sampled op per edge per step.

    tau = tau_max - (tau_max - tau_min) * epoch / (epochs - 1)        # 10 -> 0.1
    for each batch:
        sample h: per edge, p = softmax((log_softmax(alpha) + gumbel) / tau);
                  h = onehot(argmax p) - stop_grad(p) + p                  # straight-through
        weight step on a training batch with h    (only the chosen op runs on each edge)
        sample h again; alpha step on a validation batch with h
    genotype = supernet.derive()                   # the argmax of alpha, as for DARTS

One sample per forward pass is shared by all cells of a type, as in the GDAS code.  Since
only the chosen op of each edge is computed, a step costs about one op per edge instead of
all of them.  The Gumbel noise is drawn on the CPU from the epoch's generator, so a run is
reproducible and resumable on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from archsearch.errors import ConfigError
from archsearch.nn.supernet import Mixture, Supernet
from archsearch.oneshot.darts import Batch, BilevelSearch


@dataclass(frozen=True)
class GumbelSchedule:
    """GDAS's temperature: linear from ``tau_max`` in the first epoch to ``tau_min`` in the
    last."""

    tau_max: float = 10.0
    tau_min: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.tau_min <= self.tau_max:
            raise ConfigError(f"need 0 < tau_min <= tau_max, got {self.tau_min}, {self.tau_max}")

    def tau(self, epoch: int, epochs: int) -> float:
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / max(epochs - 1, 1)


class GDAS(BilevelSearch):
    """Gradient-based search with differentiable architecture sampling.

    Defaults follow the NAS-Bench-201 GDAS script: the optimisers of DARTS, tau from 10 to
    0.1 linearly per epoch, weights first then alphas on every batch.
    """

    method = "gdas"

    def __init__(self, supernet: Supernet, *, epochs: int, tau_max: float = 10.0,
                 tau_min: float = 0.1, **settings: Any) -> None:
        super().__init__(supernet, epochs=epochs, **settings)
        self.schedule = GumbelSchedule(tau_max, tau_min)
        self.tau = tau_max

    def begin_epoch(self, epoch: int) -> dict[str, float]:
        self.tau = self.schedule.tau(epoch, self.epochs)
        return {"tau": self.tau}

    def sample(self, generator: torch.Generator) -> dict[str, Mixture]:
        """One hard, straight-through Gumbel-softmax sample per cell type."""
        out = {}
        for name, alpha in self.supernet.alphas().items():
            while True:  # redraw in the (rare) event of an infinite Gumbel value
                gumbel = -torch.empty(alpha.shape).exponential_(generator=generator).log()
                if bool(torch.isfinite(gumbel).all()):
                    break
            logits = (alpha.log_softmax(dim=-1) + gumbel.to(alpha.device)) / self.tau
            probs = logits.softmax(dim=-1)
            index = probs.detach().argmax(dim=-1)
            hard = torch.zeros_like(probs).scatter_(-1, index[:, None], 1.0)
            out[name] = Mixture(hard - probs.detach() + probs, tuple(index.tolist()))
        return out

    def warmup_mixtures(self, generator: torch.Generator) -> dict[str, Mixture]:
        return {name: Mixture(m.weights.detach(), m.chosen)
                for name, m in self.sample(generator).items()}

    def step(self, batch: Batch, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_train, y_train, x_val, y_val = batch
        train_loss, train_correct = self.weight_step(x_train, y_train,
                                                     self.warmup_mixtures(generator))

        self.a_optimizer.zero_grad(set_to_none=True)
        val_loss, val_correct = self.loss(x_val, y_val, self.sample(generator))
        val_loss.backward(inputs=self.alphas)
        self.a_optimizer.step()
        return train_loss, train_correct, val_loss, val_correct
