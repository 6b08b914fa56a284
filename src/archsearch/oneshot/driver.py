"""How a one-shot search runs in a study (``Study.optimize`` with ``strategy: darts`` or
``gdas``):

    for each epoch the record does not hold yet, until the record decides the cell:
        train the supernet one epoch (weights on the training split, alphas on the other)
        the method's work after an epoch (DARTS-PT: the selection decisions due;
        DARTS-ES: the Hessian's eigenvalue)
        record the mixture weights, the derived genotype and the epoch's figures, and a
        checkpoint (storage.write_oneshot_epoch)
    the study evaluates the derived cell as an ordinary trial (the ask/tell driver)

The study's estimator scores the derived trial: ``training`` retrains it from scratch
(and ``archsearch export`` can retrain it again), ``nb201`` looks the cell up in the
table.  The supernet's own figures per epoch are in the one-shot record
(``storage.oneshot_epochs``).  After a kill the same call resumes from the last recorded
epoch, bit for bit on the CPU: each epoch's batch order, augmentation and Gumbel noise
come from a generator seeded by the study seed and the epoch number, and the checkpoint
holds the supernet and both optimisers.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from typing import TYPE_CHECKING, Any

import torch

from archsearch.errors import ConfigError, StorageError
from archsearch.loop import AskTellDriver, Budget, RunSettings, StopReason
from archsearch.nn.device import resolve_device
from archsearch.oneshot.darts import BilevelSearch
from archsearch.oneshot.data import epoch_batches, prepare_search_data
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch
from archsearch.study import derive_seed

if TYPE_CHECKING:
    from archsearch.oneshot.search import OneShotSearch
    from archsearch.study import Study

_EPOCH_STREAM = 11  # derive_seed stream of each epoch's generator, apart from the study's


def describe(space: SearchSpace, genotype: Genotype) -> str:
    """A genotype in the space's compact form, so an epoch's log line fits 80 columns (the
    full form, NAS-Bench-201's or DARTS's own string, is in ``show --json`` and the report)."""
    return space.format_compact(genotype)


def epoch_line(record: OneShotEpoch, epochs: int, text: str) -> str:
    """The log line of a recorded epoch."""
    m = record.metrics
    extra = "".join(f"  {k} {m[k]:.3g}" for k in ("tau", "skip_beta", "hessian_eigenvalue")
                    if k in m)
    hessian = f" (+{m['hessian_seconds']:.1f} s Hessian)" if "hessian_seconds" in m else ""
    return (f"epoch {record.epoch + 1:>3}/{epochs}  train loss {m['train_loss']:.3f} "
            f"acc {m['train_accuracy']:.3f}  val loss {m['val_loss']:.3f} "
            f"acc {m['val_accuracy']:.3f}{extra}  {m['seconds']:.1f} s{hessian}  {text}")


def load_checkpoint(search: BilevelSearch, state: dict[str, Any], study: str, epochs: int
                    ) -> None:
    """Load the last checkpoint into ``search``, or say why it does not fit.

    A checkpoint fits only the supernet and optimisers that wrote it.  ``archsearch run``
    refuses a changed config before this point, but a study built in Python with other
    space or one-shot settings, or an archsearch version whose supernet gained a buffer,
    reaches it, and torch's own message names tensors, not what to do.
    """
    try:
        search.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as error:
        raise StorageError(
            f"study {study!r}: the checkpoint after epoch {epochs} does not fit the supernet "
            f"this config builds with this archsearch version ({type(error).__name__}: "
            f"{textwrap.shorten(str(error), 300)}); resume with the config and version that "
            "started it, or start a new study"
        ) from error


class OneShotDriver:
    """Trains (or resumes) the supernet of ``search``, the study's strategy, epoch by epoch
    on ``study.dataset``, then lets the study evaluate the derived cell.

    ``settings.budget.seconds`` bounds the training of this run: no epoch begins that
    would end after it, judged by the previous epoch's duration (run again to go on), and
    the run stops ``TIMEOUT``.  The trial budget and the executor apply to the evaluation.
    """

    def __init__(self, search: OneShotSearch) -> None:
        self.search = search

    def run(self, study: Study, settings: RunSettings) -> StopReason:
        if study.strategy is not self.search:
            raise ConfigError("a OneShotDriver runs the search of its study's own strategy")
        study.require_estimator()  # before the training, not after it
        storage, name = study.storage, study.name
        records = storage.oneshot_epochs(name)
        if [r.epoch for r in records] != list(range(len(records))):
            raise StorageError(f"study {name!r} has gaps in its one-shot epochs; "
                               "the record is damaged")
        if self.search.result_epoch(records) is None:
            stopped = self._train(study, records, settings)
            if stopped is not None:
                return stopped
        chosen = self.search.result_epoch(records)
        if chosen != len(records) - 1:
            settings.log(self.search.stop_message(
                records, lambda genotype: describe(study.space, genotype)))
        self.search.attach(storage, name)  # ask now proposes the recorded cell
        budget = Budget(trials=settings.budget.trials,
                        count_repeats=settings.budget.count_repeats)
        return AskTellDriver().run(study, dataclasses.replace(settings, budget=budget))

    def _train(self, study: Study, records: list[OneShotEpoch], settings: RunSettings
               ) -> StopReason | None:
        """Train until the record decides the cell (None), or until the time budget."""
        search, log, seconds = self.search, settings.log, settings.budget.seconds
        if study.dataset is None:
            raise ConfigError("a one-shot search trains a supernet: give the study data")
        storage, name, total = study.storage, study.name, search.total_epochs
        began = time.monotonic()
        device = resolve_device(search.training.device)
        data = prepare_search_data(study.dataset, search.data, device)
        supernet = search.build_supernet(study.dataset.num_classes,
                                         data.input_shape[0]).to(device)
        method = search.make_search(supernet)
        if records:
            load_checkpoint(method, storage.load_oneshot_state(name, records[-1].epoch), name,
                            len(records))
            log(f"resuming the {search.label} search after epoch {len(records)}")
        log(f"{search.label} search: {total} epochs, "
            f"{data.x_fit.shape[0]:,} + {data.x_val.shape[0]:,} images of "
            f"{'x'.join(map(str, data.input_shape))}, on {device}")
        last = 0.0  # the last epoch's duration: an epoch that would overrun is not begun
        while search.result_epoch(records) is None:
            epoch = len(records)
            if seconds is not None and time.monotonic() - began + last > seconds:
                log(f"time budget reached after epoch {epoch}: run again to resume")
                return StopReason.TIMEOUT
            epoch_began = time.monotonic()
            generator = torch.Generator().manual_seed(derive_seed(study.seed, epoch,
                                                                  _EPOCH_STREAM))
            batches, steps = epoch_batches(data, search.training.batch_size, generator,
                                           augment_images=search.data.augment)
            metrics = method.train_epoch(epoch, batches, steps, generator)
            metrics.update(search.after_epoch(epoch, method, data, generator, log))
            record = OneShotEpoch(epoch, supernet.arch_weights(), metrics, supernet.derive())
            storage.write_oneshot_epoch(name, record, method.state_dict())
            records.append(record)
            log(epoch_line(record, total, describe(study.space, record.genotype)))
            last = time.monotonic() - epoch_began
        return None

