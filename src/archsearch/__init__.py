"""archsearch: neural architecture search for PyTorch.

The three parts of NAS live in ``archsearch.space`` (what can be built),
``archsearch.strategy`` (what to try next) and ``archsearch.estimation`` (how good a
candidate is); ``archsearch.study`` runs the loop and ``archsearch.storage`` keeps its
record.  Importing this package loads no data and imports no torch.
"""

__version__ = "0.1.0"
