"""One-shot searches: train one supernet holding every candidate op, then derive a cell.

* ``DARTS`` (first or second order; ``auxiliary_skip=True`` for DARTS-, a remedy against
  the collapse onto skip connections, see ``remedy``) and ``GDAS``: the searches, on any
  ``archsearch.nn.supernet.Supernet``.
* ``selection``: perturbation-based selection (DARTS-PT), the second remedy: the cell is
  chosen by what removing an op costs the supernet, not by the magnitude of alpha.
* ``early_stop``: DARTS-ES, the third: stop once the Hessian of the validation loss with
  respect to alpha sharpens, and return the cell of an earlier epoch.
* ``OneShotStrategy`` and ``run_oneshot``: the same searches driven by a study
  (``strategy: darts`` / ``gdas`` in a config), recorded per epoch and resumable.

This package imports torch.
"""

from archsearch.oneshot.darts import DARTS, BilevelSearch
from archsearch.oneshot.gdas import GDAS
from archsearch.oneshot.remedy import auxiliary_skip_beta
from archsearch.oneshot.runner import OneShotStrategy, run_oneshot

__all__ = ["DARTS", "GDAS", "BilevelSearch", "OneShotStrategy", "auxiliary_skip_beta",
           "run_oneshot"]
