"""One-shot searches as strategies: ``strategy: darts`` or ``gdas`` in a config.

A one-shot search does not ask and tell its way through the space: it trains one
supernet (``OneShotDriver``, which ``Study.optimize`` runs for these strategies), then
proposes the single cell the supernet derives, which the study evaluates as an ordinary
trial.  ``ask`` reads that cell off the record (``storage.oneshot_epochs``), so a process
that resumes a finished search proposes the same cell.

The settings are flat keyword arguments (the keys of a config), grouped inside by what
they concern, each group a frozen object that checks itself:

* ``SupernetTraining``: epochs, batch size, both optimisers, warm-up, device, bf16;
* ``SearchDataSettings`` (``archsearch.oneshot.data``): what the supernet trains on;
* ``SupernetShape``: its size and whether a derived NAS-Bench-201 cell may hold ``none``;
* GDAS: ``GumbelSchedule``;
* DARTS: the ``order``, ``AuxiliarySkip`` (DARTS-), ``PerturbationSelection`` (DARTS-PT)
  and ``EigenvalueWatch`` (DARTS-ES), each None when off.

Optimiser defaults are the NAS-Bench-201 search scripts'.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch

from archsearch.errors import ConfigError
from archsearch.nn.supernet import Supernet
from archsearch.oneshot.darts import DARTS, BilevelSearch
from archsearch.oneshot.data import SearchData, SearchDataSettings
from archsearch.oneshot.driver import OneShotDriver
from archsearch.oneshot.early_stop import EigenvalueStop, EigenvalueWatch, eigenvalue_metrics
from archsearch.oneshot.gdas import GDAS, GumbelSchedule
from archsearch.oneshot.remedy import AuxiliarySkip
from archsearch.oneshot.selection import PerturbationSelection, decide_round, selection_scorer
from archsearch.space.base import SearchSpace, SupernetSpace
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch, Storage
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.study import derive_seed
from archsearch.trial import FrozenTrial

#: How DARTS reads the cell off the supernet: the magnitudes of alpha, or DARTS-PT.
SELECTIONS = ("argmax", "perturbation")
_INIT_STREAM = 10  # derive_seed stream of the supernet's initialisation


@dataclass(frozen=True)
class SupernetTraining:
    """How the supernet trains (``archsearch.oneshot.darts.BilevelSearch``): ``epochs`` of
    batches of ``batch_size`` images from each split, the weights by SGD (cosine ``lr`` ->
    ``lr_min``, ``momentum``, ``weight_decay``, gradients clipped at ``grad_clip``), the
    alphas by Adam (``arch_lr``, ``arch_weight_decay``), the alphas waiting the first
    ``warmup_epochs``; on ``device`` (``"auto"``: CUDA when available), with bf16
    autocasting on CUDA when ``bf16``."""

    epochs: int = 50
    batch_size: int = 64
    warmup_epochs: int = 0
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float | None = 5.0
    device: str = "auto"
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs must be in 0..{self.epochs - 1}, "
                              f"got {self.warmup_epochs}")
        if not 0 <= self.lr_min <= self.lr:
            raise ConfigError(f"need 0 <= lr_min <= lr, got {self.lr_min}, {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        for key in ("weight_decay", "arch_lr", "arch_weight_decay"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip must be > 0 (or None), got {self.grad_clip}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ConfigError(f"device must be 'auto' or a torch device such as 'cpu' or "
                                  f"'cuda:0', got {self.device!r}") from None

    def optimisers(self) -> dict[str, Any]:
        """``BilevelSearch``'s keyword arguments."""
        return dict(epochs=self.epochs, lr=self.lr, lr_min=self.lr_min,
                    momentum=self.momentum, weight_decay=self.weight_decay,
                    arch_lr=self.arch_lr, arch_weight_decay=self.arch_weight_decay,
                    grad_clip=self.grad_clip, warmup_epochs=self.warmup_epochs, bf16=self.bf16)


@dataclass(frozen=True)
class SupernetShape:
    """The supernet's size, the space's own unless ``channels`` / ``cells`` (per stage on
    NAS-Bench-201, in all on the DARTS space) are given; ``include_none=False`` keeps
    ``none`` out of a derived NAS-Bench-201 cell (the DARTS space never derives it)."""

    channels: int | None = None
    cells: int | None = None
    include_none: bool = True

    def __post_init__(self) -> None:
        for key in ("channels", "cells"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be >= 1 (or None: the space's), got {value}")


def _pick(cls: type[Any], settings: Mapping[str, Any]) -> Any:
    """An instance of the settings dataclass ``cls`` from the flat settings of its names."""
    return cls(**{f.name: settings[f.name] for f in dataclasses.fields(cls)})


def _given(frame: Mapping[str, Any]) -> dict[str, Any]:
    """A constructor's flat settings: its ``locals()`` before it defines any other name."""
    return {k: v for k, v in frame.items() if k not in ("self", "space", "seed", "__class__")}


def _off(given: Any, keys: Mapping[str, str], needs: str) -> None:
    """Refuse settings of a feature that is off: those of ``given`` (the feature's settings
    object) that differ from its defaults; ``keys`` maps its fields to config keys."""
    default = type(given)()
    changed = [key for name, key in keys.items() if getattr(given, name) != getattr(default, name)]
    if changed:
        raise ConfigError(f"{' / '.join(changed)} {'is' if len(changed) == 1 else 'are'} "
                          f"for {needs}")


class OneShotSearch(Strategy):
    """What DARTS and GDAS share: the supernet, its training and its data, and the record.

    Subclasses build their ``BilevelSearch`` (``make_search``) and may add work at the end
    of each epoch (``after_epoch``), epochs after the supernet's (``total_epochs``) and an
    early stop (``stop_epoch``).
    """

    name: ClassVar[str] = ""

    def __init__(self, space: SearchSpace, seed: int, settings: Mapping[str, Any]) -> None:
        super().__init__(space, seed)
        if not isinstance(space, SupernetSpace):
            raise ConfigError(f"{self.name} trains a supernet, and the space "
                              f"{type(space).__name__} ({space.name!r}) cannot build one: "
                              "one-shot search needs a space with build_supernet "
                              "(archsearch.space.SupernetSpace: nb201, darts)")
        self._settings = dict(settings)
        self.training: SupernetTraining = _pick(SupernetTraining, settings)
        self.data: SearchDataSettings = _pick(SearchDataSettings, settings)
        self.shape: SupernetShape = _pick(SupernetShape, settings)
        self._storage: Storage | None = None
        self._study = ""

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed, **self._settings}

    def driver(self) -> OneShotDriver:
        return OneShotDriver(self)

    # -- what the driver asks ------------------------------------------------------------
    @property
    def label(self) -> str:
        """The method's name in logs and benchmarks (e.g. ``darts-minus-es``)."""
        return self.name

    @property
    def total_epochs(self) -> int:
        """The epochs the search trains the supernet for."""
        return self.training.epochs

    def build_supernet(self, num_classes: int, in_channels: int) -> Supernet:
        """The space's supernet, initialised from the study seed (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, 0, _INIT_STREAM))
            supernet = cast(SupernetSpace, self.space).build_supernet(
                num_classes=num_classes, in_channels=in_channels,
                channels=self.shape.channels, cells=self.shape.cells,
                include_none=self.shape.include_none, **self.supernet_options())
        if not isinstance(supernet, Supernet):
            raise ConfigError(f"{type(self.space).__name__}.build_supernet returned a "
                              f"{type(supernet).__name__}, not an archsearch.nn.supernet.Supernet")
        return supernet

    def supernet_options(self) -> dict[str, Any]:
        """What the method adds to the supernet (DARTS-: its auxiliary skips)."""
        return {}

    def make_search(self, supernet: Supernet) -> BilevelSearch:
        raise NotImplementedError

    def after_epoch(self, epoch: int, search: BilevelSearch, data: SearchData,
                    generator: torch.Generator, log: Callable[[str], None]) -> dict[str, float]:
        """Work between training ``epoch`` and recording it; returns figures to record."""
        return {}

    def stop_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The earlier epoch whose cell an early stop returns, given the recorded epochs
        (None: no early stop, or it has not fired)."""
        return None

    def stop_message(self, records: Sequence[OneShotEpoch], describe: Callable[[Genotype], str]
                     ) -> str:
        """Why the search stopped early (called once ``stop_epoch`` has fired)."""
        return ""

    def result_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The recorded epoch whose derived cell is the search's result: the last one once
        every epoch is recorded, or the one an early stop went back to; None while the
        record does not decide it."""
        stop = self.stop_epoch(records)
        if stop is not None:
            return stop
        return len(records) - 1 if records and len(records) >= self.total_epochs else None

    # -- the study's view ----------------------------------------------------------------
    def attach(self, storage: Storage, study: str) -> None:
        """Read the one-shot record of ``study`` in ``storage`` from now on."""
        self._storage, self._study = storage, study

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        """The search's cell once the record holds it (and it is not evaluated yet)."""
        if self._storage is None:
            return None
        records = self._storage.oneshot_epochs(self._study)
        chosen = self.result_epoch(records)
        if chosen is None:
            return None
        genotype = records[chosen].genotype
        return None if self.space.key(genotype) in seen_keys(trials) else genotype


class GdasSearch(OneShotSearch):
    """GDAS (``archsearch.oneshot.gdas``): one Gumbel-softmax-sampled op per edge and step,
    the temperature falling linearly from ``tau_max`` to ``tau_min`` over the epochs.

    Data: ``train_portion`` of the training images (after ``max_images``, a stratified
    subset, when given) train the weights, the rest the alphas; ``image_size`` resizes
    them (area interpolation); ``augment`` crops and flips the weights' batches.  The
    other settings: ``SupernetTraining``, ``SupernetShape``.
    """

    name = "gdas"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
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
        include_none: bool = True,
        channels: int | None = None,
        cells: int | None = None,
        device: str = "auto",
        bf16: bool = False,
        split_seed: int = 0,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
    ) -> None:
        settings = _given(locals())
        super().__init__(space, seed, settings)
        self.gumbel = GumbelSchedule(tau_max, tau_min)

    def make_search(self, supernet: Supernet) -> BilevelSearch:
        return GDAS(supernet, tau_max=self.gumbel.tau_max, tau_min=self.gumbel.tau_min,
                    **self.training.optimisers())


class DartsSearch(OneShotSearch):
    """DARTS (``archsearch.oneshot.darts``), first or second ``order``, and its remedies
    against the collapse onto skip connections:

    * ``auxiliary_skip=True``: DARTS- (``archsearch.oneshot.remedy``), its skips
      normalised with ``auxiliary_op="skip_bn"``;
    * ``selection="perturbation"``: DARTS-PT (``archsearch.oneshot.selection``), the cell
      chosen by what removing an op costs the supernet, ``selection_interval``
      fine-tuning epochs between two decisions, each judged by ``selection_criterion``
      (``"accuracy"`` or ``"loss"``); ``fix_alpha=True`` never trains alpha;
    * ``early_stop=True``: DARTS-ES (``archsearch.oneshot.early_stop``), the Hessian's
      dominant eigenvalue recorded after each epoch, the search stopped once it has risen
      (``early_stop_window`` / ``_lag`` / ``_factor`` / ``_start``) and the cell of an
      earlier epoch returned; ``track_eigenvalue=True`` records it without stopping.

    The sub-settings of a remedy that is off are refused, as is the eigenvalue with a
    perturbation selection (which does not read the cell off alpha).  Data and the other
    settings: as ``GdasSearch``.
    """

    name = "darts"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
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
        include_none: bool = True,
        channels: int | None = None,
        cells: int | None = None,
        device: str = "auto",
        bf16: bool = False,
        split_seed: int = 0,
        order: int = 1,
        auxiliary_skip: bool = False,
        auxiliary_op: str = "skip",
        selection: str = "argmax",
        selection_interval: int = 5,
        selection_criterion: str = "accuracy",
        fix_alpha: bool = False,
        early_stop: bool = False,
        track_eigenvalue: bool = False,
        early_stop_window: int = 5,
        early_stop_lag: int = 4,
        early_stop_factor: float = 1.3,
        early_stop_start: int = 10,
    ) -> None:
        settings = _given(locals())
        super().__init__(space, seed, settings)
        if order not in (1, 2):
            raise ConfigError(f"order must be 1 or 2, got {order}")
        self.order = order

        skip = AuxiliarySkip(auxiliary_op)
        if not auxiliary_skip:
            _off(skip, {"op": "auxiliary_op"}, "auxiliary_skip=True (DARTS-)")
        self.auxiliary_skip: AuxiliarySkip | None = skip if auxiliary_skip else None

        if selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        pt = PerturbationSelection(selection_interval, selection_criterion, fix_alpha)
        if selection != "perturbation":
            _off(pt, {"interval": "selection_interval", "criterion": "selection_criterion",
                      "fix_alpha": "fix_alpha"}, "selection='perturbation' (DARTS-PT)")
        self.selection: PerturbationSelection | None = (
            pt if selection == "perturbation" else None)

        rule = EigenvalueStop(early_stop_window, early_stop_lag, early_stop_factor,
                              early_stop_start)
        watch = early_stop or track_eigenvalue
        if not watch:
            _off(rule, {"window": "early_stop_window", "lag": "early_stop_lag",
                        "factor": "early_stop_factor", "start": "early_stop_start"},
                 "early_stop=True or track_eigenvalue=True (DARTS-ES)")
        elif self.selection is not None:
            raise ConfigError("early_stop and track_eigenvalue are for DARTS with "
                              "selection='argmax' (DARTS-ES): a perturbation selection does "
                              "not read the cell off alpha")
        elif early_stop and epochs < rule.min_epochs:
            # Said now rather than found out after a long search that could not stop.
            raise ConfigError(
                f"early_stop can never fire in {epochs} epochs: its rule compares "
                f"{early_stop_window}-epoch means {early_stop_lag} epochs apart from epoch "
                f"{early_stop_start} on, which needs at least {rule.min_epochs} epochs; "
                "raise epochs or lower early_stop_start / _lag / _window")
        self.eigenvalue: EigenvalueWatch | None = (
            EigenvalueWatch(rule, stop=early_stop) if watch else None)

    @property
    def label(self) -> str:
        """darts, darts2 or darts-minus; ``-pt`` (``-pt-fixed``) appended for a
        perturbation-based selection (with alpha fixed), ``-es`` for the early stop."""
        base = ("darts-minus" if self.auxiliary_skip else
                "darts2" if self.order == 2 else "darts")
        if self.selection is not None:
            base += "-pt-fixed" if self.selection.fix_alpha else "-pt"
        return base + "-es" if self.eigenvalue is not None and self.eigenvalue.stop else base

    @functools.cached_property
    def selection_rounds(self) -> int:
        """The decision rounds of a perturbation selection on this space's supernet
        (``Supernet.selection_rounds``; the supernet built on the meta device, which
        allocates and draws nothing)."""
        with torch.device("meta"):
            return self.build_supernet(1, 1).selection_rounds()

    @property
    def total_epochs(self) -> int:
        """The supernet's epochs plus the fine-tuning epochs of a perturbation selection."""
        if self.selection is None:
            return self.training.epochs
        return self.training.epochs + self.selection.extra_epochs(self.selection_rounds)

    def supernet_options(self) -> dict[str, Any]:
        skip = self.auxiliary_skip
        return {"auxiliary_skip": skip is not None,
                "auxiliary_op": skip.op if skip is not None else AuxiliarySkip().op}

    def make_search(self, supernet: Supernet) -> BilevelSearch:
        return DARTS(supernet, order=self.order, auxiliary_skip=self.auxiliary_skip is not None,
                     fix_alpha=self.selection is not None and self.selection.fix_alpha,
                     **self.training.optimisers())

    def after_epoch(self, epoch: int, search: BilevelSearch, data: SearchData,
                    generator: torch.Generator, log: Callable[[str], None]) -> dict[str, float]:
        """The selection rounds due after ``epoch`` (DARTS-PT), then the Hessian's
        eigenvalue (DARTS-ES)."""
        batch_size = self.training.batch_size
        if self.selection is not None:
            rounds = self.selection.rounds_after(epoch, self.training.epochs,
                                                 self.selection_rounds)
            for _ in range(rounds):
                merit = selection_scorer(search, data, batch_size, self.selection.criterion)
                for decision in decide_round(search.supernet, merit, generator):
                    log(f"epoch {epoch + 1}: perturbation selection fixes {decision}")
        return eigenvalue_metrics(search, data, batch_size) if self.eigenvalue else {}

    def rule_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        """The epoch whose cell DARTS-ES's rule picks from the recorded eigenvalues (None:
        it has not fired), whether or not this search stops on it."""
        if self.eigenvalue is None:
            raise ConfigError("the rule needs the eigenvalues: early_stop or track_eigenvalue")
        return self.eigenvalue.rule_epoch(records)

    def stop_epoch(self, records: Sequence[OneShotEpoch]) -> int | None:
        if self.eigenvalue is None or not self.eigenvalue.stop:
            return None
        return self.eigenvalue.rule_epoch(records)

    def stop_message(self, records: Sequence[OneShotEpoch], describe: Callable[[Genotype], str]
                     ) -> str:
        chosen = self.stop_epoch(records)
        if chosen is None or self.eigenvalue is None:
            return ""
        return self.eigenvalue.stop_message(records, chosen, describe)
