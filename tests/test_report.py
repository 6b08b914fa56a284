"""``archsearch.report``: the page of real small studies and of a real bench run, read back
from the HTML (the data block the page's script draws from); bad input in one line.  The
browser test (headless Chromium) is separate."""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import archsearch
from archsearch import Budget, NB201Space, Strategy
from archsearch.errors import ArchsearchError, TrialFailed
from archsearch.report import ReportError, write_report
from archsearch.report.diagram import diagram
from archsearch.report.numbers import formatted
from archsearch.space.genotype import Genotype
from archsearch.storage import SQLiteStorage
from archsearch.trial import FrozenTrial, TrialState, best_of, pareto_front_of

#: A study name and error text that would run script if the page took them as markup.
NASTY = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'
STUDY_IDS = ("best-curve", "best-curve-time", "cost-scatter", "drawings", "trials-table",
             "config", "best-value")


def convs(genotype: Genotype) -> float:
    """Scores a cell by its convolutions (a tie broken by a hash); one or none fails."""
    count = sum("conv" in str(v) for v in genotype.values())
    if count <= 1:
        raise TrialFailed(f"no convolution {NASTY}")
    tie = zlib.crc32(genotype.to_json().encode()) % 1000 / 1e5
    return {"val_accuracy": 0.5 + 0.07 * count + tie, "params": 1000.0 * count + 1,
            "flops": 2e6 * count + 3}  # type: ignore[return-value]


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html,
                      re.S)
    assert found is not None
    return json.loads(found.group(1))


def best_value(html: str) -> tuple[str, float | None]:
    found = re.search(r'<span id="best-value"(?: data-value="([^"]*)")?>([^<]*)</span>', html)
    assert found is not None
    return found.group(2), None if found.group(1) is None else float(found.group(1))


def unpack(archs: dict[str, Any], index: int) -> dict[str, Any]:
    """What ``assets/report.js`` does to a packed spec: back to the diagram contract."""
    s = archs["strings"]
    return {"panels": [{"title": s[title], "nodes": [s[n] for n in nodes],
                        "edges": [[flat[i], flat[i + 1], s[flat[i + 2]]]
                                  for i in range(0, len(flat), 3)]}
                       for title, nodes, flat in archs["specs"][index]]}


def traces(data: dict[str, Any], figure: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in data["figures"][figure]["data"]}


def report(path: Path, tmp_path: Path, **kw: Any) -> tuple[str, dict[str, Any], int]:
    out = tmp_path / "report.html"
    summary = write_report(path, out, **kw)
    html = out.read_text("utf-8")
    assert summary.out == out and summary.bytes == out.stat().st_size
    assert not re.search(r"<(script|link)[^>]*(src|href)=", html)  # everything inline
    return html, page_data(html), summary.trials


@pytest.fixture(scope="module")
def nb201_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Python-made NB201 studies: ``nb201`` (40 trials, some failed, a constraint
    making some infeasible) and one named ``NASTY`` (15, some failed)."""
    db = tmp_path_factory.mktemp("nb201") / "s.db"
    with archsearch.create_study(NB201Space(), "random", convs, storage=db, name="nb201",
                                 seed=0, stop_after_failures=0,
                                 constraints={"params": {"max": 3500}}) as study:
        study.optimize(trials=40)
    with archsearch.create_study(NB201Space(), "random", convs, storage=db, name=NASTY,
                                 seed=1, stop_after_failures=0) as study:
        study.optimize(trials=15)
    return db


def test_a_study_page_holds_every_trial_its_best_value_and_drawings(nb201_db: Path,
                                                                    tmp_path: Path) -> None:
    html, data, count = report(nb201_db, tmp_path, study="nb201")
    trials = SQLiteStorage(nb201_db).trials("nb201")
    best = best_of(trials)
    assert best is not None and count == len(trials) == len(data["table"]["rows"]) == 40
    for element in STUDY_IDS:
        assert f'id="{element}"' in html
    assert best_value(html) == (formatted(best.value), best.value)
    kinds = {t.state for t in trials} | {"infeasible" for t in trials if not t.feasible}
    assert TrialState.FAILED in kinds and "infeasible" in kinds  # both are marked apart
    curve = traces(data, "best-curve")
    assert len(curve["failed"]["x"]) == sum(t.state is TrialState.FAILED for t in trials)
    assert curve["best so far"]["y"][-1] == pytest.approx(best.value)
    assert {"complete, infeasible", "best trial"} <= set(traces(data, "cost-scatter"))
    top = sorted((t for t in trials if t.score is not None), key=lambda t: -(t.score or 0))
    assert [d["trial"] for d in data["drawn"]] == [t.number for t in top[:3]]
    # The space was inferred (a Python-made study records none): real cell diagrams.
    shown = {row[0]: row[-1] for row in data["table"]["rows"]}
    for t in trials[:5]:
        assert unpack(data["archs"], shown[t.number]) == diagram(NB201Space(), t.genotype)
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert data["details"]["errors"][str(failed[0].number)] == failed[0].error


def test_text_from_the_record_cannot_become_markup(nb201_db: Path, tmp_path: Path) -> None:
    html, data, _ = report(nb201_db, tmp_path, study=NASTY)
    assert NASTY not in html and "<img" not in html
    assert "alert(&quot;x&quot;)" in html  # the name, escaped, in the header
    assert any(NASTY in error for error in data["details"]["errors"].values())


class Cycling(Strategy):
    """Proposes four cells (of 2 to 6 convolutions) in turn, so most trials are repeats."""

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype:
        return NB201Space().from_index([15624, 15623, 15000, 14000][len(trials) % 4])


def test_each_architecture_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with archsearch.create_study(NB201Space(), Cycling(NB201Space()), convs, storage=db) as s:
        s.optimize(budget=Budget(trials=20, count_repeats=True))
    html, data, count = report(db, tmp_path)
    assert count == 20 and sum("repeat" in row[1] for row in data["table"]["rows"]) == 16
    assert len(data["archs"]["specs"]) == len(data["archs"]["texts"]) == 4
    assert "repeat (cached)" in traces(data, "best-curve")


def test_a_config_study_on_digits(tmp_path: Path, one_torch_thread: None) -> None:
    from archsearch.config import parse_config

    config = parse_config({
        "study": {"name": "digits", "seed": 0, "trials": 3, "storage": str(tmp_path / "d.db")},
        "data": "digits", "space": {"name": "multi-branch", "max_depth": 2, "widths": [8, 16]},
        "strategy": {"name": "random"},
        "estimator": {"name": "training", "epochs": 1, "batch_size": 64, "latency_repeats": 2}})
    study = archsearch.run(config)
    html, data, count = report(tmp_path / "d.db", tmp_path)
    assert count == 3 and best_value(html)[1] == study.best_trial.value  # type: ignore[union-attr]
    assert "<dt>strategy</dt><dd>random</dd>" in html
    assert "<dd>training (batch_size 64, epochs 1, latency_repeats 2)</dd>" in html
    config_text = re.search(r'<pre id="config">(.*?)</pre>', html, re.S)
    assert config_text is not None and "name: multi-branch" in config_text.group(1)
    buttons = data["figures"]["cost-scatter"]["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons][:3] == ["params", "flops", "latency_seconds"]
    spec = unpack(data["archs"], data["drawn"][0]["arch"])
    assert spec["panels"][0]["title"] == "network" and spec["panels"][0]["nodes"][0] == "input"


def test_a_multi_objective_study_draws_its_front(tmp_path: Path) -> None:
    db = tmp_path / "mo.db"
    with archsearch.create_study(NB201Space(), "random", convs, storage=db, seed=3,
                                 objectives=["val_accuracy:max", "params:min"],
                                 stop_after_failures=0) as study:
        study.optimize(trials=30)
        front = pareto_front_of(study.trials)
    html, data, _ = report(db, tmp_path)
    assert sorted(d["trial"] for d in data["drawn"]) == sorted(t.number for t in front)[:8]
    scatter = traces(data, "cost-scatter")
    assert sorted(scatter["Pareto front"]["customdata"]) == sorted(t.number for t in front)
    assert len(scatter["front"]["x"]) == len(front)  # x is params, the second objective
    text, number = best_value(html)
    feasible = [t.values for t in study.trials if t.values is not None]
    assert text == f"{formatted(max(v[0] for v in feasible))}, {formatted(min(v[1] for v in feasible))}"
    assert len({t["yaxis"] for t in data["figures"]["best-curve"]["data"]}) == 2  # one per goal


def test_a_one_shot_study_plots_its_architecture_weights(tmp_path: Path,
                                                         one_torch_thread: None) -> None:
    from archsearch.data import load_digits
    from archsearch.space.nb201 import NB201_OPS

    db = tmp_path / "os.db"
    with archsearch.create_study(NB201Space(channels=4, cells_per_stage=1), "darts", convs,
                                 data=load_digits(), storage=db, seed=0,
                                 strategy_params={"epochs": 2, "batch_size": 32,
                                                  "max_images": 200}) as study:
        study.optimize()
    html, data, count = report(db, tmp_path)
    assert count == 1 and 'id="oneshot-weights"' in html
    lines = data["figures"]["oneshot-weights"]["data"]
    assert len(lines) == 6 * 5 and {t["name"] for t in lines} == set(NB201_OPS)
    assert all(t["x"] == [0, 1] and len(t["y"]) == 2 for t in lines)


def test_a_multi_fidelity_study_plots_learning_curves(tmp_path: Path) -> None:
    from curve_estimator import CurveEstimator
    from test_schedulers import Grid

    db = tmp_path / "mf.db"
    with archsearch.create_study(Grid(), "random", CurveEstimator(epochs=9), storage=db,
                                 scheduler="asha") as study:
        study.optimize(trials=12)
    html, data, count = report(db, tmp_path)
    assert 'id="learning-curves"' in html and count == len(study.trials)
    curves = traces(data, "learning-curves")
    assert "pruned" in curves and "pruned" in traces(data, "best-curve")
    drawn = sum(1 for x in curves["pruned"]["x"] if x is None)  # one gap after each curve
    assert drawn == sum(t.state is TrialState.PRUNED and not t.cached for t in study.trials)


needs_tables = pytest.mark.skipif(importlib.util.find_spec("analognasbench") is None,
                                  reason='needs the NB201 table: pip install "archsearch[benchmarks]"')


@needs_tables
@pytest.mark.parametrize("objectives", [None, "val_accuracy:max,flops:min"])
def test_a_bench_directory(tmp_path: Path, objectives: str | None) -> None:
    from archsearch.bench import run_bench

    out = tmp_path / "bench"
    summary = run_bench("nb201", ["random", "local-search"], 10, 2, out, workers=1,
                        objectives=objectives)
    html, data, count = report(out, tmp_path)
    assert count == 4 and len(data["table"]["rows"]) == 4 and 'id="regret-curves"' in html
    kind = "hypervolume_regret" if objectives else "search_regret"
    means = {s: v["at"]["10"][kind]["mean"] for s, v in summary["strategies"].items()}
    assert best_value(html)[1] == pytest.approx(min(means.values()), rel=1e-5)
    lines = {t["name"]: t for t in data["figures"]["regret-curves"]["data"] if t.get("fill") is None}
    assert set(lines) == {"random", "local-search"}
    assert lines["random"]["y"][-1] == pytest.approx(means["random"], rel=1e-5)
    assert len(data["figures"]["regret-curves"]["data"]) == 2 * 2 * (1 if objectives else 2)


# -- bad input: one line each -----------------------------------------------------------------
def one_line(error: pytest.ExceptionInfo[ArchsearchError]) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


def test_input_that_is_not_a_study_nor_a_bench_output(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE things (x)")
    cases = {text: "not a study database", foreign: "not an archsearch study database",
             tmp_path / "missing.db": "does not exist",
             tmp_path: "not an `archsearch bench` output"}
    for path, message in cases.items():
        with pytest.raises(ReportError) as error:
            write_report(path, tmp_path / "out.html")
        assert message in one_line(error)
    with sqlite3.connect(foreign) as db:  # the report wrote nothing into it
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["things"]
    assert not (tmp_path / "out.html").exists()


def test_a_study_must_be_named_when_there_are_several(nb201_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError) as error:
        write_report(nb201_db, tmp_path / "out.html")
    assert "holds 2 studies" in one_line(error) and "nb201" in str(error.value)
    with pytest.raises(ReportError) as error:
        write_report(nb201_db, tmp_path / "out.html", study="nope")
    assert "no study named 'nope'" in one_line(error)


def test_an_output_that_cannot_be_written(nb201_db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out in (blocker / "report.html", tmp_path):
        with pytest.raises(ReportError) as error:
            write_report(nb201_db, out, study="nb201")
        assert f"cannot write the report to {out}" in one_line(error)


