"""Pruners: stop a running trial early when its learning curve lags behind the record's.

A pruner is asked only at its ``steps`` (epochs); between two of them the trial trains
without interruption, so an estimator can run each stretch as one call.  It compares the
trial's curve with the curves of the study's other trials, nothing else: it holds no state
of its own, so a resumed study or a second worker gets the same decisions from the record.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.errors import ConfigError
from archsearch.trial import FrozenTrial, TrialState


def curve_value(trial: FrozenTrial, epoch: int, metric: str) -> float | None:
    """``metric`` at ``epoch`` of the trial's curve; None when the curve has no such epoch
    or the epoch has no such metric.  NaN is returned as NaN (the caller ranks it)."""
    curve = trial.curve
    # Curves run 1, 2, 3, ... so the entry is almost always at index epoch - 1; the scan
    # is for a curve with gaps, which nothing forbids.
    if 0 < epoch <= len(curve) and int(curve[epoch - 1]["epoch"]) == epoch:
        entry = curve[epoch - 1]
    else:
        found = [e for e in curve if int(e["epoch"]) == epoch]
        if not found:
            return None
        entry = found[-1]
    value = entry.get(metric)
    return None if value is None else float(value)


def rank_key(value: float | None, maximize: bool) -> tuple[int, float]:
    """A sort key, best first: ``sorted(values, key=lambda v: rank_key(v, maximize))``.
    Missing and NaN values come last, after every number."""
    if value is None or math.isnan(value):
        return (1, 0.0)
    return (0, -value if maximize else value)


def _others(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The record's trials that count in a comparison: not cached, and not an older copy
    of ``trial`` itself (the argument carries its current curve)."""
    return [t for t in trials if not t.cached and t.number != trial.number]


class Pruner(ABC):
    """Decides, at given epochs, whether a running trial stops (is pruned).

    ``__init__`` only validates and stores its keyword arguments, so ``get_params()`` is the
    pruner's whole configuration and can be recorded with the study.
    """

    @abstractmethod
    def steps(self, max_epochs: int) -> list[int]:
        """The epochs (ascending, each in 1..max_epochs-1) after which `prune` is asked; the
        trial trains straight from one to the next and from the last to max_epochs."""

    @abstractmethod
    def prune(self, trial: FrozenTrial, trials: Sequence[FrozenTrial], metric: str, maximize: bool) -> bool:
        """Whether `trial` (running, its curve ends at one of `steps`) stops now, given the
        study's record `trials` (which may include an older copy of `trial` itself, same
        `number`: use the argument's curve for it and ignore the copy); cached trials are
        ignored."""

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _check_int(name: str, value: object, low: int) -> None:
    # bool is an int to Python, but True as a step count is a typo, not a setting.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name}: must be >= {low}, got {value}")


class PercentilePruner(Pruner):
    """Prune a trial whose best value so far is worse than the ``percentile``-th best of the
    completed trials' values at the same epoch (Optuna's ``PercentilePruner``, whose rules
    this follows one for one).

    Epoch ``e`` is Optuna's step ``e - 1``, as Optuna's Keras and PyTorch Lightning
    callbacks report 0-based epochs: Optuna's warm-up and interval arithmetic starts at step
    0, and with ``step = e`` the check due at step 0 would fall, postponed, on epoch 1.  So
    ``n_warmup_steps=w`` means the first ``w`` epochs are never judged, and judgements come
    after epochs ``w + 1, w + 1 + interval_steps, ...``.  (``SuccessiveHalvingPruner``
    counts rungs in epochs trained instead, ``step = e``, as its rungs are resources.)

    - nothing is pruned until ``n_startup_trials`` trials are COMPLETE (cached ones aside);
    - the trial's value is its best over its whole curve so far (NaN ignored; a curve of
      NaN only is pruned at once);
    - the reference is the ``percentile`` of the completed trials' values at this exact
      epoch, interpolated linearly (numpy's ``nanpercentile``), and is used only when at
      least ``n_min_trials`` completed trials reached this epoch;
    - a trial strictly worse than the reference is pruned; equal survives.

    Departure: none in the rules; ``prune`` reads the trial's curve instead of Optuna's
    intermediate values, and cached repeats never count.
    """

    def __init__(
        self,
        percentile: float,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)):
            raise ConfigError(f"percentile: must be a number, got {percentile!r}")
        if not 0.0 <= percentile <= 100.0:
            raise ConfigError(f"percentile: must be between 0 and 100, got {percentile}")
        _check_int("n_startup_trials", n_startup_trials, 0)
        _check_int("n_warmup_steps", n_warmup_steps, 0)
        _check_int("interval_steps", interval_steps, 1)
        _check_int("n_min_trials", n_min_trials, 1)
        self.percentile = float(percentile)
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps
        self.n_min_trials = n_min_trials

    def steps(self, max_epochs: int) -> list[int]:
        _check_int("max_epochs", max_epochs, 1)
        w, i = self.n_warmup_steps, self.interval_steps
        return [e for e in range(1, max_epochs) if e - 1 >= w and (e - 1 - w) % i == 0]

    def prune(self, trial: FrozenTrial, trials: Sequence[FrozenTrial], metric: str, maximize: bool) -> bool:
        completed = [t for t in _others(trial, trials) if t.state is TrialState.COMPLETE]
        if not completed or len(completed) < self.n_startup_trials or not trial.curve:
            return False
        epoch = trial.epochs_trained
        step = epoch - 1
        w, i = self.n_warmup_steps, self.interval_steps
        if step < w:
            return False
        # Optuna judges the first report at or after each check step, so a curve with gaps
        # is judged late rather than never; with a full curve this is "epoch in steps()".
        previous = max((int(e["epoch"]) - 1 for e in trial.curve if int(e["epoch"]) != epoch), default=-1)
        if previous >= (step - w) // i * i + w:
            return False

        own = [v for v in (e.get(metric) for e in trial.curve) if v is not None and not math.isnan(v)]
        if not own:
            return True  # nothing but NaN (or no metric) so far: Optuna prunes it outright
        best = max(own) if maximize else min(own)

        at_epoch = [curve_value(t, epoch, metric) for t in completed]
        values = np.array([v for v in at_epoch if v is not None], dtype=float)
        if len(values) < self.n_min_trials or np.isnan(values).all():
            return False
        # The p-th best: for a maximised metric the best values are the high ones.
        q = 100.0 - self.percentile if maximize else self.percentile
        reference = float(np.nanpercentile(values, q))
        return best < reference if maximize else best > reference


class MedianPruner(PercentilePruner):
    """Prune a trial whose best value so far is worse than the median of the completed
    trials' values at the same epoch: Optuna's ``MedianPruner`` (``PercentilePruner`` at
    50; the median of an even count is the mean of the middle two).  See
    ``PercentilePruner`` for the rules and how epochs map to Optuna's steps.

    >>> MedianPruner(n_startup_trials=5, n_warmup_steps=2, interval_steps=3).steps(12)
    [3, 6, 9]
    """

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        super().__init__(50.0, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        del params["percentile"]  # fixed, not a setting
        return params


class SuccessiveHalvingPruner(Pruner):
    """Asynchronous successive halving (ASHA, Li et al. 2020) as Optuna's
    ``SuccessiveHalvingPruner`` does it.

    Rung ``k`` ends at epoch ``min_resource * reduction_factor ** (min_early_stopping_rate + k)``;
    those before ``max_epochs`` are the steps.  At a rung the trial's value competes with
    the value at that epoch of every other trial, whatever its state, that reached it
    (itself included, so ``n >= 1``): it goes on if it ranks in the top
    ``max(1, n // reduction_factor)``, ties included; while ``n < reduction_factor`` only
    the best goes on.  Nothing waits for a rung to fill.  A trial whose own value is NaN (or
    missing) is pruned.

    >>> SuccessiveHalvingPruner(min_resource=1, reduction_factor=3).steps(27)
    [1, 3, 9]

    Departures from Optuna: ``min_resource="auto"`` and ``bootstrap_count`` are not offered.
    The competitors are read from the record's curves instead of from values each trial
    stored as it passed a rung, which is the same set when every trial is judged at every
    rung it reaches, except that another trial's NaN counts here, as the worst value (a
    diverged run still took a place in the rung), where Optuna never stores one.
    """

    def __init__(
        self, min_resource: int = 1, reduction_factor: int = 4, min_early_stopping_rate: int = 0
    ) -> None:
        _check_int("min_resource", min_resource, 1)
        _check_int("reduction_factor", reduction_factor, 2)
        _check_int("min_early_stopping_rate", min_early_stopping_rate, 0)
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = min_early_stopping_rate

    def steps(self, max_epochs: int) -> list[int]:
        _check_int("max_epochs", max_epochs, 1)
        rungs = []
        epoch = self.min_resource * self.reduction_factor**self.min_early_stopping_rate
        while epoch < max_epochs:
            rungs.append(epoch)
            epoch *= self.reduction_factor
        return rungs

    def _is_rung(self, epoch: int) -> bool:
        first = self.min_resource * self.reduction_factor**self.min_early_stopping_rate
        while first < epoch:
            first *= self.reduction_factor
        return first == epoch

    def prune(self, trial: FrozenTrial, trials: Sequence[FrozenTrial], metric: str, maximize: bool) -> bool:
        epoch = trial.epochs_trained
        if not self._is_rung(epoch):
            return False  # asked off a rung: nothing to decide there
        value = curve_value(trial, epoch, metric)
        if value is None or math.isnan(value):
            return True
        competing = [curve_value(t, epoch, metric) for t in _others(trial, trials)]
        ranked = sorted([value, *(v for v in competing if v is not None)],
                        key=lambda v: rank_key(v, maximize))
        k = max(1, len(ranked) // self.reduction_factor)
        threshold = ranked[k - 1]
        if math.isnan(threshold):
            return False  # fewer than k numbers in the rung, and ours is one of them
        return value < threshold if maximize else value > threshold
