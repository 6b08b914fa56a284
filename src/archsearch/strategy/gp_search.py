"""Bayesian optimisation with a Gaussian process and expected improvement, in the BANANAS
loop: the same initial design, candidates, batches and encoding as ``bananas``
(``archsearch.strategy._surrogate``), with scikit-learn's ``GaussianProcessRegressor`` in
place of the neural ensemble and expected improvement (Jones, Schonlau & Welch 1998) in
place of Thompson sampling: the classical Bayesian-optimisation surrogate, kept
otherwise identical to ``bananas`` so that a benchmark isolates the surrogate and the
acquisition.

The model: a constant times a Matern-5/2 (or RBF) kernel with one length scale, plus a
white-noise kernel, on the encoding (the truncated path encoding on NAS-Bench-201, the
space's ``encode`` elsewhere), ``normalize_y=True``; its hyperparameters are fitted by
maximum marginal likelihood (L-BFGS-B from the kernel's initial values, plus
``n_restarts`` random starts drawn with the iteration's seed; 0 by default, as in
scikit-learn: a fit then costs a third of one with 2 restarts, and ParEGO refits at every
ask of a multi-objective study).  Expected improvement over the best training score, no
exploration margin (xi = 0).  Not a published setting: the choices are scikit-learn's
usual ones for a first GP; the named departures of the shared loop are in ``bananas``'s
docstring.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, Matern, WhiteKernel

from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError
from archsearch.space.base import SearchSpace
from archsearch.strategy._surrogate import SurrogateSearch

#: ``kernel`` settings.
KERNELS = ("matern", "rbf")


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI of maximising: E[max(f - best, 0)] for f ~ N(mean, std**2) (0 where std is 0
    and mean does not beat ``best``)."""
    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)


class GaussianProcessSearch(SurrogateSearch):
    """GP-BO (module docstring): the BANANAS loop with a Gaussian process and expected
    improvement.  ``kernel`` is ``"matern"`` (5/2) or ``"rbf"``; ``n_restarts`` the
    optimiser restarts of the kernel fit.  The other settings are ``bananas``'s, the
    zero-cost warm start of the initial design (``warm_start``, ``warm_pool``) included.

    >>> from archsearch.space import NB201Space
    >>> GaussianProcessSearch(NB201Space(), seed=0).kernel
    'matern'
    """

    name = "gp-bo"

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
        kernel: str = "matern",
        n_restarts: int = 0,
    ) -> None:
        super().__init__(space, seed, initial_samples=initial_samples,
                         queries_per_iteration=queries_per_iteration,
                         num_candidates=num_candidates, patience_factor=patience_factor,
                         encoding=encoding, dataset=dataset, warm_start=warm_start,
                         warm_pool=warm_pool)
        if kernel not in KERNELS:
            raise ConfigError(f"{self.name}: unknown kernel {kernel!r}; choose from "
                              f"{', '.join(KERNELS)}")
        if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 0:
            raise ConfigError(f"{self.name}: n_restarts must be an integer >= 0, "
                              f"got {n_restarts!r}")
        self.kernel = kernel
        self.n_restarts = n_restarts

    def model(self, seed: int) -> GaussianProcessRegressor:
        """An unfitted GP with this strategy's kernel, its restarts drawn from ``seed``."""
        shape: Kernel = (Matern(length_scale=1.0, nu=2.5) if self.kernel == "matern"
                         else RBF(length_scale=1.0))
        kernel = ConstantKernel(1.0) * shape + WhiteKernel(noise_level=0.1)
        return GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                        n_restarts_optimizer=self.n_restarts,
                                        random_state=seed % 2**32)

    def _rank(self, x_train: np.ndarray, y_train: np.ndarray, x_candidates: np.ndarray,
              seed: int) -> np.ndarray:
        model = self.model(seed)
        with warnings.catch_warnings():
            # A length scale or noise level at its bound is a fact about the data, not
            # an error: the fit is still the likeliest within the bounds.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_train, y_train)
        mean, std = model.predict(x_candidates, return_std=True)
        ei = expected_improvement(np.asarray(mean), np.asarray(std), float(np.max(y_train)))
        return np.argsort(-ei, kind="stable")
