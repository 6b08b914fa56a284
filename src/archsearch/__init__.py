"""archsearch: neural architecture search for PyTorch.

The three parts of NAS live in ``archsearch.space`` (what can be built),
``archsearch.strategy`` and ``archsearch.oneshot`` (what to try next) and
``archsearch.estimation`` (how good a candidate is); ``archsearch.study`` keeps the record
of a search and ``archsearch.loop`` runs it.  Importing this package loads no data and
imports no torch.

>>> import archsearch
>>> space = archsearch.ChainSpace("vector", max_depth=2)
>>> study = archsearch.create_study(space, strategy="random", seed=0)
>>> study.optimize(lambda genotype: float(genotype["depth"]), trials=4).name
'BUDGET'
"""

from archsearch.api import create_study, prepare, run
from archsearch.errors import (
    ArchsearchError,
    ConfigError,
    InvalidGenotype,
    RepeatedFailure,
    StorageError,
    StudyLocked,
    TrialFailed,
)
from archsearch.estimation.base import Estimator, TrialContext
from archsearch.loop import Budget, StopReason
from archsearch.registry import register
from archsearch.space import (
    ChainSpace,
    DartsSpace,
    DecisionSpace,
    Genotype,
    MultiBranchSpace,
    NB201Space,
    SearchSpace,
    TrainableSpace,
    categorical,
    int_range,
    when,
)
from archsearch.strategy.base import Strategy
from archsearch.study import Study
from archsearch.trial import FrozenTrial, TrialState
from archsearch.version import __version__

__all__ = [
    "ArchsearchError",
    "Budget",
    "ChainSpace",
    "ConfigError",
    "DartsSpace",
    "DecisionSpace",
    "Estimator",
    "FrozenTrial",
    "Genotype",
    "InvalidGenotype",
    "MultiBranchSpace",
    "NB201Space",
    "RepeatedFailure",
    "SearchSpace",
    "StopReason",
    "StorageError",
    "Strategy",
    "Study",
    "StudyLocked",
    "TrainableSpace",
    "TrialContext",
    "TrialFailed",
    "TrialState",
    "__version__",
    "categorical",
    "create_study",
    "int_range",
    "prepare",
    "register",
    "run",
    "when",
]
