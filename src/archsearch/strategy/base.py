"""The search-strategy interface: ask for the next architecture, be told results.

A strategy does no I/O and starts no threads.  Its state is rebuilt from the record:
the study replays ``tell`` for every finished trial (in the order they finished) when it
resumes, and gives ``ask`` the full list of trials, running ones included, so a strategy
never proposes an architecture that is pending or done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from archsearch.loop import AskTellDriver, Driver
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial


class Strategy(ABC):
    """What to try next.  ``__init__`` only stores its arguments (scikit-learn style), so
    ``get_params()`` is the strategy's full configuration and is recorded with the study."""

    name: ClassVar[str] = ""
    #: Whether the strategy handles a multi-objective study itself (it compares trials by
    #: their ``scores`` vectors and feasibility, or reads the metrics it needs).  A study
    #: with several objectives wraps a strategy that does not in ``ParEGO``
    #: (``archsearch.strategy.scalarized``), which hands it one scalar ``score`` per trial.
    #: A strategy whose settings decide it may override this with a property.
    multi_objective: ClassVar[bool] = False
    #: Whether the strategy cannot ask without the study's data (it scores networks on
    #: the ``dataset`` its constructor is given, and refuses to ask without one).  A
    #: strategy that merely accepts a ``dataset``, for an option, leaves this False.
    needs_data: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    @abstractmethod
    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        """The next architecture, or None when the strategy has nothing left to propose.

        ``rng`` is derived from the study seed and the trial number, so the same record
        gives the same proposal in any process.
        """

    def tell(self, trial: FrozenTrial) -> None:  # noqa: B027 - most strategies keep no state
        """A trial finished (complete or failed)."""

    def driver(self) -> Driver:
        """How a search with this strategy proceeds: the ask/tell loop, unless the strategy
        needs another (one-shot searches train a supernet first)."""
        return AskTellDriver()

    @property
    def runs_own_search(self) -> bool:
        """Whether ``driver`` is the strategy's own (a one-shot search) rather than the
        ask/tell loop: schedulers, ParEGO and the trial count of the progress bar ask."""
        return type(self).driver is not Strategy.driver

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "space"}


def seen_keys(trials: Sequence[FrozenTrial]) -> set[str]:
    """Keys that are evaluated or pending: never worth proposing again."""
    return {t.key for t in trials}
