"""The in-memory dataset every estimator trains on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one classification task, held whole in memory.

    ``x_*`` are NCHW images or (N, F) vectors, either ``uint8`` (raw pixels, scaled to
    [0, 1] by the estimator on the device) or ``float32``.  ``y_*`` are ``int64`` class
    indices into ``classes``.  The validation split is carved from the train arrays by
    the estimator, from the study's seed, so it never depends on file order.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def modality(self) -> str:
        return "image" if self.x_train.ndim == 4 else "vector"
