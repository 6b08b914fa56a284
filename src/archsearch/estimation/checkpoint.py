"""A training run's state on disk, so a trial stopped after some epochs continues later
exactly as if it had never stopped (``TrainingEstimator`` with ``TrialContext.checkpoint``).

A checkpoint holds only tensors, numbers, strings and plain containers, and is read with
``torch.load(..., weights_only=True)``: a file from elsewhere can be refused, never run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archsearch.errors import TrialFailed

#: Bumped when the layout changes, so an old file is refused rather than misread.
FORMAT = 1
_KEYS = ("format", "seed", "genotype", "settings", "epoch", "curve", "train_seconds",
         "train_loss", "model", "optimizer", "order")


@dataclass
class Progress:
    """How far a run has got: epochs done, the curve so far (one dict of floats per
    epoch), training seconds summed over every continuation, and the last epoch's loss."""

    epoch: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_loss: float = math.nan


@dataclass(frozen=True)
class RunIdentity:
    """What must match for a checkpoint to continue this run: the trial's seed, the
    genotype's canonical JSON and the training settings (schedule, data) as text."""

    seed: int
    genotype: str
    settings: str


def save_checkpoint(
    path: str, identity: RunIdentity, progress: Progress, model: nn.Module,
    optimizer: torch.optim.Optimizer, order: torch.Generator,
) -> None:
    """Write the run's state to ``path`` atomically: a reader sees the old file or the new
    one, never half of one (a worker may die mid-write)."""
    state: dict[str, Any] = {
        "format": FORMAT,
        "seed": identity.seed,
        "genotype": identity.genotype,
        "settings": identity.settings,
        "epoch": progress.epoch,
        "curve": [dict(point) for point in progress.curve],
        "train_seconds": progress.train_seconds,
        "train_loss": progress.train_loss,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "order": order.get_state(),
    }
    partial = path + ".partial"
    torch.save(state, partial)
    os.replace(partial, path)


def load_checkpoint(
    path: str, identity: RunIdentity, model: nn.Module, optimizer: torch.optim.Optimizer,
    order: torch.Generator,
) -> Progress:
    """Restore ``model``, ``optimizer`` and ``order`` from ``path`` and return the progress
    it records; ``TrialFailed`` if the file cannot be read or belongs to another run."""
    try:
        # Onto the CPU first: load_state_dict then copies weights and moments to wherever
        # the parameters live, and leaves Adam's step counters on the CPU, as in a run that
        # never stopped (mapped to CUDA they would stay there).
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unreadable or unsafe: either way not resumable
        raise TrialFailed(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or any(key not in state for key in _KEYS):
        raise TrialFailed(f"{path} is not an archsearch training checkpoint")
    if state["format"] != FORMAT:
        raise TrialFailed(f"checkpoint {path} has format {state['format']}, expected {FORMAT}")
    if state["seed"] != identity.seed or state["genotype"] != identity.genotype:
        raise TrialFailed(f"checkpoint {path} belongs to another trial (a different seed or "
                          "genotype)")
    if state["settings"] != identity.settings:
        raise TrialFailed(f"checkpoint {path} was written with other training settings: "
                          f"{state['settings']} (now {identity.settings})")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    order.set_state(state["order"])
    return Progress(
        epoch=int(state["epoch"]),
        curve=[{k: float(v) for k, v in point.items()} for point in state["curve"]],
        train_seconds=float(state["train_seconds"]),
        train_loss=float(state["train_loss"]),
    )
