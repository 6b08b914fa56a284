"""`archsearch report` pages opened in a real browser (headless Chromium through Selenium):
no console error, every plot and the table drawn, with the study's own numbers.  A
screenshot of each page is kept under build/test-artifacts/ (ARCHSEARCH_ARTIFACTS moves it).

Skips, saying why, without selenium or Chromium."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from archsearch.cli import main
from archsearch.storage import SQLiteStorage
from archsearch.trial import TrialState, best_of
from browser import chromium, console_errors, full_screenshot, open_page

ARTIFACTS = Path(os.environ.get("ARCHSEARCH_ARTIFACTS", Path(__file__).parents[1] / "build"
                                / "test-artifacts"))
TRAINING = {"name": "training", "epochs": 2, "batch_size": 64, "optimizer": "adam",
            "lr": 0.003}


def _run(tmp_path: Path, name: str, **sections: Any) -> Path:
    """A real study through `archsearch run` (so the record holds its config)."""
    db = tmp_path / f"{name}.db"
    config = {"study": {"name": name, "seed": 0, "storage": str(db), **sections.pop("study")},
              "data": "digits", **sections}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    return db


def _report(source: Path, out: Path) -> Path:
    assert main(["report", str(source), "--out", str(out)]) == 0
    return out


def _check_page(page: Path, shot: str, plots: list[str]) -> Any:
    """Open ``page``; fail on a console error or a plot left empty; returns what the page
    shows as its data (``window.archsearchReport``) for number checks."""
    with chromium() as driver:
        seconds = open_page(driver, page)
        errors = console_errors(driver)
        assert not errors, f"console errors in {page.name}: {errors}"
        for plot in plots:
            drawn = driver.execute_script(
                "const e = document.getElementById(arguments[0]);"
                "return e ? e.querySelectorAll('.main-svg .trace, .main-svg path.js-line,"
                " .main-svg .point').length : -1", plot)
            assert drawn > 0, f"#{plot} drew nothing ({drawn}) in {page.name}"
        rows = driver.execute_script(
            "return document.querySelectorAll('#trials-table tbody tr').length")
        shown = driver.execute_script(
            "const e = document.getElementById('best-value'); return e ? e.textContent : null")
        svgs = driver.execute_script(
            "return document.querySelectorAll('#drawings svg.archsearch-diagram').length")
        full_screenshot(driver, ARTIFACTS / f"report-{shot}.png")
        return {"seconds": seconds, "rows": rows, "best": shown, "drawings": svgs}


def _close_to_shown(value: float, shown: str | None) -> bool:
    assert shown is not None, "the page shows no #best-value"
    return any(abs(float(token) - value) < 5e-4
               for token in shown.replace(",", " ").split() if _is_number(token))


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@pytest.mark.usefixtures("one_torch_thread")
def test_a_digits_study_report_renders_with_its_numbers(tmp_path: Path) -> None:
    db = _run(tmp_path, "digits", study={"trials": 4},
              space={"name": "multi-branch", "max_depth": 3, "widths": [8, 16]},
              strategy={"name": "random"}, estimator=TRAINING)
    seen = _check_page(_report(db, tmp_path / "digits.html"), "digits",
                       ["best-curve", "best-curve-time", "cost-scatter", "learning-curves"])
    trials = SQLiteStorage(db).trials("digits")
    best = best_of(trials)
    assert best is not None and best.value is not None
    assert _close_to_shown(best.value, seen["best"])
    assert seen["rows"] == len(trials) and seen["drawings"] >= 1


@pytest.mark.usefixtures("one_torch_thread")
def test_a_two_objective_study_report_draws_its_front(tmp_path: Path) -> None:
    db = _run(tmp_path, "pareto",
              study={"trials": 6, "objectives": [
                  {"metric": "val_accuracy", "direction": "maximize"},
                  {"metric": "flops", "direction": "minimize"}]},
              space={"name": "multi-branch", "max_depth": 3, "widths": [8, 16, 32]},
              strategy={"name": "nsga2", "population_size": 4},
              estimator={**TRAINING, "epochs": 1})
    page = _report(db, tmp_path / "pareto.html")
    seen = _check_page(page, "pareto", ["best-curve", "cost-scatter"])
    trials = SQLiteStorage(db).trials("pareto")
    assert seen["rows"] == len(trials) and seen["drawings"] >= 1
    assert "Pareto" in page.read_text()


@pytest.mark.usefixtures("one_torch_thread")
def test_a_one_shot_nb201_study_report_shows_the_architecture_weights(tmp_path: Path) -> None:
    db = _run(tmp_path, "oneshot", study={"trials": 1},
              space={"name": "nb201", "channels": 4, "cells_per_stage": 1},
              strategy={"name": "darts", "epochs": 3, "batch_size": 32, "max_images": 300},
              estimator={**TRAINING, "epochs": 1})
    seen = _check_page(_report(db, tmp_path / "oneshot.html"), "oneshot", ["oneshot-weights"])
    (trial,) = SQLiteStorage(db).trials("oneshot")
    assert trial.state is TrialState.COMPLETE and seen["drawings"] == 1


def test_a_bench_directory_report_draws_the_regret_bands(tmp_path: Path) -> None:
    if importlib.util.find_spec("analognasbench") is None:  # its __init__ needs pandas
        pytest.skip("analog-nasbench is not installed")
    out = tmp_path / "bench"
    assert main(["bench", "--space", "nb201", "--strategies", "random,regularized-evolution",
                 "--budget", "20", "--seeds", "3", "--workers", "1", "--out", str(out)]) == 0
    seen = _check_page(_report(out, tmp_path / "bench.html"), "bench", ["regret-curves"])
    summary = json.loads((out / "summary.json").read_text())
    assert seen["rows"] >= 1 and summary
