"""How well the wall-clock search's own training ranks cells, read from the learning
curves its studies recorded: no training of its own.

    python3 benchmarks/search_curves.py build/fidelity-search --methods random

``fidelity_search.py`` keeps every search as a SQLite study (``METHOD-seedS.db``) whose
trials carry their validation accuracy after each epoch. Over the trials of ``--methods``
(``random``: every cell trained the full schedule; only finished searches, those with
their ``.json``) this prints, for each epoch k, the Spearman correlation of the accuracy
after k epochs with the accuracy after the full schedule (what a scheduler's rung at k
needs: to keep the cells that will be best at the end) and with the table's accuracy (what
the search is judged by), with a bootstrap standard error over the cells. A cell drawn by
several seeds counts once per trial: each is its own training run. ``--save DIR`` writes
the curves as one ``chunk-0000.json`` in the format of ``training_ranking.py``, so that
``fidelity_replay.py --curves DIR`` replays the schedulers on them.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rank_plot import rank_stats  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="fidelity_search.py's --out")
    parser.add_argument("--methods", default="random",
                        help="studies to read, comma-separated (random)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None,
                        help="write the curves here for fidelity_replay.py --curves")
    return parser.parse_args(argv)


def load_curves(folder: Path, methods: list[str]
                ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Validation accuracy per epoch (trials x epochs) of every trial that trained the
    longest schedule found, each one's table accuracy and its cell's index."""
    from archsearch.space.nb201 import NB201Space
    from archsearch.storage import SQLiteStorage
    from archsearch.tabular.nb201 import NB201Estimator

    space, table = NB201Space(), NB201Estimator()
    curves: list[list[float]] = []
    truth: list[float] = []
    cells: list[int] = []
    for method in methods:
        for path in sorted(glob.glob(str(folder / f"{method}-seed*.db"))):
            if not Path(path).with_suffix(".json").exists():
                continue  # a search still running, or killed: not finished
            storage = SQLiteStorage(path)
            try:
                for name in storage.study_names():
                    for trial in storage.trials(name):
                        if trial.curve:
                            cells.append(space.index(trial.genotype))
                            curves.append([float(e["val_accuracy"]) for e in trial.curve])
                            truth.append(float(table.lookup_index(cells[-1])["val_accuracy"]))
            finally:
                storage.close()
    if not curves:
        raise SystemExit(f"search_curves: no trials of {methods} under {folder}")
    full = max(len(c) for c in curves)
    keep = [i for i, c in enumerate(curves) if len(c) == full]
    return (np.array([curves[i] for i in keep]), np.array([truth[i] for i in keep]),
            [cells[i] for i in keep])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    curves, truth, cells = load_curves(args.folder, methods)
    rng = np.random.default_rng(args.seed)
    full = curves.shape[1]
    print(f"{curves.shape[0]} trials of {', '.join(methods)} trained {full} epochs "
          f"({args.folder}); Spearman ± bootstrap s.e. ({args.bootstrap} resamples)")
    print(f"{'epoch':>5} {'vs epoch ' + str(full):>18} {'vs the table':>16} {'mean acc':>9}")
    rows: dict[str, Any] = {}
    for k in range(1, full + 1):
        with warnings.catch_warnings():  # a resample of few cells may repeat one: NaN, skipped
            warnings.simplefilter("ignore")
            to_end = rank_stats(curves[:, k - 1], curves[:, -1], args.bootstrap, rng)
            to_table = rank_stats(curves[:, k - 1], truth, args.bootstrap, rng)
        rows[str(k)] = {"vs_full": to_end, "vs_table": to_table,
                        "mean_accuracy": float(curves[:, k - 1].mean())}
        print(f"{k:>5} {to_end['spearman']:>11.3f} ± {to_end['spearman_se']:.3f} "
              f"{to_table['spearman']:>9.3f} ± {to_table['spearman_se']:.3f} "
              f"{curves[:, k - 1].mean():>9.3f}")
    print(json.dumps({"trials": int(curves.shape[0]), "epochs": full, "rows": rows}))
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        chunk = {"config": {"source": str(args.folder), "methods": methods},
                 "indices": cells, "val_accuracy": truth.tolist(),
                 "accuracy": {str(k): curves[:, k - 1].tolist() for k in range(1, full + 1)}}
        (args.save / "chunk-0000.json").write_text(json.dumps(chunk))
        print(f"curves saved to {args.save / 'chunk-0000.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
