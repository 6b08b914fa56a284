"""Look up the cell derived after each epoch of a one-shot search in the NAS-Bench-201 table.

    python benchmarks/epoch_cells.py [--last K] LOG [LOG ...]

LOG is the output of ``benchmarks/oneshot_nb201.py`` (one search per log): each epoch's line
ends with the cell the architecture weights derive at that point.  Prints, per log, the
last K epochs (all by default) with that cell's NAS-Bench-201 CIFAR-10 test accuracy, to
show when in a search the derived cell changed and what it was worth then, and the Hessian's
dominant eigenvalue where the search recorded it (DARTS-ES, ``track_eigenvalue``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from archsearch.space.nb201 import NB201Space
from archsearch.tabular.nb201 import NB201Estimator

#: "epoch  14/15  train loss ... |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
_EPOCH_LINE = re.compile(r"^epoch\s+(\d+)/(\d+)\s.*\s(\|\S+\|)\s*$")
_EIGENVALUE = re.compile(r"\shessian_eigenvalue (\S+)\s")


def epoch_cells(text: str) -> list[tuple[str, str, str]]:
    """(``"14/15"``, cell string, eigenvalue or "") for every epoch line of a search log."""
    found = []
    for line in text.splitlines():
        match = _EPOCH_LINE.match(line)
        if match:
            eigenvalue = _EIGENVALUE.search(line)
            found.append((f"{match[1]}/{match[2]}", match[3],
                          eigenvalue[1] if eigenvalue else ""))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--last", type=int, default=0, help="only the last K epochs")
    args = parser.parse_args()
    table, space = NB201Estimator(), NB201Space()
    for log in args.logs:
        rows = epoch_cells(log.read_text())
        if not rows:
            print(f"{log}: no epoch lines")
            continue
        print(log)
        for epoch, cell, eigenvalue in rows[-args.last:] if args.last else rows:
            accuracy = table.evaluate(space.from_string(cell))["test_accuracy"]
            print(f"  epoch {epoch:>7}  {accuracy:6.2f}  {eigenvalue:>8}  {cell}")


if __name__ == "__main__":
    main()
