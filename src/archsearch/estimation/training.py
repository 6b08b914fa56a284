"""Train-from-scratch estimation: build the genotype's network, train it, score it.

The data live on the device as tensors, prepared once per estimator; batches are
slices of a random permutation (no DataLoader, no per-sample Python).  The training
loop never waits on the device inside an epoch: losses are kept as tensors and looked
at once per epoch, which is also where a non-finite loss is caught and the validation
accuracy of the learning curve is measured.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.data.dataset import Dataset
from archsearch.data.split import nested_subset, stratified_split
from archsearch.errors import ConfigError
from archsearch.estimation.base import (
    Estimator,
    Evaluation,
    TrialContext,
    TrialFailed,
    TrialTimeout,
)
from archsearch.estimation.checkpoint import Progress, RunIdentity, load_checkpoint, save_checkpoint
from archsearch.estimation.cost import count_flops, count_parameters, latency_stats
from archsearch.nn.device import autocast, resolve_device
from archsearch.nn.ops import Standardize
from archsearch.space.base import SearchSpace, TrainableSpace
from archsearch.space.genotype import Genotype

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass
class DeviceData:
    """A dataset on the device: fit, validation and test splits, standardised with the fit
    split's per-channel ``mean`` and ``std`` after scaling by ``scale``."""

    device: torch.device
    x_fit: torch.Tensor
    y_fit: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    scale: float
    mean: torch.Tensor
    std: torch.Tensor


class TrainingEvaluation(Evaluation, Mapping[str, float]):
    """An ``Evaluation`` that also reads as its metrics: ``result["val_accuracy"]`` and
    ``dict(result)`` keep working for code written when ``evaluate`` returned a mapping."""

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)


@dataclass
class _Trained:
    model: nn.Module
    progress: Progress
    #: Epochs trained by this call (0 when a checkpoint was already where it was asked).
    new_epochs: int = 0


@dataclass
class _Plan:
    """What one training run does: stop after ``epochs`` of the full schedule, measure
    ``val`` (inputs, labels) after each epoch for the curve (None: no curve), continue
    from and save to ``checkpoint``, and train on the fit ``rows`` (None: all)."""

    epochs: int
    val: tuple[torch.Tensor, torch.Tensor] | None = None
    checkpoint: str | None = None
    rows: torch.Tensor | None = None


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = math.inf if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise TrialTimeout(f"trial exceeded its {self.seconds:g} s time limit")


class NetworkEstimator(Estimator):
    """What estimators that build networks on the study's data share: the dataset and the
    space (injected by the registry), the fit / validation / test splits put on ``device``
    once per process (``prepare_tensors``), and a clear error when either is missing.
    Subclasses set ``dataset``, ``space``, ``device``, ``val_fraction`` and ``split_seed``."""

    dataset: Dataset | None
    space: SearchSpace | None
    device: str
    val_fraction: float
    split_seed: int
    _tensors: DeviceData | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Device tensors do not travel to worker processes; each worker prepares its own.
        return {**self.__dict__, "_tensors": None}

    def _check_space(self) -> None:
        if self.space is not None and not isinstance(self.space, TrainableSpace):
            raise ConfigError(
                f"the {type(self).__name__} builds networks, and the {type(self.space).__name__} "
                "space cannot (it has no build_network; see archsearch.space.TrainableSpace)")

    def _ready(self) -> tuple[Dataset, TrainableSpace]:
        if self.dataset is None or not isinstance(self.space, TrainableSpace):
            raise ConfigError(f"the {type(self).__name__} needs a dataset and a space that "
                              "builds networks (create_study(..., data=...) or data: in a config)")
        return self.dataset, self.space

    def _data(self) -> DeviceData:
        dataset, _ = self._ready()
        device = resolve_device(self.device)
        if self._tensors is None or self._tensors.device != device:
            self._tensors = prepare_tensors(dataset, self.val_fraction, self.split_seed, device)
        return self._tensors


class TrainingEstimator(NetworkEstimator):
    """Trains each candidate from scratch on ``dataset`` and reports its validation accuracy.

    The validation split is carved from the train arrays by ``split_seed`` (stratified by
    class) and is fixed for the whole study; the trial's ``context.seed`` sets the
    weight initialisation and the batch order, so a trial is reproducible (bitwise on the
    CPU at a fixed thread count; CUDA kernels may differ in the last bits).  Inputs are
    scaled (``uint8`` by 1/255) and standardised per channel with the fit split's mean
    and std.  The learning rate follows ``schedule``: ``"cosine"`` decays it from ``lr``
    towards 0 over all training steps, updated every step; ``"constant"`` keeps it.
    ``bf16`` autocasting applies on CUDA only.  Each epoch drops its last partial batch
    (BatchNorm cannot train on a batch of one).  The test set is scored for the record
    and never used for selection.  ``context.timeout`` counts from the start of
    ``evaluate`` and is checked before every batch, in training and in scoring.

    ``train_fraction`` below 1 trains on that fraction of every class of the fit split,
    a subset chosen by ``split_seed`` and so the same for every trial: a cheaper, noisier
    estimate.  Validation and test splits are unchanged, and ``train_final`` always
    trains on the whole fit split.  ``context.data_fraction`` (a multi-fidelity driver's
    ``resource="data"``) trains one trial's whole schedule on that fraction of those rows,
    nested across fractions; below 1 the run reports like one stopped early (no test
    accuracy, no latency), and its metrics and curve entries carry ``data_fraction``.

    The network is ``space.build_network(genotype, input_shape, num_classes)``: any space
    that implements it (``archsearch.space.TrainableSpace``) can be trained, a user's own
    included.

    Learning curve: ``evaluate`` returns an ``Evaluation`` (which also reads as its metrics
    mapping) whose curve has one entry per epoch, ``{"epoch", "val_accuracy",
    "train_loss"}``, the validation accuracy measured after every epoch.  The validation
    pass draws no random numbers, so training is the same with or without it.

    Fidelity (``archsearch.fidelity``): ``max_epochs`` is ``epochs``.  ``context.epochs``
    (1 to ``epochs``) stops after that epoch of the full schedule; the learning rates are
    those of the full ``epochs`` schedule, so the first epochs of a short run are those of
    a long one.  With ``context.checkpoint``, an existing file is continued from (it must
    come from the same trial seed, genotype and settings) and a run that stops before
    ``epochs`` saves its state there (model, optimizer, batch order, curve), so training to
    epoch k, then continuing to m, gives bitwise the weights of training straight to m (on
    the CPU; a network that draws random numbers in its forward pass, as dropout does,
    draws them from torch's global generator, which no checkpoint holds; the built-in
    spaces draw none).  The file is not removed.  On disk a checkpoint takes about
    ``params`` x 3 floats with Adam or AdamW (weights and two moments), x 2 with SGD
    (weights and momentum): 12 MB for a million float32 parameters with Adam.

    Metrics: ``val_accuracy``, ``test_accuracy``, ``train_loss`` (last epoch's mean),
    ``params``, ``flops`` (see ``count_flops``), ``train_seconds`` (the training steps
    alone, summed over continuations), ``latency_seconds`` and ``latency_spread_seconds``
    (median and interquartile range of ``latency_repeats`` forward passes of a
    ``latency_batch_size`` batch on ``latency_device``, the deployment target, CPU by
    default whatever the training device, with ``latency_threads`` CPU threads; see
    ``latency_stats``) and ``epochs``.  A run stopped before ``epochs`` reports only
    ``val_accuracy``, ``train_loss``, ``epochs`` (reached), ``train_seconds``, ``params``
    and ``flops``: the test set and the latency are for finished trials.
    """

    objective = "val_accuracy"
    direction = "maximize"
    data_fidelity = True

    def __init__(
        self,
        dataset: Dataset | None = None,
        space: SearchSpace | None = None,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        schedule: str = "cosine",
        val_fraction: float = 0.2,
        train_fraction: float = 1.0,
        device: str = "auto",
        bf16: bool = False,
        split_seed: int = 0,
        latency_device: str = "cpu",
        latency_batch_size: int = 1,
        latency_repeats: int = 20,
        latency_threads: int = 1,
    ) -> None:
        self.dataset = dataset
        self.space = space
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.val_fraction = val_fraction
        self.train_fraction = train_fraction
        self.device = device
        self.bf16 = bf16
        self.split_seed = split_seed
        self.latency_device = latency_device
        self.latency_batch_size = latency_batch_size
        self.latency_repeats = latency_repeats
        self.latency_threads = latency_threads
        self._tensors: DeviceData | None = None  # filled on first use
        self._check_args()
        self._check_space()

    # -- public ---------------------------------------------------------------------

    @property
    def max_epochs(self) -> int:
        return self.epochs

    def evaluate(self, genotype: Genotype, context: TrialContext) -> TrainingEvaluation:
        deadline = _Deadline(context.timeout)
        epochs = self.epochs if context.epochs is None else context.epochs
        if not 1 <= epochs <= self.epochs:
            raise ValueError(f"context.epochs must be in 1..{self.epochs} (the estimator's "
                             f"epochs), got {epochs}")
        fraction = context.data_fraction
        if fraction is not None:
            if not 0 < fraction <= 1:
                raise ValueError(f"context.data_fraction must be in (0, 1], got {fraction}")
            if context.epochs is not None or context.checkpoint is not None:
                raise ValueError("context.data_fraction starts a new run of the whole "
                                 "schedule; it does not combine with epochs or a checkpoint")
        data = self._data()
        with _release_on_failure(data.device):
            plan = _Plan(epochs, (data.x_val, data.y_val), context.checkpoint,
                         self._fit_rows(data, fraction))
            evaluation = self._evaluate(genotype, context.seed, data, plan, deadline,
                                        partial=fraction is not None and fraction < 1)
        if fraction is None:
            return evaluation
        # Tagged, so a driver that records several runs of one trial can tell them apart.
        return TrainingEvaluation({**evaluation.metrics, "data_fraction": fraction},
                                  tuple({**e, "data_fraction": fraction}
                                        for e in evaluation.curve))

    def train_final(
        self, genotype: Genotype, seed: int, *, include_validation: bool
    ) -> tuple[nn.Module, dict[str, float]]:
        """Train the final model, on train + validation when ``include_validation``.

        Returns the model (on the CPU, in eval mode, with the input standardisation built
        in, so it takes inputs as the ``Dataset`` stores them) and its metrics.
        """
        data = self._data()
        x, y = data.x_fit, data.y_fit
        if include_validation:
            x, y = torch.cat([x, data.x_val]), torch.cat([y, data.y_val])
        with _release_on_failure(data.device):
            trained = self._train(genotype, seed, x, y, _Plan(self.epochs), _Deadline(None))
            metrics = {
                "test_accuracy": self._accuracy(trained.model, data.x_test, data.y_test),
                "train_loss": trained.progress.train_loss,
                "train_seconds": trained.progress.train_seconds,
                "params": float(count_parameters(trained.model)),
                "flops": float(count_flops(trained.model, self._ready()[0].input_shape)),
                "epochs": float(self.epochs),
            }
            if not include_validation:
                metrics["val_accuracy"] = self._accuracy(trained.model, data.x_val, data.y_val)
            model = nn.Sequential(OrderedDict(
                standardize=Standardize(data.scale, data.mean, data.std),
                net=trained.model,
            ))
        return model.cpu().eval(), metrics

    # -- one trial ------------------------------------------------------------------

    def _evaluate(
        self, genotype: Genotype, seed: int, data: DeviceData, plan: _Plan, deadline: _Deadline,
        *, partial: bool = False,
    ) -> TrainingEvaluation:
        trained = self._train(genotype, seed, data.x_fit, data.y_fit, plan, deadline)
        model, progress = trained.model, trained.progress
        shape = self._ready()[0].input_shape
        # Measured after the last epoch trained here; a run resumed where it was asked to
        # stop trained nothing, so its loaded model is scored.
        val_accuracy = (progress.curve[-1]["val_accuracy"] if trained.new_epochs
                        else self._accuracy(model, data.x_val, data.y_val, deadline))
        metrics = {
            "val_accuracy": val_accuracy,
            "train_loss": progress.train_loss,
            "params": float(count_parameters(model)),
            "flops": float(count_flops(model, shape)),
            "train_seconds": progress.train_seconds,
            "epochs": float(progress.epoch),
        }
        curve = tuple(progress.curve)
        if progress.epoch < self.epochs or partial:
            return TrainingEvaluation(metrics, curve)
        metrics["test_accuracy"] = self._accuracy(model, data.x_test, data.y_test, deadline)
        deadline.check()
        latency = latency_stats(
            model, shape, self.latency_device, batch_size=self.latency_batch_size,
            repeats=self.latency_repeats, threads=self.latency_threads,
        )
        metrics["latency_seconds"] = latency.median
        metrics["latency_spread_seconds"] = latency.spread
        return TrainingEvaluation(metrics, curve)

    def _train(
        self, genotype: Genotype, seed: int, x: torch.Tensor, y: torch.Tensor, plan: _Plan,
        deadline: _Deadline,
    ) -> _Trained:
        """The one training loop evaluate and train_final share."""
        self._check_args()
        with torch.random.fork_rng(devices=[]):  # seed the init without touching global state
            torch.manual_seed(seed)
            dataset, space = self._ready()
            model = space.build_network(genotype, dataset.input_shape, dataset.num_classes)
        model.to(x.device)
        optimizer = self._make_optimizer(model)
        order = torch.Generator().manual_seed(seed)  # batch order, on the CPU for portability
        identity = RunIdentity(seed, genotype.to_json(), self._settings(x.shape[0]))
        progress = Progress()
        if plan.checkpoint is not None and os.path.exists(plan.checkpoint):
            progress = load_checkpoint(plan.checkpoint, identity, model, optimizer, order)
            if progress.epoch > plan.epochs:
                raise TrialFailed(f"checkpoint {plan.checkpoint} is at epoch {progress.epoch}, "
                                  f"beyond the {plan.epochs} epochs asked for")
        n = x.shape[0] if plan.rows is None else plan.rows.shape[0]
        batch = min(self.batch_size, n)
        steps = n // batch  # drop the last partial batch
        # Always the full schedule's rates, so a run stopped early saw those of a full one.
        lrs = self._learning_rates(steps * self.epochs)
        start_epoch = progress.epoch
        for epoch in range(start_epoch, plan.epochs):
            model.train()  # again every epoch: the validation pass leaves it in eval mode
            start = time.perf_counter()
            perm = torch.randperm(n, generator=order).to(x.device, non_blocking=True)
            if plan.rows is not None:
                perm = plan.rows[perm]
            losses = []
            for step in range(steps):
                deadline.check()
                for group in optimizer.param_groups:
                    group["lr"] = lrs[epoch * steps + step]
                idx = perm[step * batch:(step + 1) * batch]
                with autocast(self.bf16, x.device):
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            # One device sync per epoch: find a non-finite loss and the epoch's mean.
            epoch_losses = torch.stack(losses).float()
            finite = torch.isfinite(epoch_losses)
            if not bool(finite.all()):
                bad = int((~finite).nonzero()[0, 0]) + 1
                raise TrialFailed(f"non-finite loss at epoch {epoch + 1} step {bad}")
            progress.train_loss = float(epoch_losses.mean())
            progress.train_seconds += time.perf_counter() - start
            progress.epoch = epoch + 1
            if plan.val is not None:
                # eval mode and no_grad: no random numbers drawn, no BatchNorm statistics
                # updated, so the training that follows is as if this pass never ran.
                accuracy = self._accuracy(model, *plan.val, deadline)
                progress.curve.append({"epoch": float(epoch + 1), "val_accuracy": accuracy,
                                       "train_loss": progress.train_loss})
        new_epochs = progress.epoch - start_epoch
        if plan.checkpoint is not None and new_epochs and progress.epoch < self.epochs:
            save_checkpoint(plan.checkpoint, identity, progress, model, optimizer, order)
        return _Trained(model, progress, new_epochs)

    def _accuracy(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
        deadline: _Deadline | None = None,
    ) -> float:
        if x.shape[0] == 0:
            return math.nan
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        chunk = 4 * self.batch_size  # no activations kept for backward: larger batches fit
        with torch.no_grad():
            for i in range(0, x.shape[0], chunk):
                if deadline is not None:
                    deadline.check()
                with autocast(self.bf16, x.device):
                    logits = model(x[i:i + chunk])
                correct += (logits.argmax(dim=1) == y[i:i + chunk]).sum()
        return float(correct) / x.shape[0]

    # -- setup ----------------------------------------------------------------------

    def _check_args(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        for name in ("latency_batch_size", "latency_repeats", "latency_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    def _fit_rows(self, data: DeviceData, fraction: float | None = None) -> torch.Tensor | None:
        """The fit rows a trial trains on: None for all of them, else ``train_fraction``
        of every class, chosen by ``split_seed`` (the same rows for every trial), and of
        those a trial's ``data_fraction`` (``nested_subset``: a smaller fraction's rows
        are among a larger one's)."""
        if self.train_fraction == 1 and (fraction is None or fraction == 1):
            return None
        labels = data.y_fit.cpu().numpy()
        keep = np.arange(labels.size)
        if self.train_fraction < 1:
            keep, _ = stratified_split(labels, 1 - self.train_fraction, self.split_seed)
        if fraction is not None and fraction < 1:
            keep = keep[nested_subset(labels[keep], fraction, self.split_seed)]
        return torch.from_numpy(keep).to(data.device)

    def _settings(self, fit_rows: int) -> str:
        """The settings a checkpoint must have been written with to be continued: all
        that shape the schedule, the data or the update (not the device, not latency)."""
        names = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule",
                 "val_fraction", "train_fraction", "split_seed", "bf16")
        settings: dict[str, object] = {name: getattr(self, name) for name in names}
        settings["data"] = f"{self._ready()[0].name}:{fit_rows}"
        return json.dumps(settings, sort_keys=True)

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params, lr, wd = model.parameters(), self.lr, self.weight_decay
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)

    def _learning_rates(self, total_steps: int) -> list[float]:
        """Per-step rates, precomputed so the loop only assigns a float."""
        if self.schedule == "constant":
            return [self.lr] * total_steps
        return [self.lr * 0.5 * (1 + math.cos(math.pi * t / total_steps))
                for t in range(total_steps)]


def prepare_tensors(
    dataset: Dataset, val_fraction: float, split_seed: int, device: torch.device
) -> DeviceData:
    """The dataset on ``device``: fit and validation splits carved from the train arrays
    (``stratified_split``: ``val_fraction`` of every class, by ``split_seed``) and the test
    arrays, standardised with the fit split's per-channel mean and std (the one-shot
    searches share this with the estimator)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    fit_idx, val_idx = stratified_split(dataset.y_train, val_fraction, split_seed)
    if val_idx.size == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no validation examples")
    scale = 1 / 255 if dataset.x_train.dtype == np.uint8 else 1.0

    def load(x: np.ndarray) -> torch.Tensor:
        # Copy the compact raw array, convert on the device.
        return torch.from_numpy(np.ascontiguousarray(x)).to(device).float() * scale

    x_fit = load(dataset.x_train[fit_idx])
    dims = [d for d in range(x_fit.dim()) if d != 1]  # all but channels / features
    std, mean = torch.std_mean(x_fit, dim=dims, correction=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))  # constant features stay put

    def standardize(x: torch.Tensor) -> torch.Tensor:
        return (x - mean) / std

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    return DeviceData(
        device=device,
        x_fit=standardize(x_fit),
        y_fit=labels(dataset.y_train[fit_idx]),
        x_val=standardize(load(dataset.x_train[val_idx])),
        y_val=labels(dataset.y_train[val_idx]),
        x_test=standardize(load(dataset.x_test)),
        y_test=labels(dataset.y_test),
        scale=scale,
        mean=mean.flatten(),
        std=std.flatten(),
    )


@contextlib.contextmanager
def _release_on_failure(device: torch.device) -> Iterator[None]:
    """Free a failed trial's model and activations before the error propagates.

    The traceback keeps the frames of the training loop, and their locals, alive; clearing
    them lets the study hold the error without holding the model.
    """
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        traceback.clear_frames(exc.__traceback__)
        torch.cuda.empty_cache()
        raise TrialFailed(f"out of memory: {exc}") from None
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise
