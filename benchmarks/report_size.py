"""The size of the report of a 10,000-trial study (issue 23: under 10 MB).

The study is synthetic but goes through the ordinary loop and record: random search on the
NAS-Bench-201 space, whose estimator looks up each cell's real FLOPs and parameters
(``archsearch.tabular.nb201_cost``) and makes up an accuracy and a 12-epoch learning curve
from its ops; about 2 % of the trials fail, and repeats are recorded as repeats (they
count towards the 10,000, so the report holds exactly that many trials).  Every part of
the page grows with it: best-so-far plots, cost scatter, learning curves, the table, and
some 7,000 distinct architectures to draw.

    python benchmarks/report_size.py [--trials 10000] [--out runs/report-10k.html] [--opens 3]

About 15 s for the study and 2 s for the report on one CPU core.  Then, where headless
Chromium and selenium are installed (tests/browser.py), the page is opened ``--opens``
times, each in a fresh browser (cold: plotly.js compiled anew) and once more reloaded in
it (warm); the open time is the page's own clock from navigation to every plot drawn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import archsearch
from archsearch import Budget, NB201Space
from archsearch.errors import TrialFailed
from archsearch.estimation.base import Estimator, Evaluation, TrialContext
from archsearch.report import write_report
from archsearch.space.genotype import Genotype
from archsearch.tabular.nb201_cost import load_nb201_cost

#: How much each op adds to the made-up accuracy (convolutions learn, "none" cuts).
OP_GAIN = {"none": -0.04, "skip_connect": 0.0, "avg_pool_3x3": 0.01,
           "nor_conv_1x1": 0.05, "nor_conv_3x3": 0.08}
EPOCHS = 12


class SyntheticNB201(Estimator):
    """Real cost, made-up accuracy: deterministic per cell, noisy per trial seed."""

    def __init__(self) -> None:
        self.space = NB201Space()
        self.flops, self.params = load_nb201_cost()

    def evaluate(self, genotype: Genotype, context: TrialContext) -> Evaluation:
        index = self.space.index(genotype)
        if zlib.crc32(genotype.to_json().encode()) % 50 == 0:  # about 2 % of the cells
            raise TrialFailed("loss is NaN at epoch 3 (synthetic failure)")
        noise = ((context.seed * 2654435761) % 1000) / 1000 * 0.02
        final = 0.5 + sum(OP_GAIN[str(op)] for op in genotype.values()) + noise
        curve = tuple({"epoch": float(e), "val_accuracy": final * (1 - 0.7 ** e)}
                      for e in range(1, EPOCHS + 1))
        return Evaluation(metrics={
            "val_accuracy": curve[-1]["val_accuracy"], "test_accuracy": final - 0.01,
            "flops": float(self.flops[index]), "params": float(self.params[index]),
            "latency_seconds": 1e-9 * float(self.flops[index]) + 2e-4,
            "train_seconds": 30.0 + 1e-7 * float(self.flops[index])}, curve=curve)


def make_study(db: Path, trials: int) -> float:
    """Run the synthetic study into ``db``; return the seconds it took."""
    start = time.perf_counter()
    study = archsearch.create_study(NB201Space(), "random", SyntheticNB201(), storage=db,
                                    name="synthetic-10k", seed=0, stop_after_failures=0)
    with study:
        study.optimize(budget=Budget(trials=trials, count_repeats=True))
    return time.perf_counter() - start


def open_times(page: Path, opens: int) -> tuple[list[float], list[float]] | None:
    """Seconds to open ``page`` cold (a fresh browser each time) and warm (reloaded)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the tests' browser harness
    try:
        from browser import chromium, console_errors, open_page
    except ImportError:
        return None
    cold, warm = [], []
    for _ in range(opens):
        with chromium() as driver:
            cold.append(open_page(driver, page))
            warm.append(open_page(driver, page))
            errors = console_errors(driver)
            if errors:
                raise SystemExit(f"console errors: {errors}")
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/report-10k.html"))
    parser.add_argument("--db", type=Path, help="keep the study here (default: a temporary file)")
    parser.add_argument("--opens", type=int, default=3, help="browser opens to time (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or Path(folder) / "synthetic.db"
        if db.exists():
            print(f"using the study already in {db}")
        else:
            print(f"study: {args.trials} trials in {make_study(db, args.trials):.1f} s")
        start = time.perf_counter()
        summary = write_report(db, args.out)
        seconds = time.perf_counter() - start
    print(f"report: {summary.out}, {summary.bytes:,} bytes ({summary.bytes / 2**20:.2f} MiB), "
          f"{summary.trials:,} trials, written in {seconds:.1f} s")
    if args.opens:
        try:
            times = open_times(summary.out.resolve(), args.opens)
        except BaseException as error:  # pytest's skip, when no Chromium is at hand
            print(f"not opened in a browser: {error}")
            return
        if times is None:
            print("not opened in a browser: selenium is not installed")
            return
        for label, values in zip(("cold", "warm"), times, strict=True):
            print(f"open ({label}, {len(values)} opens): median {statistics.median(values):.2f} s,"
                  f" each {', '.join(f'{v:.2f}' for v in values)} s")


if __name__ == "__main__":
    main()
