"""Multi-fidelity search: spend few epochs on most architectures and many on the best.

Fidelity here is the number of epochs of the training estimator's schedule: an
architecture judged after a few epochs costs a fraction of a full run (the bracket drivers
can spend shares of the training data instead: ``resource="data"``).  Two ways use it:

- a ``Pruner`` (``pruners``) decides inside the ask/tell loop: the trial trains up to each
  of the pruner's ``steps`` and stops there if its learning curve lags behind the record's
  (median rule, asynchronous successive halving);
- Hyperband and successive-halving brackets (``brackets``) fix in advance how many
  architectures train for how many epochs; the drivers that run them synchronously, with
  ``top_k`` for promotion, live in ``fidelity/drivers.py``.

Nothing here imports torch or touches the disk.
"""

from __future__ import annotations

from archsearch.fidelity.brackets import (
    Bracket,
    Rung,
    bracket_for_iteration,
    hyperband_brackets,
    successive_halving_bracket,
    top_k,
)
from archsearch.fidelity.pruners import (
    MedianPruner,
    PercentilePruner,
    Pruner,
    SuccessiveHalvingPruner,
    curve_value,
    rank_key,
)

__all__ = [
    "Bracket",
    "MedianPruner",
    "PercentilePruner",
    "Pruner",
    "Rung",
    "SuccessiveHalvingPruner",
    "bracket_for_iteration",
    "curve_value",
    "hyperband_brackets",
    "rank_key",
    "successive_halving_bracket",
    "top_k",
]
