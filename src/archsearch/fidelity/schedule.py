"""Which driver runs a study that has a scheduler, and the checks that come first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from archsearch.errors import ConfigError
from archsearch.fidelity.pruners import Pruner
from archsearch.loop import AskTellDriver, Driver

if TYPE_CHECKING:
    from archsearch.study import Study


def driver_for(study: Study) -> Driver:
    """The ask/tell driver with the study's pruner, or the scheduler itself when it is a
    driver (successive halving, Hyperband); a ``ConfigError`` for a study it cannot run."""
    scheduler: Any = study.scheduler
    name = type(scheduler).__name__
    if study.strategy.runs_own_search:
        raise ConfigError(f"the {study.strategy.name} strategy runs its own search (it trains a "
                          f"supernet); a scheduler ({name}) applies to strategies that "
                          "propose one architecture at a time")
    if study.multi_objective:
        raise ConfigError(f"the {name} scheduler compares trials on one objective's learning "
                          "curve; a multi-objective study has no single order of trials "
                          "(drop the scheduler, or search one objective)")
    estimator = study.require_estimator()
    if getattr(scheduler, "resource", "epochs") == "data":
        if not estimator.data_fidelity:
            raise ConfigError(f"the {name} scheduler with resource 'data' trains on a share "
                              f"of the data, and the {type(estimator).__name__} cannot (use "
                              "the training estimator)")
    elif estimator.max_epochs is None:
        raise ConfigError(f"the {name} scheduler spends epochs, and the "
                          f"{type(estimator).__name__} does not train in epochs (use the "
                          "training estimator)")
    if isinstance(scheduler, Pruner):
        return AskTellDriver(pruner=scheduler)
    if callable(getattr(scheduler, "run", None)):
        return cast(Driver, scheduler)
    raise ConfigError(f"scheduler must be a Pruner or a driver (a run(study, settings) "
                      f"method), got {name}")
