"""One-shot search on the NAS-Bench-201 space with CIFAR-10; every derived cell is looked
up in the NAS-Bench-201 table (AnalogNAS-Bench, baseline test accuracy, percent).

    python benchmarks/oneshot_nb201.py --preset cpu-reduced --method darts,darts-minus,gdas \\
        --seeds 0,1,2 --threads 1 --out bench/oneshot.md
    python benchmarks/oneshot_nb201.py --device cuda --preset gpu-8min --method gdas --seeds 0

Methods: ``darts``, ``darts2`` (second order), ``darts-minus`` (DARTS-, auxiliary skip),
``darts-minus-bn`` (DARTS- with each auxiliary skip normalised by an affine-free BN),
``gdas``, ``darts-pt`` (DARTS with perturbation-based selection, DARTS-PT),
``darts-pt-fixed`` (the same with alpha never trained, DARTS-PT's "fix alpha" variant) and
``darts-es`` (DARTS stopped early once the Hessian's dominant eigenvalue rises, DARTS-ES;
50 epochs on CPU, since its rule cannot fire before 17) and ``darts-minus-es`` (DARTS-
with that early stop).
``--set track_eigenvalue=true`` on ``darts`` or ``darts-minus`` records the eigenvalue
without stopping and adds a row for the cell DARTS-ES's rule picks from that record
(method ``NAME+es-rule``), as the DARTS-ES authors evaluated it; the search up to that
epoch is the same computation as ``darts-es``'s, so both rows come from one run.  Each
argmax-derived cell gets a second row (``NAME/no-none``) reading the same epoch's recorded
weights without ``none``: the cell ``--set include_none=false`` would return from the same
search (the same cell where no edge chose ``none``).

A method is a one-shot strategy of the registry (``darts``, ``gdas``) or one of DARTS's
variants above, which are settings of ``darts`` (``VARIANTS``).  Each (method, seed) runs
the library's own loop: ``archsearch.create_study`` with that strategy and the table as
the estimator, then ``study.optimize``; it prints one line per epoch and ends with one
Markdown row per run (method, seed, derived cell, table accuracy, search seconds, epochs)
and a mean +- std per method.

Presets (``--set key=value`` overrides any setting, e.g. ``--set epochs=5``):

* ``full``: the NAS-Bench-201 DARTS protocol: 25k / 25k split of the CIFAR-10 training
  set, 32x32, C=16, N=5, 50 epochs (also for GDAS, which NAS-Bench-201 ran for 250),
  batch 64, crop + flip, no warm-up.  About 2 GPU-hours for DARTS on an H200 (a
  hand-written first-order step measured 150 s per epoch at batch 64, bf16).
* ``gpu-8min``: one (method, seed) in under 8 minutes of one GPU: 10k / 10k images,
  32x32, C=16, N=5, batch 256 with the weight lr scaled to 0.1 and the alpha lr to 6e-4
  (PC-DARTS's batch-256 settings), bf16; DARTS and DARTS- 40 epochs (10 weights only),
  GDAS 120 (20 weights only), second-order DARTS 15 (5) (``METHOD_PRESETS``, sized from
  the epoch times measured on an H200 with 15 epochs).  A guard begins no epoch that
  would end after 6.5 minutes of search (judged by the previous epoch) and reports the
  cell of the last finished epoch (the ``epochs`` column says so).
  ``benchmarks/gpu_oneshot.sh`` runs several (method, seed) searches at once on one GPU,
  one process each; on the H200 each then ran 2.4 (three at once) to 3.7 (five) times
  slower than alone, so packing gains little (benchmarks/RESULTS.md).
* ``cpu-reduced``: what 2 shared CPU cores allow: 10k of the training images (5k / 5k),
  downsampled to 16x16, C=8, N=1, 15 epochs of which the first 5 train only the weights,
  batch 64, crop + flip; run with ``--threads 1`` (with two threads on two busy cores
  the synchronisation made steps several times slower).  About 5-10 minutes per DARTS
  search and 2-4 per GDAS search there.

Data: ``--data`` (default ``$ARCHSEARCH_CIFAR10`` or ``../shared/datasets/cifar10-jpeg.tar.xz``),
an image-folder archive decoded once and cached by ``archsearch.data.load_dataset``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import archsearch
from archsearch import registry
from archsearch.data import load_dataset
from archsearch.errors import ArchsearchError
from archsearch.nn.supernet import nb201_cell_from_weights
from archsearch.oneshot.search import DartsSearch, OneShotSearch
from archsearch.space.nb201 import NB201Space
from archsearch.study import StopReason
from archsearch.tabular.nb201 import NB201Estimator

#: Search settings per preset (the strategies' settings; ``max_minutes`` is a guard on
#: the search's wall time).  Images: ``max_images`` of the 50k training images (stratified),
#: split 50/50 into weights / alphas; ``image_size`` in pixels; ``channels`` C; ``cells``
#: cells per stage (N); ``batch_size`` images per step for each of the two splits.
PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(max_images=None, image_size=None, channels=16, cells=5, epochs=50,
                 batch_size=64, augment=True, max_minutes=None),
    "gpu-8min": dict(max_images=20_000, image_size=None, channels=16, cells=5, epochs=15,
                     warmup_epochs=5, batch_size=256, lr=0.1, arch_lr=6e-4, augment=True,
                     bf16=True, max_minutes=6.5),
    "cpu-reduced": dict(max_images=10_000, image_size=16, channels=8, cells=1, epochs=15,
                        warmup_epochs=5, batch_size=64, augment=True, max_minutes=None),
}

#: Per-method changes to a preset (before ``--set``).  On the H200 a gpu-8min epoch took
#: about 9 s for DARTS- and 3 s for GDAS (benchmarks/RESULTS.md), so 6.5 minutes hold
#: about 40 and 120 epochs; GDAS, which samples one op per edge, needs the longer schedule.
#: DARTS-PT adds (edges - 1) x ``selection_interval`` fine-tuning epochs after ``epochs``
#: (5 x 5 = 25 on NAS-Bench-201 at the published interval of 5); its gpu-8min sizes are
#: estimated from the DARTS- epoch time (a fixed-alpha epoch skips the alpha step), not
#: yet run.  ``full`` gives it DARTS-PT's published 100 supernet epochs.  DARTS-ES's rule
#: cannot fire before 17 epochs, so the early-stopped methods get the 50 epochs of the
#: RobustDARTS code on CPU and 30 (5 weights only) on the GPU, the N=5 setting measured on
#: CPU (its Hessian adds an estimated third to a gpu-8min epoch; not yet run there).
METHOD_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "darts-pt": dict(epochs=100),
        "darts-pt-fixed": dict(epochs=100),
    },
    "cpu-reduced": {
        "darts-es": dict(epochs=50),
        "darts-minus-es": dict(epochs=50),
    },
    "gpu-8min": {
        "darts": dict(epochs=40, warmup_epochs=10),
        "darts2": dict(epochs=15, warmup_epochs=5),  # the unrolled step costs ~3x
        "darts-minus": dict(epochs=40, warmup_epochs=10),
        "darts-minus-bn": dict(epochs=40, warmup_epochs=10),
        "gdas": dict(epochs=120, warmup_epochs=20),
        "darts-pt": dict(epochs=20, warmup_epochs=5, selection_interval=4),
        "darts-pt-fixed": dict(epochs=30, selection_interval=5),
        "darts-es": dict(epochs=30, warmup_epochs=5),
        "darts-minus-es": dict(epochs=30, warmup_epochs=5),
    },
}

#: DARTS's variants benchmarked here, as settings of the ``darts`` strategy.
VARIANTS: dict[str, dict[str, Any]] = {
    "darts2": dict(order=2),
    "darts-minus": dict(auxiliary_skip=True),
    "darts-minus-bn": dict(auxiliary_skip=True, auxiliary_op="skip_bn"),
    "darts-pt": dict(selection="perturbation"),
    "darts-pt-fixed": dict(selection="perturbation", fix_alpha=True),
    "darts-es": dict(early_stop=True),
    "darts-minus-es": dict(auxiliary_skip=True, early_stop=True),
}


def oneshot_strategies() -> list[str]:
    """The registry's one-shot strategies (``darts``, ``gdas``, and any registered since)."""
    names = []
    for name in registry.available("strategy"):
        try:
            target = registry.resolve("strategy", name)
        except ArchsearchError:  # an optional package missing
            continue
        if isinstance(target, type) and issubclass(target, OneShotSearch):
            names.append(name)
    return names


def methods() -> list[str]:
    return [*oneshot_strategies(), *VARIANTS]


def strategy_of(method: str) -> tuple[str, dict[str, Any]]:
    """The registered strategy and the settings a method stands for."""
    return ("darts", VARIANTS[method]) if method in VARIANTS else (method, {})

HEADER = ("| method | seed | derived cell | NB201 test % | search s | epochs |\n"
          "|---|---|---|---|---|---|")


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _row(method: str, seed: int, space: NB201Space, table: NB201Estimator, genotype: Any,
         seconds: float, epochs: str) -> dict[str, Any]:
    return {"method": method, "seed": seed, "cell": space.to_string(genotype),
            "accuracy": table.evaluate(genotype)["test_accuracy"], "seconds": seconds,
            "epochs": epochs}


def run_one(method: str, seed: int, settings: dict[str, Any], dataset: Any, device: str,
            table: NB201Estimator) -> list[dict[str, Any]]:
    settings = dict(settings)
    max_minutes = settings.pop("max_minutes", None)
    space = NB201Space(settings["channels"], settings["cells"])
    name, variant = strategy_of(method)
    study = archsearch.create_study(space, name, table, name=f"{method}-{seed}", seed=seed,
                                    data=dataset,
                                    strategy_params={"device": device, **variant, **settings})
    strategy = study.strategy
    assert isinstance(strategy, OneShotSearch)
    print(f"--- {method}, seed {seed}: {strategy.total_epochs} epochs, "
          f"{strategy.training.warmup_epochs} of warm-up", flush=True)
    start = time.perf_counter()
    reason = study.optimize(timeout=None if max_minutes is None else 60 * max_minutes,
                            log=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - start
    records = study.storage.oneshot_epochs(study.name)
    done = f"{len(records)}/{strategy.total_epochs}"
    if reason is StopReason.TIMEOUT:
        done += " (time guard)"
    if not records:
        return [{"method": method, "seed": seed, "cell": "-", "accuracy": float("nan"),
                 "seconds": seconds, "epochs": done}]
    # The derived cell (the study's trial when finished): the last epoch's, or the one an
    # early stop went back to; the last finished epoch's when the time guard stopped it.
    chosen = strategy.result_epoch(records)
    if chosen is None:
        chosen = len(records) - 1
    elif chosen != len(records) - 1:
        done += f" (early stop; cell of epoch {chosen + 1})"
    rows = [_row(method, seed, space, table, records[chosen].genotype, seconds, done)]
    darts = strategy if isinstance(strategy, DartsSearch) else None
    if strategy.shape.include_none and (darts is None or darts.selection is None):
        # The same epoch's weights read without ``none``: the cell include_none=false
        # returns from this very search (with argmax selection the search does not depend
        # on the rule that reads the cell off it).  A row for every run, so that the two
        # rules' means are over the same seeds.
        cell = nb201_cell_from_weights(records[chosen].arch_weights["cell"], include_none=False)
        rows.append(_row(f"{method}/no-none", seed, space, table, cell, seconds, done))
    if darts is not None and darts.eigenvalue is not None and not darts.eigenvalue.stop:
        stop = darts.rule_epoch(records)
        at = len(records) - 1 if stop is None else stop
        # The seconds of the epochs up to the stop, as an early-stopped run spends them.
        spent = sum(r.metrics["seconds"] + r.metrics["hessian_seconds"]
                    for r in records[:darts.eigenvalue.rule.epochs_to_decide(at)])
        note = "no stop" if stop is None else f"stop: cell of epoch {at + 1}"
        rows.append(_row(f"{method}+es-rule", seed, space, table, records[at].genotype, spent,
                         f"{done}, {note}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-reduced")
    parser.add_argument("--method", default="darts,darts-minus,gdas",
                        help=f"comma-separated, from {', '.join(methods())}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--data", default=os.environ.get(
        "ARCHSEARCH_CIFAR10", "../shared/datasets/cifar10-jpeg.tar.xz"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset setting")
    parser.add_argument("--out", type=Path, help="append the Markdown rows to this file")
    args = parser.parse_args(argv)

    chosen = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in methods()]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {methods()}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    settings = {**PRESETS[args.preset], **overrides}
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available")
        torch.backends.cudnn.benchmark = True

    started = time.perf_counter()
    dataset = load_dataset(args.data)
    table = NB201Estimator()
    print(f"preset {args.preset} on {args.device} ({torch.get_num_threads()} CPU threads): "
          f"{settings}", flush=True)
    rows = [row for m in chosen for s in seeds
            for row in run_one(m, s, {**settings, **METHOD_PRESETS.get(args.preset, {}).get(m, {}),
                                      **overrides}, dataset, args.device, table)]

    # A '|' inside a table cell must be escaped, code span or not.
    lines = [f"| {r['method']} | {r['seed']} | `{r['cell'].replace('|', chr(92) + '|')}` | "
             f"{r['accuracy']:.2f} | "
             f"{r['seconds']:.0f} | {r['epochs']} |" for r in rows]
    print(f"\npreset {args.preset}, device {args.device}, total {time.perf_counter() - started:.0f} s")
    print(HEADER)
    print("\n".join(lines))
    for method in dict.fromkeys(r["method"] for r in rows):
        values = [r["accuracy"] for r in rows if r["method"] == method]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{method}: {statistics.mean(values):.2f} +- {spread:.2f} over {len(values)} seed(s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(f"\n<!-- preset {args.preset}, device {args.device}, {settings} -->\n")
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
