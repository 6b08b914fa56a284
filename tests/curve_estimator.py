"""An estimator with a learning curve that is fast to train, for the scheduler tests
(importable by worker processes).  Its checkpoints are real files (JSON), and every
epoch it trains is logged, so a test can see that a promoted trial continued where it
stopped instead of starting over."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from archsearch.estimation.base import Estimator, Evaluation, TrialContext, TrialFailed
from archsearch.space.genotype import Genotype


def quality(genotype: Genotype) -> float:
    """Where an architecture's curve ends: a fixed function of its decisions."""
    text = genotype.to_json()
    return 0.3 + 0.6 * (sum(map(ord, text)) % 97) / 96


class CurveEstimator(Estimator):
    """``val_accuracy`` after epoch e is ``quality * (1 - 0.6 ** e)`` plus noise seeded by
    the trial's seed and the epoch (so curves cross).  ``log`` (a folder) gets one line
    per trained epoch per trial; ``seconds`` per epoch slows it down for kill tests;
    ``fail_keys`` makes those architectures raise at their second epoch.  With
    ``context.data_fraction`` f the whole schedule runs afresh and the curve is scaled by
    ``0.5 + 0.5 f`` (noise seeded by the fraction too); such runs are logged to
    ``trial-N.data.log`` as ``f epoch`` lines."""

    objective = "val_accuracy"
    data_fidelity = True

    def __init__(self, epochs: int = 9, log: str | None = None, seconds: float = 0.0,
                 fail_keys: tuple[str, ...] = ()) -> None:
        self.epochs = epochs
        self.log = log
        self.seconds = seconds
        self.fail_keys = fail_keys

    @property
    def max_epochs(self) -> int:
        return self.epochs

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Evaluation:
        if context.data_fraction is not None:
            return self._on_fraction(genotype, context, context.data_fraction)
        target = context.epochs or self.epochs
        curve: list[dict[str, float]] = []
        if context.checkpoint and os.path.exists(context.checkpoint):
            saved = json.loads(Path(context.checkpoint).read_text())
            if saved["seed"] != context.seed:
                raise TrialFailed("checkpoint of another trial")
            curve = saved["curve"]
        for epoch in range(len(curve) + 1, target + 1):
            if epoch == 2 and genotype.to_json() in self.fail_keys:
                raise TrialFailed("diverged at epoch 2")
            time.sleep(self.seconds)
            noise = np.random.default_rng([context.seed, epoch]).normal(0, 0.03)
            value = quality(genotype) * (1 - 0.6 ** epoch) + float(noise)
            curve.append({"epoch": float(epoch), "val_accuracy": value,
                          "train_loss": -math.log(max(value, 1e-3))})
            if self.log is not None:
                with open(Path(self.log) / f"trial-{context.number}.log", "a") as out:
                    out.write(f"{epoch}\n")
        if context.checkpoint and target < self.epochs:
            partial = context.checkpoint + ".partial"
            Path(partial).write_text(json.dumps({"seed": context.seed, "curve": curve}))
            os.replace(partial, context.checkpoint)
        last = curve[-1]
        metrics = {"val_accuracy": last["val_accuracy"], "epochs": last["epoch"]}
        if target == self.epochs:
            metrics["test_accuracy"] = last["val_accuracy"] - 0.01
        return Evaluation(metrics, tuple(curve))

    def _on_fraction(self, genotype: Genotype, context: TrialContext,
                     fraction: float) -> Evaluation:
        assert context.epochs is None and context.checkpoint is None
        curve = []
        for epoch in range(1, self.epochs + 1):
            time.sleep(self.seconds)
            noise = np.random.default_rng([context.seed, epoch, round(fraction * 1000)]).normal(0, 0.03)
            value = quality(genotype) * (1 - 0.6 ** epoch) * (0.5 + 0.5 * fraction) + float(noise)
            curve.append({"epoch": float(epoch), "val_accuracy": value,
                          "train_loss": -math.log(max(value, 1e-3)), "data_fraction": fraction})
            if self.log is not None:
                with open(Path(self.log) / f"trial-{context.number}.data.log", "a") as out:
                    out.write(f"{fraction} {epoch}\n")
        metrics = {"val_accuracy": curve[-1]["val_accuracy"], "epochs": float(self.epochs),
                   "data_fraction": fraction}
        if fraction == 1:
            metrics["test_accuracy"] = metrics["val_accuracy"] - 0.01
        return Evaluation(metrics, tuple(curve))
