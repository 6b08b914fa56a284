"""The command line, end to end, with real training on digits."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from archsearch.cli import main

TINY = {
    "study": {"name": "tiny", "seed": 3, "trials": 4},
    "data": "digits",
    "space": {"name": "multi-branch", "max_depth": 2, "widths": [8, 16]},
    "strategy": {"name": "random"},
    "estimator": {"name": "training", "epochs": 1, "batch_size": 64, "latency_repeats": 2},
}


def _config(tmp_path: Path, **changes: object) -> Path:
    config = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            config[section][key] = value
        else:
            config[section] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _show_json(db: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["show", str(db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_show_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "tiny.db"
    assert main(["run", str(_config(tmp_path)), "--storage", str(db)]) == 0
    shown = _show_json(db, capsys)
    assert [t["number"] for t in shown["trials"]] == [0, 1, 2, 3]
    assert all(t["state"] == "complete" for t in shown["trials"])
    best = max(shown["trials"], key=lambda t: t["value"])
    assert shown["best_trial"] == best["number"]
    assert {"val_accuracy", "test_accuracy", "params", "flops", "train_seconds",
            "latency_seconds"} <= set(best["metrics"])

    assert main(["show", str(db)]) == 0
    assert "best trial" in capsys.readouterr().out

    out = tmp_path / "best"
    assert main(["export", str(db), "--out", str(out)]) == 0
    assert json.loads((out / "genotype.json").read_text()) == best["genotype"]
    metrics = json.loads((out / "metrics.json").read_text())
    # Retraining with the trial's own seed and split reproduces the trial's network.
    assert metrics["export_metrics"]["test_accuracy"] == pytest.approx(
        best["metrics"]["test_accuracy"])
    import torch

    from archsearch.data import load_dataset
    from archsearch.export import load_exported

    model = load_exported(out)
    data = load_dataset("digits")
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.x_test)).argmax(1).numpy()
    accuracy = float((predicted == data.y_test).mean())
    assert accuracy == pytest.approx(metrics["export_metrics"]["test_accuracy"], abs=1e-6)


def test_run_extends_a_finished_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    config = _config(tmp_path, study__trials=2)
    assert main(["run", str(config), "--storage", str(db)]) == 0
    assert main(["run", str(config), "--storage", str(db), "--trials", "3"]) == 0
    assert len(_show_json(db, capsys)["trials"]) == 3


def test_resume_with_another_config_is_refused(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    assert main(["run", str(_config(tmp_path, study__trials=1)), "--storage", str(db)]) == 0
    changed = _config(tmp_path, study__trials=1, estimator__epochs=2)
    capsys.readouterr()
    assert main(["run", str(changed), "--storage", str(db)]) == 2
    assert "estimator.epochs: 1 -> 2" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "message"), [
    ({"study__colour": "red"}, "study: unknown key 'colour'"),
    ({"study__trials": "many"}, "study.trials: expected"),
    ({"space": {"name": "spiral"}}, "unknown space 'spiral'"),
    ({"strategy": {"name": "magic"}}, "unknown strategy 'magic'"),
    ({"estimator__epochs": 1.5}, "estimator (training).epochs: expected int"),
    ({"estimator__learning_rate": 0.1}, "unknown key 'learning_rate'"),
    ({"space__max_depth": "deep"}, "space (multi-branch).max_depth: expected int"),
    ({"data": "/no/such/dataset.npz"}, "/no/such/dataset.npz"),
    ({"extra": 1}, "unknown top-level key 'extra'"),
])
def test_bad_configs_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        change: dict, message: str) -> None:
    config = _config(tmp_path, **change)
    assert main(["run", str(config), "--storage", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


def test_missing_storage_and_config_are_clear(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(tmp_path / "none.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _trials(db: Path) -> list[tuple[int, str, str, float | None]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT number, state, key, value FROM trials ORDER BY number").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_study_then_resume_matches_an_uninterrupted_run(tmp_path: Path,
                                                                     workers: int) -> None:
    """The driver is killed; the same command resumes (with W trials in flight, those
    that were running are queued again) and the record equals an uninterrupted run's."""
    config = _config(tmp_path, study__trials=6)
    cmd = [sys.executable, "-m", "archsearch.cli", "run", str(config), "--storage"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    straight = tmp_path / "straight.db"
    subprocess.run([*cmd, str(straight)], check=True, env=env, capture_output=True)

    killed = tmp_path / "killed.db"
    parallel = ["--workers", str(workers)] if workers > 1 else []
    proc = subprocess.Popen([*cmd, str(killed), *parallel], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once a few trials are recorded
        if killed.exists() and sum(s == "complete" for _, s, _, _ in _safe(killed)) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and any worker processes
    proc.wait()
    partial = _trials(killed)  # readable after a kill -9
    assert 2 <= sum(s == "complete" for _, s, _, _ in partial) < 6

    subprocess.run([*cmd, str(killed), *parallel], check=True, env=env, capture_output=True)
    assert _trials(killed) == _trials(straight)
    assert all(s == "complete" for _, s, _, _ in _trials(killed))


def _safe(db: Path) -> list[tuple[int, str, str, float | None]]:
    try:
        return _trials(db)
    except sqlite3.OperationalError:  # the schema is not written yet
        return []


def test_run_with_two_worker_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "p.db"
    config = _config(tmp_path, study__trials=4)
    assert main(["run", str(config), "--storage", str(db), "--workers", "2"]) == 0
    shown = _show_json(db, capsys)
    assert len(shown["trials"]) == 4 and all(t["state"] == "complete" for t in shown["trials"])
    # Each trial's seed comes from its number: the same trials as a serial run.
    serial = tmp_path / "s.db"
    assert main(["run", str(config), "--storage", str(serial)]) == 0
    again = _show_json(serial, capsys)
    assert [(t["key"], t["value"]) for t in again["trials"]] == \
        [(t["key"], t["value"]) for t in shown["trials"]]


def test_executor_section_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, executor={"name": "processes", "wrokers": 2})
    assert main(["run", str(config), "--storage", str(tmp_path / "x.db")]) == 2
    assert "executor (processes): unknown key 'wrokers'" in capsys.readouterr().err


@pytest.mark.parametrize("example", sorted((Path(__file__).parents[1] / "examples").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_examples_are_valid_configs(example: Path) -> None:
    from archsearch.config import load_config

    config = load_config(example)
    assert config.study.name and config.estimator.name == "training"
