"""BANANAS: Bayesian optimisation with an ensemble of neural predictors (White, Neiswanger
& Savani, "BANANAS: Bayesian Optimization with Neural Architectures for Neural
Architecture Search", AAAI 2021; REFERENCES.md section 9.1).

    evaluate 10 random architectures
    repeat:
        train 5 feed-forward networks on (encoding, loss) of every finished trial
        candidates = 100 unseen mutations of the best architecture
        per candidate, draw from N(ensemble mean, ensemble std)  # Thompson sampling
        evaluate the 10 candidates with the lowest draws

The published settings, all defaults here: 10 initial samples; 10 queries per
iteration; 100 candidates from the best architecture (``num_arches_to_mutate`` 1,
``mutation_rate`` 1, patience factor 5); an ensemble of 5 networks of 10 hidden layers
of width 20, ReLU, a linear output, MAE loss, Adam (lr 0.01, betas 0.9 and 0.99), batch
32, 150 epochs; independent Thompson sampling (ITS); the truncated path encoding (first
30 slots) on NAS-Bench-201.

Departures, named:

* the predictors learn the negated score, standardised (zero mean, unit deviation over
  the training set), where the reference learns the raw validation loss
  (100 - accuracy): the same ordering, on any objective's scale;
* a mutation is the space's ``mutate``, exactly one edit, where the reference's NB201
  mutation changes each of the 6 edges with probability ``mutation_rate / (6 - 2)`` =
  1/4 (1.5 edits on average; none at times, a copy of the parent that is then dropped);
* weights start Glorot-uniform with zero biases (Keras' defaults, as the reference's
  Keras networks), and Adam's epsilon is torch's 1e-8 (Keras: 1e-7);
* the 5 networks are trained side by side as one batched network (each on its own
  shuffle of the data, with its own weights and Adam state: the same arithmetic as 5
  separate trainings, in fewer, larger operations);
* on spaces other than NAS-Bench-201 the encoding is the space's own ``encode`` (one-hot
  per decision), as the path encoding is defined for NAS-Bench-201 cells only;
* ``warm_start`` (off by default, not in the reference) replaces the random initial
  design by the best of a pool scored by a zero-cost proxy (a proxy used to warm up a
  search, after Abdelfattah et al., ICLR 2021); the proxy is not a feature of the
  predictors (see
  ``archsearch.strategy._surrogate``);
* several trials in flight, the training set and the iteration bookkeeping: see
  ``archsearch.strategy._surrogate`` (pending trials are excluded from the candidates,
  with no constant liar; a used-up batch falls back to the iteration's next-best
  candidates, then to random unseen architectures).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.strategy._surrogate import SurrogateSearch, check_int


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one intra-op thread, restored after.  These networks are tiny: a second
    thread only adds synchronisation (30x slower on a busy 2-core machine), and a fixed
    count keeps the training bitwise the same in every process, which exact resume needs."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class MLPEnsemble:
    """``members`` feed-forward regressors (``hidden_layers`` ReLU layers of ``width``, a
    linear output) trained with MAE and Adam, all randomness from one ``seed`` through a
    local ``torch.Generator`` (the global torch and numpy generators are not touched).
    Training and prediction run on one torch thread (the process's count is restored
    after).

    >>> x = np.eye(4)
    >>> e = MLPEnsemble(members=2, epochs=5).fit(x, np.arange(4.0), seed=0)
    >>> mean, std = e.predict(x)
    >>> mean.shape, std.shape
    ((4,), (4,))
    """

    def __init__(self, members: int = 5, hidden_layers: int = 10, width: int = 20,
                 epochs: int = 150, learning_rate: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.99), batch_size: int = 32) -> None:
        self.members = members
        self.hidden_layers = hidden_layers
        self.width = width
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.betas = betas
        self.batch_size = batch_size
        self._params: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape (members, n, features) to predictions (members, n)."""
        h = x
        last = len(self._params) - 1
        for i, (weight, bias) in enumerate(self._params):
            h = torch.baddbmm(bias, h, weight)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)

    def fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> MLPEnsemble:
        with _one_thread():
            return self._fit(x, y, seed)

    def _fit(self, x: np.ndarray, y: np.ndarray, seed: int) -> MLPEnsemble:
        generator = torch.Generator().manual_seed(seed % 2**63)
        inputs = torch.as_tensor(x, dtype=torch.float32)
        targets = torch.as_tensor(y, dtype=torch.float32)
        n, features = inputs.shape
        sizes = [features] + [self.width] * self.hidden_layers + [1]
        self._params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform
            weight = (torch.rand(self.members, fan_in, fan_out, generator=generator) * 2 - 1) * limit
            self._params.append((weight.requires_grad_(),
                                 torch.zeros(self.members, 1, fan_out, requires_grad=True)))
        params = [p for pair in self._params for p in pair]
        try:  # the fused step (torch >= 2.4 on CPU) costs a third less on these tiny nets
            optimizer = torch.optim.Adam(params, lr=self.learning_rate, betas=self.betas,
                                         fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.Adam(params, lr=self.learning_rate, betas=self.betas)
        for _ in range(self.epochs):
            order = torch.stack([torch.randperm(n, generator=generator)
                                 for _ in range(self.members)])
            for start in range(0, n, self.batch_size):
                rows = order[:, start:start + self.batch_size]  # (members, batch)
                error = self._forward(inputs[rows]) - targets[rows]
                # Summed over members: each member's gradient is that of its own MAE.
                loss = error.abs().mean(dim=1).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        for weight, bias in self._params:
            weight.requires_grad_(False)
            bias.requires_grad_(False)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's mean and standard deviation (over members) at each row."""
        if not self._params:
            raise RuntimeError("MLPEnsemble.predict before fit")
        inputs = torch.as_tensor(x, dtype=torch.float32)
        with _one_thread(), torch.no_grad():
            out = self._forward(inputs.expand(self.members, *inputs.shape)).double().numpy()
        return out.mean(axis=0), out.std(axis=0)


class Bananas(SurrogateSearch):
    """BANANAS with the published settings (module docstring), on any space.

    ``initial_samples`` random architectures first; then, every
    ``queries_per_iteration`` finished trials, an ensemble of ``ensemble_size`` networks
    (``hidden_layers`` x ``layer_width``, ``epochs`` of Adam at ``learning_rate``, batches
    of ``batch_size``) is trained on the finished trials and rates ``num_candidates``
    mutations by independent Thompson sampling; the best-rated unseen one is proposed at
    each ask.  ``encoding`` is ``"auto"`` (the truncated path encoding on NAS-Bench-201,
    the space's ``encode`` elsewhere), ``"path"`` or ``"space"``.  ``warm_start`` (a
    zero-cost proxy name, e.g. ``"synflow"``; None by default) makes the initial design the
    best-scored of a pool of ``warm_pool`` architectures (scored on the study's
    ``dataset``, or read from the shipped table on NAS-Bench-201) in place of random ones;
    ``proxy_seconds`` is its scoring time.  See ``archsearch.strategy._surrogate`` for the
    iterations, the warm start, resume, and pending trials.

    >>> from archsearch.space import NB201Space
    >>> Bananas(NB201Space(), seed=0).ensemble_size
    5
    """

    name = "bananas"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        initial_samples: int = 10,
        queries_per_iteration: int = 10,
        num_candidates: int = 100,
        patience_factor: int = 5,
        encoding: str = "auto",
        dataset: Dataset | None = None,
        warm_start: str | None = None,
        warm_pool: int = 1000,
        ensemble_size: int = 5,
        hidden_layers: int = 10,
        layer_width: int = 20,
        epochs: int = 150,
        learning_rate: float = 0.01,
        betas: Sequence[float] = (0.9, 0.99),
        batch_size: int = 32,
    ) -> None:
        super().__init__(space, seed, initial_samples=initial_samples,
                         queries_per_iteration=queries_per_iteration,
                         num_candidates=num_candidates, patience_factor=patience_factor,
                         encoding=encoding, dataset=dataset, warm_start=warm_start,
                         warm_pool=warm_pool)
        check_int(self.name, ensemble_size=ensemble_size, hidden_layers=hidden_layers,
                  layer_width=layer_width, epochs=epochs, batch_size=batch_size)
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
                and learning_rate > 0):
            raise ConfigError(f"{self.name}: learning_rate must be > 0, got {learning_rate!r}")
        betas = tuple(betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"{self.name}: betas must be two numbers in [0, 1), got {betas!r}")
        self.ensemble_size = ensemble_size
        self.hidden_layers = hidden_layers
        self.layer_width = layer_width
        self.epochs = epochs
        self.learning_rate = float(learning_rate)
        self.betas = (float(betas[0]), float(betas[1]))
        self.batch_size = batch_size

    def ensemble(self) -> MLPEnsemble:
        """An untrained ensemble with this strategy's settings."""
        return MLPEnsemble(self.ensemble_size, self.hidden_layers, self.layer_width,
                           self.epochs, self.learning_rate, self.betas, self.batch_size)

    def _rank(self, x_train: np.ndarray, y_train: np.ndarray, x_candidates: np.ndarray,
              seed: int) -> np.ndarray:
        loss = -y_train  # the predictors learn a loss, as the reference's val loss
        spread = float(loss.std())
        target = (loss - loss.mean()) / (spread if spread > 0 else 1.0)
        mean, std = self.ensemble().fit(x_train, target, seed).predict(x_candidates)
        # Independent Thompson sampling: one draw per candidate, lowest loss first.
        draws = np.random.default_rng(seed).normal(mean, std)
        return np.argsort(draws, kind="stable")
