"""Compute zero-cost proxies of all 15,625 NAS-Bench-201 cells and write them as
``src/archsearch/tabular/data/nb201_proxies.npz`` (read by
``archsearch.tabular.nb201_proxies``).

    python3 benchmarks/nb201_proxy_table.py --workers 2                   # synflow
    python3 benchmarks/nb201_proxy_table.py --proxies jacob_cov

A run adds its proxies to the file and keeps the ones already there.

Each cell is scored exactly as ``proxy_ranking.py`` scores its sample (so the two agree
on the cells they share): the CIFAR-10 network (C=16, N=5) at the initialisation seeded
by the cell's index, one minibatch of ``--batch-size`` training images of the CIFAR-10
JPEG copy drawn by that seed (``ZeroCostEstimator.batch``), each proxy on its own copy.
No sharing between isomorphic cells: their networks are initialised differently, so
their scores differ and sharing would not be exact.

Resumable: the cells are scored in chunks of ``--chunk`` by ``--workers`` processes
(one torch thread each on a CPU), every chunk saved as ``chunk-NNNNN.json`` under
``--work-dir`` when done; a kill loses at most the chunks in flight and a rerun continues.
The table file is written only when every chunk is there (``--status`` says how many are).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb201_cost_table import write_npz  # noqa: E402
from proxy_ranking import DEFAULT_DATA, ROOT, proxy_scores  # noqa: E402

OUTPUT = ROOT / "src" / "archsearch" / "tabular" / "data" / "nb201_proxies.npz"

_WORKER: dict[str, Any] = {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", default="synflow")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=125, help="cells per chunk (125)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cpu)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="chunks (build/nb201-proxies-PROXIES)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--limit", type=int, default=0,
                        help="score at most this many missing chunks, then stop (0: all)")
    parser.add_argument("--status", action="store_true", help="say what is done; no work")
    return parser.parse_args(argv)


def _init_worker(data: str, batch_size: int, device: str) -> None:
    import torch

    from archsearch.data import load_dataset
    from archsearch.estimation.zero_cost import ZeroCostEstimator
    from archsearch.space.nb201 import NB201Space

    if device == "cpu":
        torch.set_num_threads(1)
    estimator = ZeroCostEstimator(load_dataset(Path(data)), NB201Space(16, 5),
                                  batch_size=batch_size, device=device)
    estimator.batch(0)  # the data on the device, once per worker
    _WORKER["estimator"] = estimator


def score_cells(start: int, stop: int, proxies: list[str]) -> dict[str, Any]:
    begin = time.perf_counter()
    scores, seconds = proxy_scores(_WORKER["estimator"], list(range(start, stop)), proxies)
    return {"start": start, "stop": stop, "scores": scores, "seconds": seconds,
            "wall_seconds": time.perf_counter() - begin}


def chunk_path(work_dir: Path, start: int) -> Path:
    return work_dir / f"chunk-{start:05d}.json"


def read_chunks(work_dir: Path, starts: range, config: dict[str, Any]) -> dict[int, Any]:
    """The chunks already saved, checked to be of these settings."""
    done = {}
    for start in starts:
        path = chunk_path(work_dir, start)
        if path.exists():
            saved = json.loads(path.read_text())
            if saved["config"] != config:
                raise SystemExit(f"{path} was written with other settings "
                                 f"({saved['config']}); use another --work-dir")
            done[start] = saved
    return done


def write_table(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Add ``arrays`` (float64, one per proxy) to the ``.npz`` at ``path``, keeping the
    proxies already there that were not recomputed; ``meta`` (JSON, one entry per proxy)
    says how each was made.  Fixed zip timestamps: the same numbers give the same bytes."""
    old_arrays: dict[str, np.ndarray] = {}
    old_meta: dict[str, Any] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            old_arrays = {k: data[k] for k in data.files if k != "meta"}
            old_meta = json.loads(str(data["meta"].item()))
    arrays = {**old_arrays, **arrays}
    meta = {**old_meta, **meta}
    write_npz(path, {**dict(sorted(arrays.items())),
                     "meta": np.array(json.dumps(meta, sort_keys=True))})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from archsearch.estimation.zero_cost import PROXIES
    from archsearch.space.nb201 import NB201_SIZE

    proxies = args.proxies.split(",")
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown:
        raise SystemExit(f"unknown proxies {unknown}; choose from {list(PROXIES)}")
    config = {"proxies": proxies, "chunk": args.chunk, "batch_size": args.batch_size,
              "channels": 16, "cells_per_stage": 5, "data": args.data.name}
    starts = range(0, NB201_SIZE, args.chunk)
    if args.work_dir is None:
        args.work_dir = ROOT / "build" / f"nb201-proxies-{'-'.join(proxies)}"
    args.work_dir.mkdir(parents=True, exist_ok=True)
    done = read_chunks(args.work_dir, starts, config)
    missing = [s for s in starts if s not in done]
    print(f"{len(done)} of {len(starts)} chunks of {args.chunk} cells in {args.work_dir}",
          flush=True)
    if args.status:
        return 0
    if missing and not args.data.exists():
        print(f"nb201_proxy_table: no CIFAR-10 at {args.data} (give --data)", file=sys.stderr)
        return 2
    todo = missing[:args.limit] if args.limit else missing
    begin = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch
    with ProcessPoolExecutor(args.workers, mp_context=context, initializer=_init_worker,
                             initargs=(str(args.data), args.batch_size, args.device)) as pool:
        futures = [pool.submit(score_cells, s, min(s + args.chunk, NB201_SIZE), proxies)
                   for s in todo]
        for count, future in enumerate(as_completed(futures), start=1):
            result = {"config": config, "device": args.device, **future.result()}
            path = chunk_path(args.work_dir, result["start"])
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(path)  # a chunk is there whole or not at all
            done[result["start"]] = result
            print(f"chunk {result['start']:5d}: {count}/{len(todo)} in "
                  f"{time.perf_counter() - begin:.0f} s", flush=True)
    if len(done) < len(starts):
        print(f"{len(starts) - len(done)} chunks left; rerun to continue", flush=True)
        return 0
    chunks = [done[s] for s in starts]
    arrays = {p: np.array([v for c in chunks for v in c["scores"][p]], dtype=np.float64)
              for p in proxies}
    wall = float(sum(c["wall_seconds"] for c in chunks))
    import torch

    meta = {p: {**config, "proxies": proxies, "cells": NB201_SIZE, "torch": torch.__version__,
                "devices": sorted({c["device"] for c in chunks}),
                "proxy_seconds": float(sum(sum(c["seconds"][p]) for c in chunks)),
                "run_seconds": wall}
            for p in proxies}
    write_table(args.output, arrays, meta)
    print(f"wrote {args.output} ({args.output.stat().st_size:,d} bytes): "
          + ", ".join(f"{p} {meta[p]['proxy_seconds']:,.0f} s" for p in proxies)
          + f"; {wall:,.0f} s in all (networks built, batches drawn, proxies)", flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
