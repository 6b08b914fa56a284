"""Does a CUDA out-of-memory error in one trial free its memory, and does GPU memory stay
flat from trial to trial?

    python benchmarks/gpu_memory_check.py [--trials 12] [--oom-trial 3]

Random search on digits with the training estimator on `cuda`; on trial --oom-trial the
estimator first fills the GPU in 4 GiB blocks until CUDA raises out-of-memory.  Prints the
memory allocated by torch after each trial: the OOM trial must be recorded as failed,
the memory must come back, and the later trials must complete.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Mapping

import torch

from archsearch.data import load_dataset
from archsearch.estimation.base import TrialContext
from archsearch.estimation.training import TrainingEstimator
from archsearch.space import MultiBranchSpace
from archsearch.space.genotype import Genotype
from archsearch.strategy import RandomSearch
from archsearch.study import Budget, Study
from archsearch.trial import FrozenTrial


class FillsTheGpu(TrainingEstimator):
    """Trains normally, except on one trial, which first takes every byte it can."""

    oom_trial = -1

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        if context.number == self.oom_trial:
            blocks = []
            while True:  # ends with torch.cuda.OutOfMemoryError
                blocks.append(torch.empty(4 << 30, dtype=torch.uint8, device="cuda"))
        return super().evaluate(genotype, context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--oom-trial", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return
    space = MultiBranchSpace("image", max_depth=4, widths=(16, 32, 64))
    estimator = FillsTheGpu(load_dataset("digits"), space, epochs=5, batch_size=64, device="cuda")
    estimator.oom_trial = args.oom_trial
    study = Study(space, RandomSearch(space, seed=0), estimator, seed=0)
    print(f"{datetime.date.today()}, {torch.cuda.get_device_name(0)}, torch {torch.__version__}")

    def report(_: Study, trial: FrozenTrial) -> None:
        mib = torch.cuda.memory_allocated() / 2**20
        status = trial.state.value + (f" ({trial.error[:60]})" if trial.error else "")
        print(f"trial {trial.number:>2}  allocated {mib:8.1f} MiB  reserved "
              f"{torch.cuda.memory_reserved() / 2**20:8.1f} MiB  {status}", flush=True)

    study.optimize(budget=Budget(trials=args.trials), callbacks=[report])
    failed = [t.number for t in study.trials if t.error]
    print(f"failed trials: {failed}; completed: {len(study.trials) - len(failed)}")


if __name__ == "__main__":
    main()
