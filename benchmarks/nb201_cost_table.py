"""Regenerate ``src/archsearch/tabular/data/nb201_cost.npz``: the FLOPs and parameters of
all 15,625 NAS-Bench-201 cells in the CIFAR-10 network (C=16, N=5), as archsearch's own
builder and counter give them (``archsearch.tabular.nb201_cost.count_nb201_cost``).

    python3 benchmarks/nb201_cost_table.py                # by edge, checked (~20 s)
    python3 benchmarks/nb201_cost_table.py --direct       # every cell counted (~18 min)

Default, by edge: a network's FLOPs and parameters are the fixed part (stem, reduction
blocks, head) plus one term per (edge, op) -- ops are built and run whether or not their
input is reached, ``none`` edges are not built, and neither additions nor zeros are
counted.  So the script counts the all-``none`` cell and the 24 cells with one non-``none``
edge, sums the terms for every cell, and then counts ``--verify`` (300) random cells plus
some landmarks directly; the file is written only if every one of them equals the sum
exactly.

``--direct`` counts every cell by building it, with ``--workers`` processes of one torch
thread each, in chunks of ``--chunk`` cells saved under ``--work-dir``; a killed run loses
at most the chunks in flight (one per worker) and a rerun continues.  It also checks the
result against the by-edge sum.

Run time on the development machine (AMD EPYC, 2 cores, torch 2.13 CPU, 2026-12-03): by
edge with 308 direct checks 21 s; ``--direct --workers 2`` 1,047 s (0.13 s per cell and
worker, the machine shared with other work).  Both wrote the same bytes.  Logs:
``benchmarks/logs/nb201-cost-2026-12-03/``.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
import zipfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from archsearch.space.nb201 import NB201_EDGES, NB201_OPS, NB201_SIZE, NB201Space
from archsearch.tabular.nb201_cost import count_nb201_cost

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "archsearch" / "tabular" / "data" / "nb201_cost.npz"
WORK_DIR = ROOT / "build" / "nb201-cost-chunks"
N_EDGES, N_OPS = len(NB201_EDGES), len(NB201_OPS)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def count_cells(indices: Iterable[int]) -> np.ndarray:
    """``(n, 2)`` int64: flops and params of each cell, counted directly."""
    return np.array([count_nb201_cost(int(i)) for i in indices], dtype=np.int64).reshape(-1, 2)


def digits(indices: np.ndarray) -> np.ndarray:
    """``(n, 6)`` op codes, column e = the op of edge e (first edge most significant)."""
    return np.stack([(indices // N_OPS ** (N_EDGES - 1 - e)) % N_OPS for e in range(N_EDGES)],
                    axis=1)


def by_edge() -> np.ndarray:
    """``(15625, 2)`` flops and params as the fixed part plus one term per (edge, op)."""
    base = count_cells([0])[0]  # every edge none
    terms = np.zeros((N_EDGES, N_OPS, 2), dtype=np.int64)
    for e in range(N_EDGES):
        for k in range(1, N_OPS):  # op 0 is none: nothing built
            terms[e, k] = count_cells([k * N_OPS ** (N_EDGES - 1 - e)])[0] - base
    codes = digits(np.arange(NB201_SIZE))
    sums: np.ndarray = base + terms[np.arange(N_EDGES), codes].sum(axis=1)
    return sums


def landmarks() -> list[int]:
    """Cells worth checking by hand: extremes, one-op cells, cut-off cells with convs."""
    space = NB201Space()
    strings = [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
        # output cut off from the input, convs on unreached nodes
        "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|",
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ]
    return [0, 1, NB201_SIZE - 1] + [space.index(space.from_string(s)) for s in strings]


def direct(work_dir: Path, workers: int, chunk: int) -> np.ndarray:
    """Count every cell, chunk by chunk, resuming from the chunks already in ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    starts = range(0, NB201_SIZE, chunk)
    missing = [s for s in starts if not (work_dir / f"{s:05d}-{chunk}.npy").exists()]
    print(f"direct: {len(starts) - len(missing)} of {len(starts)} chunks of {chunk} cells "
          f"already in {work_dir}; {len(missing)} to count with {workers} worker(s)", flush=True)
    begin = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = {pool.submit(count_cells, range(s, min(s + chunk, NB201_SIZE))): s
                   for s in missing}
        for done, future in enumerate(as_completed(futures), start=1):
            s, rows = futures[future], future.result()
            path = work_dir / f"{s:05d}-{chunk}.npy"
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, rows)
            os.replace(tmp, path)  # a chunk is there whole or not at all
            elapsed = time.perf_counter() - begin
            print(f"  chunk {s:5d}: {done}/{len(missing)} in {elapsed:7.1f} s", flush=True)
    return np.concatenate([np.load(work_dir / f"{s:05d}-{chunk}.npy") for s in starts])


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed ``.npz`` with fixed zip timestamps, so the same numbers give the same
    bytes; written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    os.replace(tmp, path)


def write(path: Path, flops: np.ndarray, params: np.ndarray) -> None:
    write_npz(path, {"flops": flops, "params": params})


def summary(name: str, values: np.ndarray) -> str:
    return (f"{name:6s} min {values.min():>12,d}  median {int(np.median(values)):>12,d}  "
            f"max {values.max():>12,d}  ({len(np.unique(values))} distinct values)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--direct", action="store_true", help="count every cell directly")
    parser.add_argument("--verify", type=int, default=300,
                        help="random cells counted directly to check the by-edge sum (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    _init_worker()
    begin = time.perf_counter()

    table = by_edge()
    print(f"by edge: 25 networks counted in {time.perf_counter() - begin:.1f} s", flush=True)
    if args.direct:
        counted = direct(args.work_dir, args.workers, args.chunk)
        mismatch = np.flatnonzero((counted != table).any(axis=1))
        print(f"direct vs by edge: {len(mismatch)} of {NB201_SIZE} cells differ", flush=True)
        table = counted
    else:
        rng = np.random.default_rng(args.seed)
        check = landmarks() + rng.choice(NB201_SIZE, size=args.verify, replace=False).tolist()
        counted = count_cells(check)
        mismatch = np.asarray(check)[(counted != table[check]).any(axis=1)]
        print(f"checked {len(check)} cells directly ({len(landmarks())} landmarks + "
              f"{args.verify} random, seed {args.seed}): {len(mismatch)} differ", flush=True)
    if len(mismatch):
        print(f"not written: cells {mismatch[:20].tolist()} differ", file=sys.stderr)
        return 1

    flops, params = table[:, 0].copy(), table[:, 1].copy()
    write(args.output, flops, params)
    print(summary("flops", flops))
    print(summary("params", params))
    print(f"wrote {args.output} ({args.output.stat().st_size:,d} bytes) "
          f"in {time.perf_counter() - begin:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
