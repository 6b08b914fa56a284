"""``benchmarks/search_curves.py``: the learning curves it reads back from a wall-clock
search's studies, and the file it leaves for the scheduler replay."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from archsearch.space.nb201 import NB201Space
from archsearch.storage import SQLiteStorage, StudyInfo
from archsearch.trial import FrozenTrial, TrialState

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HAS_ANB = importlib.util.find_spec("analognasbench") is not None
pytestmark = pytest.mark.skipif(not HAS_ANB, reason="analog-nasbench is not installed")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_search(path: Path, curves: dict[int, list[float]], finished: bool) -> None:
    """A study as ``fidelity_search.py`` leaves it: cell index -> its validation curve."""
    space = NB201Space()
    storage = SQLiteStorage(path)
    storage.open_study(StudyInfo(name="random", seed=0, direction="maximize",
                                 objective="val_accuracy", config={}, version="test"))
    for number, (index, curve) in enumerate(curves.items()):
        genotype = space.from_index(index)
        state = TrialState.COMPLETE if len(curve) == 3 else TrialState.PRUNED
        storage.write_trial("random", FrozenTrial(
            number=number, state=state, genotype=genotype, key=space.key(genotype),
            value=curve[-1] if state is TrialState.COMPLETE else None,
            curve=tuple({"epoch": e + 1, "val_accuracy": a} for e, a in enumerate(curve))))
    storage.close()
    if finished:
        path.with_suffix(".json").write_text("{}")


def test_curves_of_finished_searches_at_the_full_schedule(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from archsearch.tabular.nb201 import NB201Estimator

    script = load("search_curves")
    write_search(tmp_path / "random-seed0.db",
                 {11663: [0.3, 0.4, 0.5], 2789: [0.2, 0.25, 0.3], 7099: [0.1]}, finished=True)
    write_search(tmp_path / "random-seed1.db", {9711: [0.1, 0.2, 0.9]}, finished=False)
    curves, truth, cells = script.load_curves(tmp_path, ["random"])
    assert cells == [11663, 2789]  # the pruned 1-epoch trial and the unfinished search left out
    assert curves.tolist() == [[0.3, 0.4, 0.5], [0.2, 0.25, 0.3]]
    table = NB201Estimator()
    assert truth.tolist() == [table.lookup_index(i)["val_accuracy"] for i in cells]

    write_search(tmp_path / "random-seed2.db", {1491: [0.25, 0.3, 0.35]}, finished=True)
    assert script.main([str(tmp_path), "--bootstrap", "20", "--save", str(tmp_path / "out")]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-2])["rows"]
    # 11663 (94.1 in the table) > 1491 (88.4) > 2789 (79.3), and so at every epoch here.
    assert rows["1"]["vs_table"]["spearman"] == pytest.approx(1.0)
    assert rows["3"]["vs_full"]["spearman"] == pytest.approx(1.0)
    accuracy, saved_truth = load("fidelity_replay").load_curves(tmp_path / "out")
    assert sorted(accuracy) == [1, 2, 3]
    assert np.allclose(accuracy[3], [0.5, 0.3, 0.35])
    assert saved_truth.size == 3
