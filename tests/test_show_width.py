"""``archsearch show`` and the end of ``archsearch run`` in an 80-column terminal: no line
longer than 80, one line per trial (the architecture in its compact form, cut with …),
the objectives, test and cost metrics only, and the best trial's objective value shown.
Real small studies of each kind of space: trained, looked up in a table, one-shot,
multi-objective, and made in Python with failed trials."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len
from rich.console import Console

from archsearch import cli
from archsearch.cli import main
from archsearch.terminal import number

WIDTH = 80
STATES = "complete|best|front|failed|pruned|running|repeat|infeasible"


@pytest.fixture(autouse=True)
def narrow(monkeypatch: pytest.MonkeyPatch, one_torch_thread: None) -> Iterator[None]:
    """The command line's console as an 80-column terminal's."""
    monkeypatch.setattr(cli, "console", Console(width=WIDTH, highlight=False))
    yield


def _run(tmp_path: Path, config: dict, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    db = tmp_path / "study.db"
    capsys.readouterr()
    assert main(["run", str(path), "--storage", str(db)]) == 0
    return db, capsys.readouterr().out


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(["show", *argv]) == 0
    return capsys.readouterr().out


def _record(db: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(_show(capsys, str(db), "--json"))


def _fits(text: str) -> list[str]:
    lines = text.splitlines()
    assert [line for line in lines if cell_len(line) > WIDTH] == []
    return lines


def _one_row_per_trial(text: str, numbers: list[int]) -> None:
    lines = _fits(text)
    for n in numbers:
        rows = [line for line in lines if re.match(rf"{n}\s+({STATES})\s", line)]
        assert len(rows) == 1, (n, text)


def _best_row(text: str, record: dict) -> str:
    best = next(t for t in record["trials"] if t["number"] == record["best_trial"])
    row = next(line for line in text.splitlines() if re.match(rf"{best['number']}\s+best\s", line))
    assert number(best["value"]) in row
    return number(best["value"])


def test_a_trained_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"study": {"name": "digits", "seed": 3, "trials": 4}, "data": "digits",
              "space": {"name": "multi-branch", "max_depth": 3, "widths": [8, 16],
                        "stem_width": 4},
              "strategy": {"name": "random"},
              "estimator": {"name": "training", "epochs": 1, "batch_size": 64,
                            "latency_repeats": 1}}
    db, ran = _run(tmp_path, config, capsys)
    record = _record(db, capsys)
    value = number(next(t["value"] for t in record["trials"]
                        if t["number"] == record["best_trial"]))
    end = _fits(ran[ran.index("stopped:"):])
    assert end[1].startswith(f"best trial {record['best_trial']}: ")
    assert end[2].split() == ["val", "acc", value, "test", "acc", *end[2].split()[5:]]
    assert "params" in end[2] and "flops" in end[2] and "latency" in end[2]
    assert "train_loss" not in ran[ran.index("stopped:"):]

    shown = _show(capsys, str(db))
    _one_row_per_trial(shown, [0, 1, 2, 3])
    assert _best_row(shown, record) == value
    header = next(line for line in shown.splitlines() if "architecture" in line)
    assert "params" in header and "flops" in header and "latency" in header


@pytest.mark.skipif(importlib.util.find_spec("analognasbench") is None,
                    reason="analog-nasbench is not installed")
def test_a_table_study_shows_no_drift_columns(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """NB201's table gives 30 numbers a trial (drifts and their uncertainties)."""
    config = {"study": {"name": "table", "seed": 0, "trials": 12}, "space": "nb201",
              "strategy": "random", "estimator": "nb201"}
    db, ran = _run(tmp_path, config, capsys)
    record = _record(db, capsys)
    assert len(record["trials"][0]["metrics"]) > 20  # all of them stay in --json
    end = ran[ran.index("stopped:"):]
    assert len(_fits(end)) == 3 and "drift" not in end
    shown = _show(capsys, str(db))
    _one_row_per_trial(shown, list(range(12)))
    _best_row(shown, record)
    assert "drift" not in shown
    # A compact NB201 cell: |op~0|+|op~0|op~1|+|op~0|op~1|op~2| in 17 characters.
    assert re.search(r"  [a-z\d]{2}\+[a-z\d]{2}\|[a-z\d]{2}\+[a-z\d]{2}\|[a-z\d]{2}\|[a-z\d]{2}",
                     shown)
    # The terminal's own width, as a real shell passes it.
    env = {**os.environ, "COLUMNS": str(WIDTH), "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-m", "archsearch.cli", "show", str(db)],
                         capture_output=True, text=True, env=env, check=True).stdout
    _one_row_per_trial(out, list(range(12)))


def test_a_one_shot_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"study": {"name": "oneshot", "seed": 0}, "data": "digits",
              "space": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
              "strategy": {"name": "darts", "epochs": 2, "batch_size": 32, "max_images": 100},
              "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1}}
    db, ran = _run(tmp_path, config, capsys)
    record = _record(db, capsys)
    assert len(_fits(ran[ran.index("stopped:"):])) == 3
    shown = _show(capsys, str(db))
    _one_row_per_trial(shown, [0])
    _best_row(shown, record)
    lines = _fits(shown)
    assert "one-shot search: 2 epochs recorded" in shown
    epochs = [line for line in lines if re.match(r"[01]\s+0\.\d{4}\s", line)]
    assert len(epochs) == 2  # one line per epoch, its derived cell included


def test_a_multi_objective_study_of_darts_cells(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """DARTS cells are long even when compact: the column cuts them with …."""
    config = {"study": {"name": "mo", "seed": 0, "trials": 6,
                        "objectives": ["synflow:max", "params:min"]},
              "data": "digits", "space": {"name": "darts", "steps": 2, "channels": 4, "cells": 3},
              "strategy": "random", "estimator": "zero-cost"}
    db, ran = _run(tmp_path, config, capsys)
    record = _record(db, capsys)
    front = record["pareto_front"]
    end = _fits(ran[ran.index("stopped:"):])
    assert sum(bool(re.match(r"\d+\s+\S+\s+[\d,]+\s+N:", line)) for line in end) == len(front)
    shown = _show(capsys, str(db), "--front")
    _one_row_per_trial(shown, front)
    for n in front:
        trial = record["trials"][n]
        row = next(line for line in shown.splitlines() if re.match(rf"{n}\s+front\s", line))
        assert all(number(v) in row for v in trial["values"])
    assert "…" in _show(capsys, str(db))


def test_a_python_study_with_failed_trials(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """No config, so no space to format with: the genotypes' JSON, cut; a failed trial's
    error on a second line, cut too."""
    import archsearch
    from archsearch.errors import TrialFailed
    from archsearch.space.chain import ChainSpace

    calls: list[object] = []

    def objective(genotype: object) -> float:
        calls.append(genotype)
        if len(calls) % 2 == 0:
            raise TrialFailed("loss is NaN " + "and a long explanation " * 10)
        return len(calls) / 10

    db = tmp_path / "py.db"
    with archsearch.create_study(ChainSpace("vector", max_depth=3), storage=db, name="py",
                                 seed=0) as study:
        study.optimize(objective, trials=6)
    record = _record(db, capsys)
    shown = _show(capsys, str(db))
    _one_row_per_trial(shown, list(range(6)))
    _best_row(shown, record)
    errors = [line for line in _fits(shown) if "TrialFailed: loss is NaN" in line]
    assert len(errors) == 3 and all(line.endswith("…") for line in errors)


def test_report_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's wiring alone (the page itself is ``archsearch.report``'s to test)."""
    from types import SimpleNamespace

    import archsearch.report

    calls = []

    def write_report(path: Path, out: Path, *, study: str | None = None) -> SimpleNamespace:
        calls.append((path, out, study))
        return SimpleNamespace(out=out, bytes=1234, trials=7)

    monkeypatch.setattr(archsearch.report, "write_report", write_report)
    out = tmp_path / ("a-long-folder-name" * 4) / "report.html"
    capsys.readouterr()
    assert main(["report", str(tmp_path / "s.db"), "--out", str(out), "--study", "s"]) == 0
    assert capsys.readouterr().out == f"wrote {out} (1234 bytes, 7 trials)\n"
    assert calls == [(tmp_path / "s.db", out, "s")]
