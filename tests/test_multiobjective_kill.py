"""Every multi-objective strategy resumes exactly after a ``kill -9``: a search killed in
the middle and run again records the same trials as one that never stopped."""

from __future__ import annotations

import importlib.util
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys, time
import archsearch
from archsearch import DecisionSpace, categorical

class Grid4(DecisionSpace):
    def __init__(self):
        super().__init__([categorical(f"x{i}", (0, 1, 2, 3)) for i in range(5)])

def evaluate(g):
    time.sleep(float(sys.argv[3]))
    x = [g[f"x{i}"] for i in range(5)]
    return {"acc": sum(v ** 0.5 for v in x) + 0.3 * sum(a == b for a, b in zip(x, x[1:])),
            "cost": sum((i + 1) * v for i, v in enumerate(x)), "size": float(sum(x))}

study = archsearch.create_study(Grid4(), strategy=sys.argv[2], storage=sys.argv[1], seed=3,
                                objectives=["acc:max", "cost:min"],
                                constraints={"size": {"max": 12}})
study.optimize(evaluate, trials=40)
"""

STRATEGIES = ["nsga2", "regularized-evolution", "local-search", "evolution", "random",
              "optuna:nsga2"]


def _rows(db: Path) -> list[tuple[int, str, str, str | None]]:
    try:
        with sqlite3.connect(db) as con:
            return list(con.execute(
                "SELECT number, state, genotype, objective_values FROM trials ORDER BY number"))
    except sqlite3.OperationalError:
        return []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_killed_multi_objective_search_resumes_exactly(tmp_path: Path, strategy: str) -> None:
    if strategy.startswith("optuna") and importlib.util.find_spec("optuna") is None:
        pytest.skip('needs Optuna: pip install "archsearch[optuna]"')
    straight, killed = tmp_path / "straight.db", tmp_path / "killed.db"
    subprocess.run([sys.executable, "-c", SCRIPT, str(straight), strategy, "0"], check=True,
                   timeout=120)
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, str(killed), strategy, "0.05"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(r[1] == "complete" for r in _rows(killed)) < 15:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 15 <= len(_rows(killed)) < 40
    subprocess.run([sys.executable, "-c", SCRIPT, str(killed), strategy, "0"], check=True,
                   timeout=120)
    assert [r[1:] for r in _rows(killed)] == [r[1:] for r in _rows(straight)]
