"""Memory and load time of the published tables, loaded together in one process.

    python benchmarks/table_memory.py [--datasets cora,citeseer,pubmed]

Prints resident memory (VmRSS) and its peak (VmHWM) after Python starts, after the
NAS-Bench-201 table loads, and after each NAS-Bench-Graph table, and the load times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def memory() -> str:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    rss, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    return f"rss {rss:6.1f} MiB, peak {peak:6.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="cora")
    args = parser.parse_args()
    print(f"start                     {memory()}")
    start = time.perf_counter()
    from archsearch.tabular.nb201 import NB201Estimator

    NB201Estimator()
    print(f"nb201 loaded in {time.perf_counter() - start:5.2f} s   {memory()}")
    from archsearch.tabular.nbgraph import NBGraphEstimator

    for name in args.datasets.split(","):
        start = time.perf_counter()
        NBGraphEstimator(table=name)
        print(f"nbgraph:{name} loaded in {time.perf_counter() - start:5.2f} s   {memory()}")
    print(f"torch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
