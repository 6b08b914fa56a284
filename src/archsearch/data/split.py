"""The fixed train/test split used when a source has no test set of its own."""

from __future__ import annotations

import numpy as np

#: Share of each class held out for testing, and the seed: fixed, so the test set never
#: depends on a study's seed.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def stratified_split(
    y: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices holding out ``test_fraction`` of every class.

    Each class gives ``round(test_fraction * count)`` examples (half to even), at least one
    if it has two or more, and keeps at least one for training; a class with a single
    example stays in training.  The training estimator and the one-shot searches carve
    their validation split with it too.
    """
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        # Python's round (half to even): the rounding every archsearch split has used.
        n_test = min(max(1, round(test_fraction * members.size)), members.size - 1)
        if n_test > 0:
            held.append(rng.permutation(members)[:n_test])
    test = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    keep = np.ones(y.shape[0], dtype=bool)
    keep[test] = False
    return np.flatnonzero(keep), test


def nested_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``fraction`` of every class (``round``, at least one), nested: the
    rows kept for a smaller fraction are among those kept for a larger one, for one
    ``seed``, because every fraction takes a prefix of the same per-class order.  A
    data-fraction fidelity relies on it: a trial promoted to more data sees what it saw
    before, plus more."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        kept.append(members[:max(1, round(fraction * members.size))])
    return np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)
