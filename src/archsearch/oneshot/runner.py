"""One-shot searches inside the study loop: ``strategy: darts`` or ``gdas`` in a config.

A one-shot search does not ask and tell: it trains a supernet, then derives one genotype.
``run_oneshot`` runs it on a study:

    for each epoch not yet recorded:
        train the supernet one epoch (weights on the training split, alphas on the other)
        (selection="perturbation") decide the edges due after this epoch
        record the mixture weights, the derived genotype and the epoch's figures, and a
        checkpoint (storage.write_oneshot_epoch)
    the study evaluates the last epoch's genotype as an ordinary trial

The study's estimator scores the derived trial: ``training`` retrains it from scratch
(and ``archsearch export`` can retrain it again), ``nb201`` looks the cell up in the
table.  The supernet's own figures per epoch are in the one-shot record
(``storage.oneshot_epochs``).  After a kill the same command resumes from the last
recorded epoch, bit for bit on the CPU: each epoch's batch order, augmentation and Gumbel
noise come from a generator seeded by the study seed and the epoch number, and the
checkpoint holds the supernet and both optimisers.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.data.dataset import Dataset
from archsearch.data.split import stratified_split
from archsearch.estimation.training import prepare_tensors
from archsearch.nn.supernet import AUXILIARY_OPS, Mixture, Supernet, supernet_for
from archsearch.oneshot.darts import DARTS, Batch, BilevelSearch
from archsearch.oneshot.early_stop import EigenvalueStop, hessian_eigenvalue
from archsearch.oneshot.gdas import GDAS
from archsearch.oneshot.selection import CRITERIA, decide_round, selection_rounds
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch, StorageError
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.study import Budget, StopReason, Study, derive_seed
from archsearch.trial import FrozenTrial

METHODS = ("darts", "gdas")
SELECTIONS = ("argmax", "perturbation")
_INIT_STREAM, _EPOCH_STREAM = 10, 11  # derive_seed streams, apart from the study's own


class OneShotStrategy(Strategy):
    """The settings of a one-shot search; to the study, a strategy proposing one genotype.

    ``method`` is ``"darts"`` (``order`` 1 or 2; ``auxiliary_skip=True`` for DARTS-, its
    skips normalised with ``auxiliary_op="skip_bn"``, see ``archsearch.oneshot.remedy``) or
    ``"gdas"`` (``tau_max`` -> ``tau_min``).  ``selection`` is how the cell is read off the
    supernet: ``"argmax"`` (the alphas, as DARTS) or ``"perturbation"`` (DARTS-PT, for
    DARTS only: ``selection_interval`` fine-tuning epochs between two decisions, each
    judged by ``selection_criterion``, ``"accuracy"`` or ``"loss"``, see
    ``archsearch.oneshot.selection``; ``fix_alpha=True`` never trains alpha).
    ``early_stop=True`` (DARTS with argmax selection) is DARTS-ES: the Hessian's dominant
    eigenvalue is recorded after each epoch and the search stops, returning an earlier
    epoch's cell, once it has risen (``early_stop_window`` / ``_lag`` / ``_factor`` /
    ``_start``, see ``archsearch.oneshot.early_stop``); ``track_eigenvalue=True`` records
    the eigenvalue without stopping.  On the
    NAS-Bench-201 space the derived cell may hold ``none``, as in NAS-Bench-201's own
    scripts, unless ``include_none=False`` (the DARTS space never derives it).  Optimiser
    defaults are the NAS-Bench-201 search scripts'.  Data: ``train_portion`` of the
    training images (after ``max_images``, a stratified subset, when given) train the
    weights, the rest the alphas; ``image_size`` resizes images (area interpolation);
    ``augment`` applies random crop (padding 1/8 of the size) and horizontal flip to the
    weights' batches.  In the first ``warmup_epochs`` only the weights learn.  The
    supernet has the space's size unless ``channels`` / ``cells`` are given.

    ``ask`` returns the derived genotype once ``run_oneshot`` has set it, then None.
    """

    name = "oneshot"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        method: str = "darts",
        epochs: int = 50,
        batch_size: int = 64,
        train_portion: float = 0.5,
        max_images: int | None = None,
        image_size: int | None = None,
        augment: bool = True,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        arch_lr: float = 3e-4,
        arch_weight_decay: float = 1e-3,
        grad_clip: float | None = 5.0,
        warmup_epochs: int = 0,
        order: int = 1,
        auxiliary_skip: bool = False,
        auxiliary_op: str = "skip",
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        selection: str = "argmax",
        selection_interval: int = 5,
        selection_criterion: str = "accuracy",
        fix_alpha: bool = False,
        include_none: bool = True,
        early_stop: bool = False,
        track_eigenvalue: bool = False,
        early_stop_window: int = 5,
        early_stop_lag: int = 4,
        early_stop_factor: float = 1.3,
        early_stop_start: int = 10,
        channels: int | None = None,
        cells: int | None = None,
        device: str = "auto",
        bf16: bool = False,
        split_seed: int = 0,
    ) -> None:
        super().__init__(space, seed)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "gdas" and (order != 1 or auxiliary_skip):
            raise ValueError("order and auxiliary_skip are DARTS options, not GDAS ones")
        if auxiliary_op not in AUXILIARY_OPS:
            raise ValueError(f"auxiliary_op must be one of {AUXILIARY_OPS}, got {auxiliary_op!r}")
        if auxiliary_op != "skip" and not auxiliary_skip:
            raise ValueError("auxiliary_op is for auxiliary_skip=True (DARTS-)")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        if selection == "perturbation" and method != "darts":
            raise ValueError("selection='perturbation' is for DARTS (GDAS samples paths "
                             "from alpha, which would ignore the decided edges)")
        if fix_alpha and selection != "perturbation":
            raise ValueError("fix_alpha=True needs selection='perturbation': "
                             "an untrained alpha selects nothing")
        if selection_interval < 0:
            raise ValueError(f"selection_interval must be >= 0, got {selection_interval}")
        if selection_criterion not in CRITERIA:
            raise ValueError(f"selection_criterion must be one of {CRITERIA}, "
                             f"got {selection_criterion!r}")
        if selection_criterion != "accuracy" and selection != "perturbation":
            raise ValueError("selection_criterion is for selection='perturbation'")
        if (early_stop or track_eigenvalue) and (method != "darts" or selection != "argmax"):
            raise ValueError("early_stop and track_eigenvalue are for DARTS with "
                             "selection='argmax' (DARTS-ES): GDAS samples its ops and a "
                             "perturbation selection does not read the cell off alpha")
        if epochs < 1 or batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0 < train_portion < 1:
            raise ValueError(f"train_portion must be in (0, 1), got {train_portion}")
        self.method = method
        self.epochs, self.batch_size = epochs, batch_size
        self.train_portion, self.max_images, self.image_size = train_portion, max_images, image_size
        self.augment = augment
        self.lr, self.lr_min, self.momentum, self.weight_decay = lr, lr_min, momentum, weight_decay
        self.arch_lr, self.arch_weight_decay, self.grad_clip = arch_lr, arch_weight_decay, grad_clip
        self.warmup_epochs = warmup_epochs
        self.order, self.auxiliary_skip = order, auxiliary_skip
        self.auxiliary_op = auxiliary_op
        self.tau_max, self.tau_min = tau_max, tau_min
        self.selection, self.selection_interval = selection, selection_interval
        self.selection_criterion = selection_criterion
        self.fix_alpha = fix_alpha
        self.include_none = include_none
        self.early_stop = early_stop
        self.track_eigenvalue = track_eigenvalue or early_stop
        self.eigenvalue_rule = EigenvalueStop(early_stop_window, early_stop_lag,
                                              early_stop_factor, early_stop_start)
        if early_stop and epochs < self.eigenvalue_rule.min_epochs:
            # Said now rather than found out after a long search that could not stop.
            raise ValueError(
                f"early_stop can never fire in {epochs} epochs: its rule compares "
                f"{early_stop_window}-epoch means {early_stop_lag} epochs apart from epoch "
                f"{early_stop_start} on, which needs at least "
                f"{self.eigenvalue_rule.min_epochs} epochs; raise epochs or lower "
                "early_stop_start / _lag / _window")
        self.channels, self.cells = channels, cells
        self.device, self.bf16, self.split_seed = device, bf16, split_seed
        self._derived: Genotype | None = None

    @property
    def label(self) -> str:
        """darts, darts2, darts-minus or gdas; ``-pt`` (``-pt-fixed``) appended for a
        perturbation-based selection (with alpha fixed), ``-es`` for the early stop."""
        if self.method == "gdas":
            return "gdas"
        base = "darts-minus" if self.auxiliary_skip else ("darts2" if self.order == 2 else "darts")
        if self.selection == "perturbation":
            base += "-pt-fixed" if self.fix_alpha else "-pt"
        return base + "-es" if self.early_stop else base

    @property
    def total_epochs(self) -> int:
        """The supernet's epochs plus the fine-tuning epochs of a perturbation selection."""
        if self.selection != "perturbation":
            return self.epochs
        return self.epochs + (selection_rounds(self.space) - 1) * self.selection_interval

    def rounds_after(self, epoch: int) -> int:
        """How many selection rounds end ``epoch``: one after the supernet's last epoch and
        after every ``selection_interval`` fine-tuning epochs (all at once if it is 0)."""
        if self.selection != "perturbation" or epoch < self.epochs - 1:
            return 0
        if self.selection_interval == 0:
            return selection_rounds(self.space) if epoch == self.epochs - 1 else 0
        return int((epoch - self.epochs + 1) % self.selection_interval == 0)

    def rule_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The epoch whose cell DARTS-ES's rule picks from the recorded eigenvalues (None:
        it has not fired), whether or not this search stops on it."""
        return self.eigenvalue_rule.stop_epoch(recorded_eigenvalues(records))

    def stop_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The epoch whose cell the early stop returns, given the recorded epochs (None:
        no early stop, or it has not fired)."""
        return self.rule_epoch(records) if self.early_stop else None

    def result_epoch(self, records: Sequence[OneShotEpoch]) -> int:
        """The recorded epoch whose derived cell is the search's result."""
        stop = self.stop_epoch(records)
        return len(records) - 1 if stop is None else stop

    def propose(self, genotype: Genotype) -> None:
        """The genotype ``ask`` will return (the search's result)."""
        self.space.validate(genotype)
        self._derived = genotype

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        if self._derived is None or self.space.key(self._derived) in seen_keys(trials):
            return None
        return self._derived

    def build_supernet(self, num_classes: int, in_channels: int) -> Supernet:
        with torch.random.fork_rng(devices=[]):  # seed the init, leave global state alone
            torch.manual_seed(derive_seed(self.seed, 0, _INIT_STREAM))
            return supernet_for(self.space, num_classes=num_classes, in_channels=in_channels,
                                auxiliary_skip=self.auxiliary_skip,
                                auxiliary_op=self.auxiliary_op,
                                include_none=self.include_none, channels=self.channels,
                                cells=self.cells)

    def make_search(self, supernet: Supernet) -> BilevelSearch:
        settings: dict[str, Any] = dict(
            epochs=self.epochs, lr=self.lr, lr_min=self.lr_min, momentum=self.momentum,
            weight_decay=self.weight_decay, arch_lr=self.arch_lr,
            arch_weight_decay=self.arch_weight_decay, grad_clip=self.grad_clip,
            warmup_epochs=self.warmup_epochs, fix_alpha=self.fix_alpha, bf16=self.bf16)
        if self.method == "gdas":
            return GDAS(supernet, tau_max=self.tau_max, tau_min=self.tau_min, **settings)
        return DARTS(supernet, order=self.order, auxiliary_skip=self.auxiliary_skip, **settings)

    def resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


# -- data -------------------------------------------------------------------------------


@dataclass
class SearchData:
    """The two halves of the search data on the device, standardised.

    ``val_order`` is a fixed random order of the validation images, for what takes them
    in slices rather than in the epoch's shuffled batches (the eigenvalue's batch, the
    perturbation selection's chunks): the split keeps the dataset's order, class by class
    for an image folder, and a slice of one class normalised by training-mode BN says
    little about the validation loss.
    """

    x_fit: torch.Tensor
    y_fit: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    val_order: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_fit.shape[1:])

    def val_slices(self, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The validation images in ``val_order``, in near-equal slices of at most
        ``size`` (never a slice of one image, which BN could not normalise)."""
        chunks = max(1, -(-self.x_val.shape[0] // size))
        return [(self.x_val[i], self.y_val[i]) for i in self.val_order.tensor_split(chunks)]


def prepare_search_data(dataset: Dataset, strategy: OneShotStrategy,
                        device: torch.device) -> SearchData:
    """Subset, split, move to ``device``, standardise and resize the training images."""
    if dataset.modality != "image":
        raise ValueError("one-shot cell searches need image data (N, C, H, W)")
    x, y = dataset.x_train, dataset.y_train
    if strategy.max_images is not None and strategy.max_images < y.shape[0]:
        _, subset = stratified_split(y, strategy.max_images / y.shape[0], strategy.split_seed)
        x, y = x[subset], y[subset]
    trimmed = Dataset(dataset.name, x, y, dataset.x_test[:0], dataset.y_test[:0],
                      dataset.classes)
    tensors = prepare_tensors(trimmed, 1 - strategy.train_portion, strategy.split_seed, device)

    def resize(images: torch.Tensor) -> torch.Tensor:
        if strategy.image_size is None or images.shape[-1] == strategy.image_size:
            return images
        return F.interpolate(images, size=(strategy.image_size,) * 2, mode="area")

    order = torch.randperm(tensors.y_val.shape[0],
                           generator=torch.Generator().manual_seed(strategy.split_seed))
    return SearchData(resize(tensors.x_fit), tensors.y_fit, resize(tensors.x_val), tensors.y_val,
                      order.to(device))


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 of the size) and horizontal flip, per image."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h)).to(x.device)
    cols = (dx[:, None] + torch.arange(w)).to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice: the result is (n, h, w, channels).
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def epoch_batches(data: SearchData, batch_size: int, generator: torch.Generator, *,
                  augment_images: bool) -> tuple[Iterator[Batch], int]:
    """This epoch's (training, validation) batch pairs and their number; the last partial
    batch is dropped (BatchNorm cannot train on a batch of one)."""
    n_fit, n_val = data.x_fit.shape[0], data.x_val.shape[0]
    batch = min(batch_size, n_fit, n_val)
    steps = min(n_fit, n_val) // batch
    fit_order = torch.randperm(n_fit, generator=generator)
    val_order = torch.randperm(n_val, generator=generator)
    device = data.x_fit.device

    def batches() -> Iterator[Batch]:
        for k in range(steps):
            i = fit_order[k * batch:(k + 1) * batch].to(device)
            j = val_order[k * batch:(k + 1) * batch].to(device)
            x_fit = data.x_fit[i]
            if augment_images:
                x_fit = augment(x_fit, generator)
            yield x_fit, data.y_fit[i], data.x_val[j], data.y_val[j]

    return batches(), steps


# -- the loop ---------------------------------------------------------------------------


def _describe(space: SearchSpace, genotype: Genotype) -> str:
    to_string: Callable[[Genotype], str] = getattr(space, "to_string", space.format)
    return to_string(genotype)


def _epoch_line(record: OneShotEpoch, epochs: int, text: str) -> str:
    m = record.metrics
    extra = "".join(f"  {k} {m[k]:.3g}" for k in ("tau", "skip_beta", "hessian_eigenvalue")
                    if k in m)
    hessian = f" (+{m['hessian_seconds']:.1f} s Hessian)" if "hessian_seconds" in m else ""
    return (f"epoch {record.epoch + 1:>3}/{epochs}  train loss {m['train_loss']:.3f} "
            f"acc {m['train_accuracy']:.3f}  val loss {m['val_loss']:.3f} "
            f"acc {m['val_accuracy']:.3f}{extra}  {m['seconds']:.1f} s{hessian}  {text}")


def _scorer(search: BilevelSearch, data: SearchData, batch_size: int, criterion: str
            ) -> Callable[[dict[str, Mixture]], float]:
    """The supernet's merit on the whole validation split under given mixtures: its
    accuracy, or minus its mean loss (training-mode BN, as the search runs)."""
    def merit(mixtures: dict[str, Mixture]) -> float:
        search.supernet.train()
        correct = torch.zeros((), dtype=torch.long, device=data.x_val.device)
        loss_sum = torch.zeros((), device=data.x_val.device)
        with torch.no_grad():
            for x, y in data.val_slices(batch_size):
                loss, right = search.loss(x, y, mixtures)
                loss_sum += loss * x.shape[0]
                correct += right
        n = max(data.x_val.shape[0], 1)
        return -float(loss_sum) / n if criterion == "loss" else int(correct) / n
    return merit


def recorded_eigenvalues(records: Sequence[OneShotEpoch]) -> list[float]:
    """The Hessian eigenvalue of every recorded epoch (an error if an epoch lacks it)."""
    missing = [r.epoch for r in records if "hessian_eigenvalue" not in r.metrics]
    if missing:
        raise ValueError(f"early_stop needs the Hessian's eigenvalue of every epoch; epochs "
                         f"{missing[:5]} were recorded without it (by a search without "
                         "early_stop): start a new study")
    return [r.metrics["hessian_eigenvalue"] for r in records]


def _eigenvalue(search: BilevelSearch, data: SearchData, batch_size: int) -> dict[str, float]:
    """The Hessian's dominant eigenvalue on the first ``batch_size`` validation images in
    ``val_order`` (the same ones every epoch), and the seconds it took."""
    began = time.perf_counter()
    first = data.val_order[:batch_size]
    value = hessian_eigenvalue(search, data.x_val[first], data.y_val[first])
    return {"hessian_eigenvalue": value, "hessian_seconds": time.perf_counter() - began}


def _resume(search: BilevelSearch, state: dict[str, Any], study: str, epochs: int) -> None:
    """Load the last checkpoint into ``search``, or say why it does not fit.

    A checkpoint fits only the supernet and optimisers that wrote it.  ``archsearch run``
    refuses a changed config before this point, but a study built in Python with other
    space or one-shot settings, or an archsearch version whose supernet gained a buffer,
    reaches it, and torch's own message names tensors, not what to do.
    """
    try:
        search.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as error:
        raise StorageError(
            f"study {study!r}: the checkpoint after epoch {epochs} does not fit the supernet "
            f"this config builds with this archsearch version ({type(error).__name__}: "
            f"{textwrap.shorten(str(error), 300)}); resume with the config and version that "
            "started it, or start a new study"
        ) from error


def run_oneshot(study: Study, dataset: Dataset | None, *, seconds: float | None = None,
                log: Callable[[str], None] = print) -> StopReason:
    """Run (or resume) the one-shot search of ``study`` (whose strategy is a
    ``OneShotStrategy``), then let the study evaluate the derived genotype.

    ``seconds`` bounds this run's search: no epoch begins that would end after it, judged
    by the previous epoch's duration (rerun to go on).
    Returns the study's stop reason: ``TIMEOUT`` if the search did not finish.
    """
    strategy = study.strategy
    if not isinstance(strategy, OneShotStrategy):
        raise TypeError(f"run_oneshot needs a study with a OneShotStrategy, "
                        f"not {type(strategy).__name__}")
    if dataset is None:
        raise ValueError("a one-shot search trains a supernet: the config needs data")
    storage, name = study.storage, study.name
    records = storage.oneshot_epochs(name)
    if [r.epoch for r in records] != list(range(len(records))):
        raise ValueError(f"study {name!r} has gaps in its one-shot epochs; the record is damaged")

    total = strategy.total_epochs
    if len(records) < total:
        began = time.monotonic()
        device = strategy.resolve_device()
        data = prepare_search_data(dataset, strategy, device)
        supernet = strategy.build_supernet(dataset.num_classes, data.input_shape[0]).to(device)
        search = strategy.make_search(supernet)
        if records:
            _resume(search, storage.load_oneshot_state(name, records[-1].epoch), name,
                    len(records))
            log(f"resuming the {strategy.label} search after epoch {len(records)}")
        log(f"{strategy.label} search: {total} epochs, "
            f"{data.x_fit.shape[0]:,} + {data.x_val.shape[0]:,} images of "
            f"{'x'.join(map(str, data.input_shape))}, on {device}")
        last = 0.0  # the last epoch's duration: an epoch that would overrun is not begun
        for epoch in range(len(records), total):
            if strategy.stop_epoch(records) is not None:
                break
            if seconds is not None and time.monotonic() - began + last > seconds:
                log(f"time budget reached after epoch {epoch}: run again to resume")
                return StopReason.TIMEOUT
            epoch_began = time.monotonic()
            generator = torch.Generator().manual_seed(derive_seed(study.seed, epoch,
                                                                  _EPOCH_STREAM))
            batches, steps = epoch_batches(data, strategy.batch_size, generator,
                                           augment_images=strategy.augment)
            metrics = search.train_epoch(epoch, batches, steps, generator)
            for _ in range(strategy.rounds_after(epoch)):
                merit = _scorer(search, data, strategy.batch_size, strategy.selection_criterion)
                for decision in decide_round(supernet, merit, generator):
                    log(f"epoch {epoch + 1}: perturbation selection fixes {decision}")
            if strategy.track_eigenvalue:
                metrics.update(_eigenvalue(search, data, strategy.batch_size))
            record = OneShotEpoch(epoch, supernet.arch_weights(), metrics, supernet.derive())
            storage.write_oneshot_epoch(name, record, search.state_dict())
            records.append(record)
            log(_epoch_line(record, total, _describe(study.space, record.genotype)))
            last = time.monotonic() - epoch_began

    chosen = strategy.result_epoch(records)
    if chosen != len(records) - 1:
        rule = strategy.eigenvalue_rule
        values = recorded_eigenvalues(records)
        current = chosen + rule.lag
        log(f"early stop after epoch {len(records)}: the Hessian's dominant eigenvalue rose "
            f"from {rule.smoothed(values, chosen):.4g} (mean around epoch {chosen + 1}) to "
            f"{rule.smoothed(values, current):.4g} (around epoch {current + 1}); the cell of "
            f"epoch {chosen + 1}: {_describe(study.space, records[chosen].genotype)}")
    strategy.propose(records[chosen].genotype)
    return study.optimize(Budget())
