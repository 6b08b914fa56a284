"""Zero-cost proxies: score an untrained network from one minibatch.

The definitions follow the reference implementations (``SamsungLabs/zero-cost-nas``,
Abdelfattah et al., ICLR 2021; ``BayesWatch/nas-without-training``, Mellor et al., ICML
2021; see ``REFERENCES.md`` section 10).  Every proxy is a function
``(model, x, y) -> float`` that may change the model it is given (pass a copy to keep
it), and larger is better for each of them as defined:

* ``synflow`` (Tanaka et al. 2020): normalisation layers become identities, every
  parameter its absolute value, the network is cast to double and fed one all-ones
  input of the data's shape; ``R`` is the sum of the outputs and the score is
  ``sum |theta * dR/dtheta|``.  No data, no labels.
* ``snip`` (Lee et al. 2019): ``sum |theta * dL/dtheta|``, ``L`` the cross-entropy.
* ``grad_norm``: the L2 norm of ``dL/dW`` per layer, summed over layers.
* ``fisher`` (Turner et al. 2020): per output channel of every conv / linear layer,
  ``0.5 * mean over the batch of (sum over positions of activation * gradient)^2``,
  summed.
* ``grasp`` (Wang et al. 2020): ``sum -theta * (H g)``, ``g = dL/dW`` detached and
  ``H g`` a Hessian-gradient product; the sign as in zero-cost-nas.
* ``jacob_cov`` (Mellor et al., first version): ``J`` the per-example input gradients of
  the summed outputs, ``C`` their correlation matrix with eigenvalues ``v``; the score is
  ``-sum(log(v + 1e-5) + 1 / (v + 1e-5))``.
* ``naswot`` (Mellor et al., ICML 2021, ``hook_logdet``): binary codes ``c = (a > 0)`` of
  the input ``a`` of every activation module on the backward path, per example;
  ``K = sum c c^T + (1 - c)(1 - c)^T`` over those modules; the score is ``log |det K|``
  (``-inf`` where ``K`` is singular, as for a cell whose output ignores its input).
* ``params`` and ``flops``: the baselines, ``count_parameters`` and ``count_flops``.

Per-weight scores (synflow, snip, grad_norm, grasp) sum over the ``weight`` of every
convolution and linear layer (biases and norm parameters excluded), as the reference
does.  Networks run in train mode (BatchNorm on batch statistics), as in the reference,
except synflow (no normalisation, eval mode).

Departures from the references, named:

* convolutions of any dimension count (the reference: ``Conv2d`` and ``Linear``);
* synflow turns every normalisation layer (BatchNorm, LayerNorm, GroupNorm,
  InstanceNorm) into an identity, not BatchNorm alone: a normalisation of a constant
  input would zero the output.  The signs need no restoring: the network is scored on
  its own copy;
* naswot hooks every elementwise activation module (ReLU and its variants, GELU, SiLU,
  tanh, ...), not ReLU alone, so networks without ReLUs get a score; the code is
  ``input > 0`` for all of them.  The backward path is marked by a backward pass of the
  summed outputs to the input (as the reference, whose Jacobian pass does it);
* jacob_cov takes the eigenvalues with ``eigvalsh`` in double precision (the reference:
  numpy's ``eig``; the matrix is symmetric), and a non-finite correlation (an example
  with a constant Jacobian, or an output that ignores the input) gives NaN, as the
  reference's exception handler does (a study records such a trial as unjudged);
* naswot uses the estimator's ``batch_size`` (64 by default; Mellor et al. used 128).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError, TrialFailed
from archsearch.estimation.base import TrialContext
from archsearch.estimation.cost import count_flops, count_parameters
from archsearch.estimation.training import DeviceData, NetworkEstimator
from archsearch.nn.device import resolve_device
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

#: Layers whose ``weight`` the per-weight proxies score.
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Layers synflow turns into identities.
NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
         nn.LayerNorm, nn.GroupNorm)
#: Elementwise activations whose inputs naswot codes.
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU,
               nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Tanh, nn.Sigmoid, nn.Softplus)
JACOB_COV_K = 1e-5


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def _weights(model: nn.Module) -> list[torch.Tensor]:
    weights = []
    for module in _weighted(model):
        assert isinstance(module.weight, torch.Tensor)
        weights.append(module.weight)
    return weights


def _grads(outputs: torch.Tensor, weights: list[torch.Tensor],
           create_graph: bool = False) -> list[torch.Tensor]:
    """d outputs / d weights, zeros for a weight off the graph."""
    if not weights or not outputs.requires_grad:
        return [torch.zeros_like(w) for w in weights]
    grads = torch.autograd.grad(outputs, weights, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]


def _total(parts: list[torch.Tensor]) -> float:
    """The sum of per-layer scores, in a fixed order, in double precision."""
    if not parts:
        return 0.0
    return float(torch.stack([p.detach().double() for p in parts]).sum())


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``sum |theta * dR/dtheta|`` of the linearised network on an all-ones input."""
    del y
    for name, module in list(model.named_modules()):
        if name and isinstance(module, NORMS):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, nn.Identity())
    model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    weights = _weights(model)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    grads = _grads(model(ones).sum(), weights)
    return _total([(w * g).abs().sum() for w, g in zip(weights, grads, strict=True)])


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.train()
    return F.cross_entropy(model(x), y)


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``sum |theta * dL/dtheta|`` (the saliency of a weight mask at 1)."""
    weights = _weights(model)
    grads = _grads(_loss(model, x, y), weights)
    return _total([(w * g).abs().sum() for w, g in zip(weights, grads, strict=True)])


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The L2 norm of each layer's weight gradient, summed over layers."""
    grads = _grads(_loss(model, x, y), _weights(model))
    return _total([g.norm() for g in grads])


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``sum -theta * (H g)``, ``g`` the loss gradient (detached), ``H`` the Hessian."""
    weights = _weights(model)
    g = [t.detach() for t in _grads(_loss(model, x, y), weights)]
    grads = _grads(_loss(model, x, y), weights, create_graph=True)
    z = sum(((a * b).sum() for a, b in zip(g, grads, strict=True) if b.requires_grad),
            torch.zeros((), dtype=x.dtype, device=x.device))
    if not z.requires_grad:
        return 0.0
    hg = _grads(z, weights)
    return _total([(-w.detach() * h).sum() for w, h in zip(weights, hg, strict=True)])


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Per channel of every conv / linear output: 0.5 * mean over the batch of
    (sum over positions of activation * gradient)^2, summed."""
    parts: dict[int, torch.Tensor] = {}
    calls = [0]

    def forward_hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        index = calls[0]
        calls[0] += 1
        act = output.detach()

        def grad_hook(grad: torch.Tensor) -> None:
            g_nk = act * grad
            if g_nk.dim() > 2:
                g_nk = g_nk.sum(dim=tuple(range(2, g_nk.dim())))
            parts[index] = g_nk.pow(2).mean(0).mul(0.5).sum()

        output.register_hook(grad_hook)

    handles = [m.register_forward_hook(forward_hook) for m in _weighted(model)]
    try:
        weights = _weights(model)
        if weights:  # the output hooks fire on the way to the weights
            _grads(_loss(model, x, y), weights)
    finally:
        for handle in handles:
            handle.remove()
    return _total([parts[i] for i in sorted(parts)])


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``-sum(log(v + k) + 1/(v + k))`` over the eigenvalues ``v`` of the correlation
    matrix of the per-example input gradients of the summed outputs, ``k = 1e-5``."""
    del y
    model.train()
    x = x.detach().clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(model(x).sum(), [x], allow_unused=True)
    if jac is None:  # the output does not depend on the input (a disconnected cell)
        return float("nan")
    corr = torch.corrcoef(jac.reshape(jac.shape[0], -1).double())
    if not bool(torch.isfinite(corr).all()):
        return float("nan")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + JACOB_COV_K) + 1 / (v + JACOB_COV_K)).sum())


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``log |det K|``, ``K`` the agreement counts of the examples' binary activation
    codes (the number of units minus the Hamming distance), over activations on the
    backward path."""
    del y
    model.train()
    activations = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    if not activations:
        raise TrialFailed("naswot needs activation modules (nn.ReLU, nn.GELU, ...) and the "
                          "network has none")
    visited: set[int] = set()
    n = x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def mark(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(lambda grad: visited.add(id(module)))

    def count(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal kernel
        if id(module) not in visited:
            return
        codes = (inputs[0].reshape(n, -1) > 0).float()
        # c c^T + (1-c)(1-c)^T = 2 c c^T - s_i - s_j + units, s the codes' row sums: one
        # matmul instead of two.  Every entry is an integer below 2**24 for layers of
        # fewer than 2**23 units, so float32 holds it exactly; the sum is in float64.
        units = codes.shape[1]
        if units >= 2**23:
            codes = codes.double()
        sums = codes.sum(dim=1)
        agree = 2 * (codes @ codes.T) - sums[:, None] - sums[None, :] + units
        kernel = kernel + agree.double()

    handles = [m.register_forward_hook(mark) for m in activations]
    try:
        inp = x.detach().clone().requires_grad_(True)
        out = model(inp).sum()
        # To the input and the parameters, as the reference: an activation fed only by
        # parameters (a conv on an unreached node's zeros, then BatchNorm) is on the
        # backward path to the parameters but not to the input.
        leaves = [inp, *(p for p in model.parameters() if p.requires_grad)]
        if out.requires_grad:
            torch.autograd.grad(out, leaves, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    handles = [m.register_forward_hook(count) for m in activations]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The parameter count (``count_parameters``)."""
    return float(count_parameters(model))


def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of a batch-1 forward pass (``count_flops``, which feeds float32)."""
    return float(count_flops(model.float(), tuple(x.shape[1:])))


#: Every proxy by name; larger is better for each.
PROXIES: dict[str, Proxy] = {
    "synflow": synflow, "snip": snip, "grad_norm": grad_norm, "fisher": fisher,
    "grasp": grasp, "jacob_cov": jacob_cov, "naswot": naswot, "params": params,
    "flops": flops,
}


def compute_proxy(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The proxy ``name`` of ``model`` on the batch ``(x, y)``, scored on a deep copy (the
    caller's model is left as it was)."""
    if name not in PROXIES:
        raise ConfigError(f"unknown proxy {name!r}; choose from {', '.join(PROXIES)}")
    return PROXIES[name](copy.deepcopy(model), x, y)


class ZeroCostEstimator(NetworkEstimator):
    """Scores each candidate with a zero-cost proxy of its untrained network.

    The network is ``space.build_network(genotype, ...)`` at the initialisation seeded by
    the trial's ``context.seed``.  The batch is the first ``batch_size`` examples of the
    fit split (carved by ``val_fraction`` and ``split_seed`` and standardised as the
    training estimator does) in an order drawn from the trial seed: a random batch per
    architecture, as the reference protocol (``dataload random``, one batch), and the same
    batch for the same seed.  So a trial is reproducible (bitwise on the CPU at a fixed
    thread count).

    ``objective`` is the proxy's name, maximised (larger is better for every proxy; see
    the module's notes).  Metrics: the proxy under its name, ``proxy_seconds`` (the
    proxy's computation alone: not building the network or drawing the batch),
    ``params`` and ``flops`` (as the training estimator counts them).  ``context.timeout``
    is not checked inside a proxy (one forward and at most two backward passes).
    """

    objective = "synflow"
    direction = "maximize"

    def __init__(
        self,
        dataset: Dataset | None = None,
        space: SearchSpace | None = None,
        *,
        proxy: str = "synflow",
        batch_size: int = 64,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        device: str = "cpu",
    ) -> None:
        if proxy not in PROXIES:
            raise ConfigError(f"unknown proxy {proxy!r}; choose from {', '.join(PROXIES)}")
        if batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (BatchNorm and the correlation "
                              f"proxies need two examples), got {batch_size}")
        if not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
        try:
            resolve_device(device)
        except RuntimeError as exc:
            raise ConfigError(f"unknown device {device!r}: {exc}") from None
        self.dataset = dataset
        self.space = space
        self.proxy = proxy
        self.objective = proxy
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.device = device
        self._tensors: DeviceData | None = None  # filled on first use
        self._check_space()

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        dataset, _ = self._ready()
        seed = context.seed
        model = self.network(genotype, seed)
        x, y = self.batch(seed)
        metrics = {
            "params": float(count_parameters(model)),
            "flops": float(count_flops(model, dataset.input_shape)),
        }
        with torch.random.fork_rng(devices=[]):  # a proxy that draws (dropout) is seeded
            torch.manual_seed(seed)
            start = time.perf_counter()
            value = PROXIES[self.proxy](model, x, y)
            metrics["proxy_seconds"] = time.perf_counter() - start
        metrics[self.proxy] = value
        return metrics

    def network(self, genotype: Genotype, seed: int) -> nn.Module:
        """The genotype's network at the initialisation seeded by ``seed``, on the device
        (the global random state is left as it was)."""
        dataset, space = self._ready()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = space.build_network(genotype, dataset.input_shape, dataset.num_classes)
        return model.to(self._data().device)

    def batch(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The minibatch of the trial seeded ``seed``: the first ``batch_size`` examples
        of the fit split in an order drawn from ``seed``."""
        data = self._data()
        order = torch.randperm(data.x_fit.shape[0], generator=torch.Generator().manual_seed(seed))
        idx = order[:self.batch_size].to(data.device)
        return data.x_fit[idx], data.y_fit[idx]
