"""DARTS (Liu, Simonyan & Yang, ICLR 2019): differentiable search on a supernet.

    for each batch:
        alpha step: one Adam step on L_val(w, alpha), on a validation batch
                    (second order: on L_val(w - lr * grad_w L_train(w, alpha), alpha))
        weight step: one SGD step on L_train(w, alpha), on a training batch
    genotype = supernet.derive()

``BilevelSearch`` holds what DARTS and GDAS share: the two optimisers (network weights:
SGD with Nesterov momentum, cosine from ``lr`` to ``lr_min`` updated every step, gradient
norm clipped at ``grad_clip``; alphas: Adam), the epoch loop, its statistics and the state
to checkpoint.  Defaults are those of the NAS-Bench-201 search scripts (REFERENCES.md
section 1.5): lr 0.025 -> 0.001, momentum 0.9, weight decay 5e-4, clip 5; Adam 3e-4,
betas (0.5, 0.999), weight decay 1e-3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.nn.device import autocast
from archsearch.nn.supernet import Mixture, Supernet
from archsearch.oneshot.remedy import auxiliary_skip_beta

#: DARTS-PT fine-tunes the supernet between its decisions at a tenth of the search's lr.
TUNE_LR_FACTOR = 0.1

#: One step's data: training images and labels (weights), validation ones (alphas).
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class BilevelSearch:
    """The alternating weight / architecture optimisation both DARTS and GDAS run.

    Subclasses implement ``step`` (one batch) and may set per-epoch state in
    ``begin_epoch``; ``train_epoch`` does the rest.
    """

    method = ""

    def __init__(
        self,
        supernet: Supernet,
        *,
        epochs: int,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        arch_lr: float = 3e-4,
        arch_betas: tuple[float, float] = (0.5, 0.999),
        arch_weight_decay: float = 1e-3,
        grad_clip: float | None = 5.0,
        warmup_epochs: int = 0,
        fix_alpha: bool = False,
        bf16: bool = False,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0 <= warmup_epochs < epochs:
            raise ValueError(f"warmup_epochs must be in 0..{epochs - 1}, got {warmup_epochs}")
        self.supernet = supernet
        self.epochs = epochs
        self.lr, self.lr_min = lr, lr_min
        self.grad_clip = grad_clip
        self.warmup_epochs = warmup_epochs
        self.fix_alpha = fix_alpha
        self.bf16 = bf16
        self.weights = supernet.weight_parameters()
        self.alphas = supernet.arch_parameters()
        self.w_optimizer = torch.optim.SGD(self.weights, lr=lr, momentum=momentum,
                                           nesterov=nesterov, weight_decay=weight_decay)
        self.a_optimizer = torch.optim.Adam(self.alphas, lr=arch_lr, betas=arch_betas,
                                            weight_decay=arch_weight_decay)

    # -- to be specialised ----------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> dict[str, float]:
        """Set per-epoch state; return it for the epoch's statistics."""
        return {}

    def step(self, batch: Batch, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One bilevel step; returns (train loss, train correct, val loss, val correct)."""
        raise NotImplementedError

    def warmup_mixtures(self, generator: torch.Generator) -> dict[str, Mixture]:
        """The mixtures the weights train with while the alphas wait (warm-up epochs)."""
        return self.detached_mixtures()

    def warmup_step(self, batch: Batch, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A weights-only step; the validation batch is only scored, for the statistics."""
        x_train, y_train, x_val, y_val = batch
        train_loss, train_correct = self.weight_step(x_train, y_train,
                                                     self.warmup_mixtures(generator))
        with torch.no_grad():
            val_loss, val_correct = self.loss(x_val, y_val, self.warmup_mixtures(generator))
        return train_loss, train_correct, val_loss, val_correct

    # -- the loop -------------------------------------------------------------------------
    def learning_rate(self, progress: float) -> float:
        """Cosine from ``lr`` to ``lr_min``; ``progress`` in epochs (fractional)."""
        t = min(progress / self.epochs, 1.0)
        return self.lr_min + (self.lr - self.lr_min) * 0.5 * (1 + math.cos(math.pi * t))

    def train_epoch(self, epoch: int, batches: Iterable[Batch], steps: int,
                    generator: torch.Generator) -> dict[str, float]:
        """Run one epoch of ``steps`` batches; return its mean losses and accuracies.

        In the first ``warmup_epochs`` (all of them with ``fix_alpha``) only the weights
        learn (PC-DARTS and P-DARTS warm the weights up so that the alphas do not judge
        untrained convolutions).  Epochs from ``epochs`` on fine-tune the supernet between
        the decisions of a perturbation-based selection, as DARTS-PT does: weight lr
        ``lr / 10``, constant, the momentum started afresh."""
        extra = self.begin_epoch(epoch)
        weights_only = self.fix_alpha or epoch < self.warmup_epochs
        step = self.warmup_step if weights_only else self.step
        tuning = epoch >= self.epochs
        if epoch == self.epochs:
            self.w_optimizer.state.clear()
        self.supernet.train()
        start = time.perf_counter()
        sums = torch.zeros(4, dtype=torch.float64)  # losses and correct counts
        on_device: list[torch.Tensor] = []
        seen = 0
        for k, batch in enumerate(batches):
            lr = self.lr * TUNE_LR_FACTOR if tuning else self.learning_rate(epoch + k / steps)
            for group in self.w_optimizer.param_groups:
                group["lr"] = lr
            train_loss, train_correct, val_loss, val_correct = step(batch, generator)
            n = batch[0].shape[0]
            on_device.append(torch.stack([train_loss.detach().float() * n,
                                          train_correct.float(),
                                          val_loss.detach().float() * n, val_correct.float()]))
            seen += n
        if on_device:  # one device sync per epoch
            sums = torch.stack(on_device).sum(0).double().cpu()
        if not math.isfinite(float(sums[0])) or not math.isfinite(float(sums[2])):
            raise ValueError(f"the supernet diverged: non-finite loss in epoch {epoch + 1}")
        scale = 1 / max(seen, 1)
        return {
            "train_loss": float(sums[0]) * scale, "train_accuracy": float(sums[1]) * scale,
            "val_loss": float(sums[2]) * scale, "val_accuracy": float(sums[3]) * scale,
            "seconds": time.perf_counter() - start,
            "lr_end": self.lr * TUNE_LR_FACTOR if tuning else self.learning_rate(epoch + 1),
            **extra,
        }

    # -- helpers --------------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor, mixtures: Mapping[str, Mixture] | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy and the number of correct predictions."""
        with autocast(self.bf16, x.device):
            logits = self.supernet(x, mixtures)
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()  # the loss in full precision under autocast
        loss = F.cross_entropy(logits, y)
        return loss, (logits.detach().argmax(1) == y).sum()

    def weight_step(self, x: torch.Tensor, y: torch.Tensor,
                    mixtures: Mapping[str, Mixture]) -> tuple[torch.Tensor, torch.Tensor]:
        # Zeroed, not None: an op left out of this step (GDAS samples one per edge) still
        # gets its momentum and weight decay, as in the published code (written when
        # zero_grad zeroed gradients); SGD would skip a parameter whose gradient is None.
        self.w_optimizer.zero_grad(set_to_none=False)
        loss, correct = self.loss(x, y, mixtures)
        loss.backward(inputs=self.weights)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.weights, self.grad_clip)
        self.w_optimizer.step()
        return loss, correct

    def detached_mixtures(self) -> dict[str, Mixture]:
        return {name: Mixture(m.weights.detach())
                for name, m in self.supernet.softmax_mixtures().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"supernet": self.supernet.state_dict(),
                "w_optimizer": self.w_optimizer.state_dict(),
                "a_optimizer": self.a_optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.a_optimizer.load_state_dict(state["a_optimizer"])


class DARTS(BilevelSearch):
    """DARTS, first order (``order=1``, DARTS-V1) or second order (``order=2``, the unrolled
    step with a finite-difference Hessian-vector product, DARTS-V2; ``hvp_radius`` is the
    length of its finite-difference step in weight space).

    ``auxiliary_skip=True`` is DARTS- (see ``archsearch.oneshot.remedy``): the supernet must
    be built with ``auxiliary_skip=True``; its skip weight decays from 1 to 0 over the epochs.

    >>> from archsearch.nn.supernet import NB201Supernet
    >>> net = NB201Supernet(channels=4, cells_per_stage=1)
    >>> search = DARTS(net, epochs=1)
    >>> x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    >>> stats = search.train_epoch(0, [(x, y, x, y)], 1, torch.Generator())
    >>> sorted(net.derive())[0]
    'edge1<-0'
    """

    method = "darts"

    def __init__(self, supernet: Supernet, *, epochs: int, order: int = 1,
                 auxiliary_skip: bool = False, hvp_radius: float = 0.01,
                 **settings: Any) -> None:
        super().__init__(supernet, epochs=epochs, **settings)
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        if auxiliary_skip and not supernet.auxiliary_skip:
            raise ValueError("auxiliary_skip needs a supernet built with auxiliary_skip=True")
        self.order = order
        self.auxiliary_skip = auxiliary_skip
        self.hvp_radius = hvp_radius
        self.method = "darts-minus" if auxiliary_skip else ("darts2" if order == 2 else "darts")

    def begin_epoch(self, epoch: int) -> dict[str, float]:
        if not self.auxiliary_skip:
            return {}
        # Fine-tuning epochs (past ``epochs``) keep the final, plain supernet.
        self.supernet.skip_beta = (auxiliary_skip_beta(epoch, self.epochs)
                                   if epoch < self.epochs else 0.0)
        return {"skip_beta": self.supernet.skip_beta}

    def step(self, batch: Batch, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_train, y_train, x_val, y_val = batch
        # The architecture step first, on the validation batch (DARTS's order).
        self.a_optimizer.zero_grad(set_to_none=True)
        if self.order == 1:
            val_loss, val_correct = self.loss(x_val, y_val, None)
            val_loss.backward(inputs=self.alphas)
        else:
            val_loss, val_correct = self._unrolled_backward(x_train, y_train, x_val, y_val)
        self.a_optimizer.step()
        train_loss, train_correct = self.weight_step(x_train, y_train, self.detached_mixtures())
        return train_loss, train_correct, val_loss, val_correct

    def _unrolled_backward(self, x_train: torch.Tensor, y_train: torch.Tensor,
                           x_val: torch.Tensor, y_val: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set alpha's gradient to d/d alpha of L_val(w', alpha), w' one virtual SGD step
        from w (DARTS's ``architect.py``): grad_alpha L_val(w') - xi * H v, where
        v = grad_w' L_val(w') and H v ~ (grad_alpha L_train(w + eps v) -
        grad_alpha L_train(w - eps v)) / (2 eps), eps = hvp_radius / |v| (DARTS: 0.01),
        xi = the current lr."""
        group = self.w_optimizer.param_groups[0]
        xi, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        backup = [w.detach().clone() for w in self.weights]

        # The virtual step w' = w - xi * (momentum * buffer + grad + decay * w).
        train_loss, _ = self.loss(x_train, y_train, self.detached_mixtures())
        grads = torch.autograd.grad(train_loss, self.weights, allow_unused=True)
        with torch.no_grad():
            for w, g in zip(self.weights, grads, strict=True):
                if g is None:
                    continue
                direction = g + decay * w
                buffer = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
                if buffer is not None:
                    direction = direction + momentum * buffer
                w.sub_(xi * direction)

        val_loss, val_correct = self.loss(x_val, y_val, None)
        found = torch.autograd.grad(val_loss, [*self.alphas, *self.weights], allow_unused=True)
        d_alpha = [_zero_if_none(g, a) for g, a in zip(found[:len(self.alphas)], self.alphas,
                                                        strict=True)]
        v = [_zero_if_none(g, w) for g, w in zip(found[len(self.alphas):], self.weights,
                                                   strict=True)]
        eps = self.hvp_radius / torch.cat([g.flatten() for g in v]).norm().clamp_min(1e-12)

        def alpha_grad_at(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for w, b, g in zip(self.weights, backup, v, strict=True):
                    w.copy_(b + sign * eps * g)
            loss, _ = self.loss(x_train, y_train, None)
            return [_zero_if_none(g, a) for g, a in zip(
                torch.autograd.grad(loss, self.alphas, allow_unused=True), self.alphas,
                strict=True)]

        plus, minus = alpha_grad_at(1.0), alpha_grad_at(-1.0)
        with torch.no_grad():
            for w, b in zip(self.weights, backup, strict=True):
                w.copy_(b)
            for a, d, p, m in zip(self.alphas, d_alpha, plus, minus, strict=True):
                a.grad = d - xi * (p - m) / (2 * eps)
        return val_loss, val_correct


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad

