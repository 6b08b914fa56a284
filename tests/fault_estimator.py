"""An estimator that fails on purpose, for the executor tests (importable by workers)."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from archsearch.estimation.base import Estimator, TrialContext
from archsearch.space.genotype import Genotype


class FaultyEstimator(Estimator):
    """Scores ``depth`` (a real function of the genotype), and fails as told on chosen
    trial numbers: ``raise``, ``nan``, ``sleep`` (past any timeout), ``kill`` (SIGKILL
    of its own process on every attempt) or ``kill-once`` (only the first time: a marker
    file in ``marker_dir`` remembers it across processes and retries)."""

    def __init__(self, faults: Mapping[int, str], seconds: float = 0.0,
                 marker_dir: str | None = None) -> None:
        self.faults = dict(faults)
        self.seconds = seconds
        self.marker_dir = marker_dir

    def _first_time(self, number: int) -> bool:
        assert self.marker_dir is not None, "kill-once needs a marker_dir"
        marker = Path(self.marker_dir) / f"killed-{number}"
        if marker.exists():
            return False
        marker.touch()
        return True

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Mapping[str, float]:
        fault = self.faults.get(context.number)
        if fault == "raise":
            raise RuntimeError("simulated failure")
        if fault == "nan":
            return {"val_accuracy": math.nan}
        if fault == "sleep":
            time.sleep(3600)
        if fault == "kill" or (fault == "kill-once" and self._first_time(context.number)):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.seconds)
        return {"val_accuracy": float(genotype["depth"]) + context.number / 1000,
                "pid": float(os.getpid())}
