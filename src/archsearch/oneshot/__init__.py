"""One-shot searches: train one supernet holding every candidate op, then derive a cell.

* ``DARTS`` (first or second order; ``auxiliary_skip=True`` for DARTS-, a remedy against
  the collapse onto skip connections, see ``remedy``) and ``GDAS``: the searches, on any
  ``archsearch.nn.supernet.Supernet``.
* ``selection``: perturbation-based selection (DARTS-PT), the second remedy: the cell is
  chosen by what removing an op costs the supernet, not by the magnitude of alpha.
* ``early_stop``: DARTS-ES, the third: stop once the Hessian of the validation loss with
  respect to alpha sharpens, and return the cell of an earlier epoch.
* ``DartsSearch`` and ``GdasSearch`` (``search``; ``strategy: darts`` / ``gdas``): the
  same searches as strategies of a study, which ``Study.optimize`` runs with the
  ``OneShotDriver`` (``driver``): recorded per epoch, resumable, the derived cell
  evaluated as a trial.

This package imports torch.
"""

from archsearch.oneshot.darts import DARTS, BilevelSearch
from archsearch.oneshot.driver import OneShotDriver
from archsearch.oneshot.gdas import GDAS
from archsearch.oneshot.remedy import auxiliary_skip_beta
from archsearch.oneshot.search import DartsSearch, GdasSearch, OneShotSearch

__all__ = ["DARTS", "GDAS", "BilevelSearch", "DartsSearch", "GdasSearch", "OneShotDriver",
           "OneShotSearch", "auxiliary_skip_beta"]
