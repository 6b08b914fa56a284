"""The Python API and the open core: create_study / run, a user's own space, estimator and
strategy plugged in by class, import path and entry point, and the guards a user expects."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import archsearch
from archsearch import registry
from archsearch.cli import main
from archsearch.errors import ArchsearchError, ConfigError, RepeatedFailure
from archsearch.space import ChainSpace, DecisionSpace, categorical

ROOT = Path(__file__).resolve().parents[1]

#: A user's own module: a trainable space, a slow estimator and a strategy, as a package
#: outside archsearch would write them.
PLUGIN = '''
import time

import numpy as np

from archsearch import DecisionSpace, Estimator, categorical
from archsearch.strategy import RandomSearch


class TinyMLPSpace(DecisionSpace):
    """Two-layer perceptrons: a width and an activation."""

    name = "tiny-mlp"

    def __init__(self, widths=(8, 16)):
        self.widths = tuple(widths)
        super().__init__([categorical("width", self.widths),
                          categorical("activation", ("relu", "tanh"))])

    def build_network(self, genotype, input_shape, num_classes):
        from torch import nn

        act = nn.ReLU() if genotype["activation"] == "relu" else nn.Tanh()
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), genotype["width"]),
                             act, nn.Linear(genotype["width"], num_classes))


class SlowDepth(Estimator):
    """Sleeps, then scores a chain genotype by its depth: for lease and kill tests."""

    def __init__(self, seconds: float = 0.3):
        self.seconds = seconds

    def evaluate(self, genotype, context):
        time.sleep(self.seconds)
        return {"val_accuracy": float(genotype["depth"]) + 0.001 * context.number}


class PluginSearch(RandomSearch):
    """Random search, registered by an entry point."""

    name = "plugin-search"

    def __init__(self, space, seed=0, *, flavour: str = "plain"):
        super().__init__(space, seed)
        self.flavour = flavour
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``my_plugin`` installed as a distribution would be: a module and a dist-info with an
    entry point, on sys.path for this process and (PYTHONPATH) its children."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_plugin.py").write_text(PLUGIN)
    info = site / "my_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[archsearch.strategies]\nplugin-search = my_plugin:PluginSearch\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    registry._entry_points.cache_clear()
    yield site
    registry._entry_points.cache_clear()
    sys.modules.pop("my_plugin", None)


def _chain_config(tmp_path: Path, **study: object) -> Path:
    config = {
        "study": {"name": "slow", "seed": 0, "trials": 6, **study},
        "space": {"name": "chain", "modality": "vector", "max_depth": 4},
        "strategy": {"name": "random"},
        "estimator": {"name": "my_plugin:SlowDepth"},
    }
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# -- the Python API ----------------------------------------------------------------------


def _readme_python() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def _run_script(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _records(db: Path) -> list[tuple[int, str, str, float | None]]:
    """The trials of a record, [] while it is being created."""
    try:
        with sqlite3.connect(db) as con:
            return list(con.execute(
                "SELECT number, state, genotype, value FROM trials ORDER BY number"))
    except sqlite3.OperationalError:  # no trials table yet
        return []


def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    done = _run_script(_readme_python(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "best" in done.stdout.lower()
    rows = _records(tmp_path / "runs" / "my.db")
    assert len(rows) == 30 and all(state == "complete" for _, state, _, _ in rows)


def test_the_readme_python_example_resumes_after_kill_9(tmp_path: Path) -> None:
    """Killed mid-search, the same script finishes the study exactly as one that never
    stopped (the trial that was running is rerun with the same architecture)."""
    code = _readme_python()
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    assert _run_script(code, straight).returncode == 0
    slow = ("import time\n_evaluate_slowly = None\n"
            + code.replace("study.optimize(evaluate,",
                           "study.optimize(lambda g, c: (time.sleep(0.15), evaluate(g, c))[1],"))
    assert slow != code
    child = subprocess.Popen([sys.executable, "-c", slow], cwd=killed)
    db = killed / "runs" / "my.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.exists() and sum(1 for r in _records(db) if r[1] == "complete") >= 8:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 8 <= len(_records(db)) < 30
    again = _run_script(code, killed)
    assert again.returncode == 0, again.stderr
    assert [r[1:] for r in _records(db)] == [r[1:] for r in _records(straight / "runs" / "my.db")]


def test_a_plain_function_is_an_estimator_and_the_seed_is_given_once() -> None:
    space = ChainSpace("vector", max_depth=3)
    study = archsearch.create_study(space, strategy="regularized-evolution", seed=4,
                                    strategy_params={"population_size": 5, "sample_size": 2})
    assert study.strategy.seed == 4 and study.seed == 4
    study.optimize(lambda genotype: float(genotype["depth"]), trials=12)
    assert study.best_trial is not None and study.best_trial.value == 3.0
    with pytest.raises(ConfigError, match="seed"):
        archsearch.create_study(space, strategy=study.strategy, seed=5)


def test_strategy_and_estimator_by_name_class_or_instance(tmp_path: Path) -> None:
    from archsearch.strategy import LocalSearch

    space = ChainSpace("vector", max_depth=2)
    values = []
    for strategy in ("local-search", LocalSearch, LocalSearch(space, seed=0)):
        study = archsearch.create_study(space, strategy=strategy, seed=0)
        study.optimize(lambda g, context: {"val_accuracy": float(g["depth"]), "n": context.number},
                       trials=5)
        values.append([t.value for t in study.trials])
    assert values[0] == values[1] == values[2]


def test_a_missing_objective_stops_the_search_early_with_its_reason(tmp_path: Path) -> None:
    """Before: every trial failed silently until the whole budget was spent."""
    space = ChainSpace("vector", max_depth=3)
    study = archsearch.create_study(space, storage=tmp_path / "s.db")
    with pytest.raises(ConfigError, match="objective 'val_accuracy' is missing.*loss"):
        study.optimize(lambda genotype: {"loss": 1.0}, trials=50)
    assert len(study.trials) == 1  # a missing metric is the study's configuration: at once
    study.close()
    # A crashing estimator: after stop_after_failures trials (default 5) failed the same way.
    study = archsearch.create_study(space)
    with pytest.raises(RepeatedFailure, match="first 5 trials.*ZeroDivisionError"):
        study.optimize(lambda genotype: 1 / 0, trials=50)
    assert len(study.trials) == 5
    # The same reason five times stops; different reasons do not.
    study = archsearch.create_study(space, stop_after_failures=3)
    calls = iter(range(100))

    def flaky(genotype: object) -> float:
        n = next(calls)
        if n < 4:
            raise RuntimeError("disk full" if n % 2 else "bad shape")
        return 1.0
    study.optimize(flaky, trials=8)
    assert sum(t.state.value == "complete" for t in study.trials) == 4


def test_a_users_trainable_space_is_trained_by_the_training_estimator(plugin: Path) -> None:
    from my_plugin import TinyMLPSpace  # type: ignore[import-not-found]

    study = archsearch.create_study(TinyMLPSpace(), strategy="grid", estimator="training",
                                    data="digits", estimator_params={"epochs": 3, "lr": 0.01})
    study.optimize(trials=4)
    assert [t.state.value for t in study.trials] == ["complete"] * 4
    assert all(t.metrics["val_accuracy"] > 0.2 and t.metrics["params"] > 0 for t in study.trials)


def test_a_users_space_named_by_import_path_in_yaml_trains(plugin: Path, tmp_path: Path) -> None:
    config = {
        "study": {"name": "mine", "seed": 0, "trials": 2},
        "data": "digits",
        "space": {"name": "my_plugin:TinyMLPSpace", "widths": [4, 8]},
        "strategy": {"name": "random"},
        "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1},
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    study = archsearch.run(path, storage=str(tmp_path / "mine.db"))
    assert [t.state.value for t in study.trials] == ["complete", "complete"]
    assert {t.genotype["width"] for t in study.trials} <= {4, 8}


# -- the registry ------------------------------------------------------------------------


def test_an_entry_point_registers_a_strategy_that_list_shows(plugin: Path) -> None:
    assert "plugin-search" in registry.available("strategy")
    cls = registry.resolve("strategy", "plugin-search")
    assert cls.__name__ == "PluginSearch"
    listed = subprocess.run([sys.executable, "-m", "archsearch.cli", "list", "strategies"],
                            capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert "plugin-search" in listed.stdout and "flavour='plain'" in listed.stdout
    space = ChainSpace("vector", max_depth=2)
    study = archsearch.create_study(space, strategy="plugin-search", seed=0,
                                    strategy_params={"flavour": "spicy"})
    assert study.strategy.flavour == "spicy"


def test_list_prints_every_kind_with_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("multi-branch", "regularized-evolution", "darts", "gdas", "training", "serial"):
        assert name in out
    assert "population_size=20" in out


def test_register_a_class_at_run_time() -> None:
    from archsearch.strategy import RandomSearch

    @registry.register("strategy", "test-runtime-random")
    class Mine(RandomSearch):
        pass

    try:
        study = archsearch.create_study(ChainSpace("vector", max_depth=2),
                                        strategy="test-runtime-random")
        assert isinstance(study.strategy, Mine)
    finally:
        registry._RUNTIME["strategy"].pop("test-runtime-random")


def test_unknown_names_and_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'nope'.*local-search"):
        registry.resolve("strategy", "nope")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        registry.resolve("space", "no_such_module:Space")
    with pytest.raises(ConfigError, match="takes no ':' argument"):
        registry.resolve("strategy", "random:x")
    with pytest.raises(ConfigError, match="unknown key 'pop'"):
        archsearch.create_study(ChainSpace(), strategy="regularized-evolution",
                                strategy_params={"pop": 3})


# -- guards ------------------------------------------------------------------------------


def test_settings_out_of_range_fail_before_any_data_loads(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """population_size: 0 once passed load_config and failed at the first ask, after the
    data had loaded; the data here does not even exist."""
    config = {"data": str(tmp_path / "missing.npz"),
              "space": {"name": "chain", "modality": "vector"},
              "strategy": {"name": "regularized-evolution", "population_size": 0},
              "estimator": {"name": "training"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--storage", str(tmp_path / "bad.db")]) == 2
    err = capsys.readouterr().err
    assert "population_size" in err and "missing.npz" not in err
    assert not (tmp_path / "bad.db").exists()


def test_every_deliberate_error_is_an_archsearch_error() -> None:
    from archsearch import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 10 and all(issubclass(c, ArchsearchError) for c in classes)
    from archsearch.data import DataError
    from archsearch.tabular import BenchmarkNotInstalled, UnsafePickleError
    for cls in (DataError, BenchmarkNotInstalled, UnsafePickleError):
        assert issubclass(cls, ArchsearchError)


def test_a_bug_prints_a_traceback_not_a_one_line_error(plugin: Path, tmp_path: Path) -> None:
    (plugin / "buggy.py").write_text(textwrap.dedent('''
        from archsearch import Estimator

        class Buggy(Estimator):
            def __init__(self):
                raise KeyError("a bug in the estimator's code")

            def evaluate(self, genotype, context):
                return {}
    '''))
    config = {"space": {"name": "chain", "modality": "vector"}, "strategy": "random",
              "estimator": {"name": "buggy:Buggy"}}
    path = tmp_path / "buggy.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "archsearch.cli", "run", str(path),
                           "--storage", str(tmp_path / "b.db")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "Traceback" in done.stderr and "KeyError" in done.stderr


def test_workers_1_means_one_worker(tmp_path: Path, plugin: Path) -> None:
    """It was `error: executor (serial): unknown key 'workers'`."""
    path = _chain_config(tmp_path, trials=2)
    study_a = archsearch.run(path, storage=str(tmp_path / "a.db"), workers=1)
    assert main(["run", str(path), "--storage", str(tmp_path / "b.db"), "--workers", "1"]) == 0
    assert [t.value for t in study_a.trials] == [v for *_, v in _records(tmp_path / "b.db")]


def test_a_second_process_is_refused_and_a_killed_one_taken_over(
        tmp_path: Path, plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs of one study once both did the whole study, overwriting each other."""
    path = _chain_config(tmp_path, trials=8)
    db = tmp_path / "shared.db"
    child = subprocess.Popen([sys.executable, "-m", "archsearch.cli", "run", str(path),
                              "--storage", str(db)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists() and any(r[1] == "complete" for r in _records(db)):
                break
            time.sleep(0.05)
        capsys.readouterr()
        assert main(["run", str(path), "--storage", str(db)]) == 2
        err = capsys.readouterr().err
        assert f"process {child.pid}" in err and "'slow'" in err and len(err.splitlines()) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    began = time.monotonic()
    assert main(["run", str(path), "--storage", str(db)]) == 0  # taken over at once
    assert time.monotonic() - began < 20
    straight = archsearch.run(path, storage=str(tmp_path / "straight.db"))
    assert [r[1:] for r in _records(db)] == [
        (t.state.value, t.genotype.to_json(), t.value) for t in straight.trials]


def test_one_copy_and_no_private_names_across_modules() -> None:
    """Finding 10: nothing imports another module's private name (a leading underscore)."""
    import ast

    offenders = []
    for path in (ROOT / "src" / "archsearch").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archsearch"):
                offenders += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_results_md_is_the_current_standing() -> None:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert len(text.splitlines()) < 400
    history = re.search(r"benchmarks/logs/(RESULTS-history-[\d-]+\.md)", text)
    assert history and (ROOT / "benchmarks" / "logs" / history.group(1)).is_file()


def test_show_json_of_a_study_made_in_python(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    space = ChainSpace("vector", max_depth=2)
    with archsearch.create_study(space, storage=tmp_path / "py.db", name="py") as study:
        study.optimize(lambda g: float(g["depth"]), trials=3)
    capsys.readouterr()
    assert main(["show", str(tmp_path / "py.db"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["study"] == "py" and len(shown["trials"]) == 3
    assert main(["show", str(tmp_path / "py.db")]) == 0
    assert "best trial" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "py.db"), "--out", str(tmp_path / "out")]) == 2
    assert "made in Python" in capsys.readouterr().err


def test_user_decision_space_round_trip() -> None:
    class Mine(DecisionSpace):
        def __init__(self) -> None:
            super().__init__([categorical("a", (1, 2, 3))])

    study = archsearch.create_study(Mine(), strategy="grid")
    study.optimize(lambda g: -abs(int(g["a"]) - 2), trials=10)
    assert study.best_trial is not None and study.best_trial.genotype["a"] == 2
    assert len(study.trials) == 3 and np.isfinite(study.best_trial.value)


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Finding 7: NB201Space in tabular/ once made estimation -> nn -> tabular -> estimation.
    Module-level imports only (TYPE_CHECKING blocks and imports inside functions aside)."""
    import ast

    src = ROOT / "src"
    modules = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (src / "archsearch").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("archsearch"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else str(node.module))
        graph[name] = {d for d in deps if d in modules and d != name}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for dep in graph[start]:
            if dep == goal or (dep not in seen and (seen.add(dep) or reaches(dep, goal, seen))):
                return True
        return False

    assert [m for m in graph if reaches(m, m, set())] == []


def test_an_objective_the_estimator_does_not_report_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"study": {"name": "mo", "trials": 5,
                        "objectives": ["val_accuracy:max", "energy_joules:min"]},
              "data": "digits", "space": {"name": "chain", "max_depth": 1, "widths": [4]},
              "strategy": "nsga2",
              "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1}}
    path = tmp_path / "mo.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--storage", str(tmp_path / "mo.db")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'energy_joules' is missing" in err and "latency_seconds" in err
    assert len(_records(tmp_path / "mo.db")) == 1  # stopped at the first trial


def test_the_pareto_example_shows_and_exports_its_front(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "pareto.db"
    assert main(["run", str(ROOT / "examples" / "digits-pareto.yaml"), "--storage", str(db),
                 "--trials", "4"]) == 0
    assert "Pareto front" in capsys.readouterr().out
    assert main(["show", str(db), "--front"]) == 0
    assert re.search(r"^\d+\s+front\s", capsys.readouterr().out, re.MULTILINE)
    assert main(["show", str(db), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [o["metric"] for o in shown["objectives"]] == ["val_accuracy", "flops"]
    front = shown["pareto_front"]
    assert front and all(shown["trials"][n]["feasible"] for n in front)
    assert main(["export", str(db), "--out", str(tmp_path / "x")]) == 2
    assert "--trial" in capsys.readouterr().err
    assert main(["export", str(db), "--trial", str(front[0]), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "model.pt").is_file()


def test_every_built_in_name_resolves_or_names_its_missing_extra() -> None:
    from archsearch.errors import MissingExtra

    for kind in registry.KINDS:
        for name in registry.BUILTIN[kind]:
            try:
                target = registry.resolve(kind, name)
            except MissingExtra:  # e.g. optuna or ray not installed
                continue
            assert callable(target), (kind, name)
            registry.settings(target)  # its signature is readable for `archsearch list`
