"""Exports a deployment can load: ONNX (checked in ONNX Runtime) and torch.export's .pt2
(checked by loading it back), one small network per trainable space, then the command
line on a real (tiny) multi-objective study, and the one-line errors of bad input."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from archsearch.cli import main
from archsearch.errors import ConfigError, MissingExtra
from archsearch.export_formats import (
    ONNX_OPSET,
    TOLERANCE,
    ExportError,
    UnsupportedOp,
    export_model,
    parse_formats,
    prepare_folder,
    require_extras,
)
from archsearch.nn.ops import Standardize
from archsearch.space.cells import DartsSpace
from archsearch.space.chain import ChainSpace, MultiBranchSpace
from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201Space


def _onnx() -> None:
    for name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(name, reason="the onnx extra is not installed: "
                                         "pip install 'archsearch[onnx]'")


def _chain() -> tuple[nn.Module, torch.Tensor]:
    """A chain network behind the input standardisation an export carries, taking raw
    uint8 pixels (3x8x8) as an image-folder dataset stores them."""
    space = ChainSpace(max_depth=3, widths=[4], stem_width=4)
    genotype = Genotype.of({
        "depth": 3, "layer0.op": "conv5x5", "layer0.width": 4, "layer0.activation": "gelu",
        "layer0.norm": "batchnorm", "layer1.op": "avgpool3x3", "layer2.op": "sepconv3x3",
        "layer2.width": 4, "layer2.activation": "relu", "layer2.norm": "none"})
    net = space.build_network(genotype, (3, 8, 8), 10)
    model = nn.Sequential(OrderedDict(
        standardize=Standardize(1 / 255, torch.full((3,), 0.5), torch.full((3,), 0.25)), net=net))
    return model, torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8,
                                generator=torch.Generator().manual_seed(0))


def _multi_branch() -> tuple[nn.Module, torch.Tensor]:
    """Skips merged by a channel concatenation and by a sum, on digits-sized input."""
    space = MultiBranchSpace(max_depth=3, widths=[4], stem_width=4,
                             norms=["batchnorm", "layernorm", "none"])
    genotype = Genotype.of({
        "depth": 3, "layer0.op": "sepconv3x3", "layer0.width": 4, "layer0.activation": "gelu",
        "layer0.norm": "layernorm", "layer1.op": "maxpool3x3", "layer1.skip0": True,
        "layer1.merge": "concat", "layer2.op": "conv3x3", "layer2.width": 4,
        "layer2.activation": "relu", "layer2.norm": "batchnorm", "layer2.skip0": True,
        "layer2.skip1": False, "layer2.merge": "sum"})
    return space.build_network(genotype, (1, 8, 8), 10), torch.randn(2, 1, 8, 8)


def _nb201() -> tuple[nn.Module, torch.Tensor]:
    space = NB201Space(channels=4, cells_per_stage=1)
    cell = space.from_string("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+"
                             "|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    return space.build_network(cell, (1, 8, 8), 10), torch.randn(2, 1, 8, 8)


def _darts() -> tuple[nn.Module, torch.Tensor]:
    space = DartsSpace(steps=2, channels=4, cells=3)
    genotype = space.from_cells(
        [("sep_conv_3x3", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("max_pool_3x3", 2)],
        [("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_5x5", 1), ("skip_connect", 2)])
    return space.build_network(genotype, (3, 8, 8), 10), torch.randn(2, 3, 8, 8)


def _derived_oneshot_cell() -> tuple[nn.Module, torch.Tensor]:
    """The cell a one-shot search derives from its supernet's architecture weights."""
    from archsearch.nn.supernet import NB201Supernet

    torch.manual_seed(0)
    supernet = NB201Supernet(channels=4, cells_per_stage=1, num_classes=10, in_channels=1)
    with torch.no_grad():
        for alpha in supernet.arch_parameters():
            alpha.normal_()
    cell = supernet.derive()
    net = NB201Space(channels=4, cells_per_stage=1).build_network(cell, (1, 8, 8), 10)
    return net, torch.randn(2, 1, 8, 8)


NETWORKS: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
    "chain": _chain, "multi-branch": _multi_branch, "nb201": _nb201, "darts": _darts,
    "derived-one-shot-cell": _derived_oneshot_cell,
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> Iterator[None]:
    yield


@pytest.mark.parametrize("name", list(NETWORKS))
def test_pt2_matches_pytorch(name: str, tmp_path: Path) -> None:
    model, example = NETWORKS[name]()
    check = export_model(model, example, tmp_path, ["pt2"])["pt2"]
    print(f"{name}: pt2 max abs difference {check.max_abs_diff:.3g}")
    assert check.max_abs_diff <= TOLERANCE
    assert check.dynamic_batch and check.batches == (1, 8)
    loaded = torch.export.load(str(tmp_path / "model.pt2")).module()
    x = example[:1]
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=TOLERANCE)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_onnx_matches_pytorch_in_onnx_runtime(name: str, tmp_path: Path) -> None:
    _onnx()
    import onnx
    import onnxruntime

    model, example = NETWORKS[name]()
    checks = export_model(model, example, tmp_path, ["onnx", "state_dict"])
    check = checks["onnx"]
    print(f"{name}: onnx max abs difference {check.max_abs_diff:.3g}")
    assert check.max_abs_diff <= TOLERANCE and check.opset == ONNX_OPSET
    assert (tmp_path / "model.pt").is_file() and not list(tmp_path.glob("*.data"))
    graph = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(graph)
    assert {o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")} == {ONNX_OPSET}
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # Any batch size runs, the inputs' dtype kept (raw uint8 pixels for the chain).
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    x = torch.cat([example, example, example])
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - expected).max() <= TOLERANCE


class _Eigh(nn.Module):
    """Eigenvalues of a Gram matrix: ``aten._linalg_eigh`` has no ONNX conversion."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigh(x @ x.transpose(-1, -2))[0]


def test_an_op_onnx_lacks_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    _onnx()
    with pytest.raises(UnsupportedOp) as caught:
        export_model(_Eigh(), torch.randn(2, 1, 4, 4), tmp_path, ["onnx"])
    assert "linalg_eigh" in caught.value.op
    message = str(caught.value)
    assert "linalg_eigh" in message and f"opset {ONNX_OPSET}" in message
    assert "\n" not in message and len(message) < 200
    assert not (tmp_path / "model.onnx").exists()
    # torch.export itself has the op: the pt2 format works.
    assert export_model(_Eigh(), torch.randn(2, 1, 4, 4), tmp_path, ["pt2"])["pt2"].max_abs_diff \
        <= TOLERANCE


class _FixedBatch(nn.Module):
    """A network that only runs batches of 2: the export keeps the batch fixed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(2, -1).sum(1, keepdim=True)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_a_network_that_fixes_its_batch_is_exported_with_that_batch(fmt: str,
                                                                     tmp_path: Path) -> None:
    if fmt == "onnx":
        _onnx()
    check = export_model(_FixedBatch(), torch.randn(2, 3), tmp_path, [fmt])[fmt]
    assert not check.dynamic_batch and check.batches == (2,)
    assert check.max_abs_diff <= TOLERANCE


def test_a_file_that_fails_its_check_is_removed(tmp_path: Path) -> None:
    model, example = _nb201()
    with pytest.raises(ExportError, match=r"model\.pt2 differs from the PyTorch network"):
        export_model(model, example, tmp_path, ["pt2"], tolerance=-1.0)  # nothing passes
    assert not (tmp_path / "model.pt2").exists()


def test_formats_are_parsed_from_repeated_and_comma_separated_options() -> None:
    assert parse_formats(None) == ("state_dict",)
    assert parse_formats(["onnx,pt2", "state_dict", "onnx"]) == ("onnx", "pt2", "state_dict")
    assert parse_formats(["PT2, state-dict"]) == ("pt2", "state_dict")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'; choose from "
                                          "state_dict, onnx, pt2"):
        parse_formats(["onnx,tflite"])


def test_a_missing_onnx_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    # Without the extra the message names every missing package; here at least onnxruntime.
    with pytest.raises(MissingExtra, match=r"needs (\w+, )*onnxruntime(, \w+)*: "
                                           r"pip install 'archsearch\[onnx\]'"):
        require_extras(["pt2", "onnx"])
    require_extras(["pt2", "state_dict"])  # formats that do not need it


def test_an_output_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        prepare_folder(tmp_path / "file" / "out")
    prepare_folder(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


# -- the command line ---------------------------------------------------------------------
MULTI_OBJECTIVE = {
    "study": {"name": "mo", "seed": 1, "trials": 3,
              "objectives": ["val_accuracy:max", "params:min"]},
    "data": "digits",
    "space": {"name": "multi-branch", "max_depth": 2, "widths": [4, 8], "stem_width": 4},
    "strategy": {"name": "random"},
    "estimator": {"name": "training", "epochs": 1, "batch_size": 64, "latency_repeats": 1},
}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    folder = tmp_path_factory.mktemp("mo")
    config = folder / "mo.yaml"
    config.write_text(yaml.safe_dump(MULTI_OBJECTIVE))
    assert main(["run", str(config), "--storage", str(folder / "mo.db")]) == 0
    return folder / "mo.db"


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_export_the_pareto_front_in_every_format(study_db: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _onnx()
    import onnxruntime

    from archsearch.data import load_digits
    from archsearch.export import load_exported

    out = tmp_path / "front"
    capsys.readouterr()
    assert main(["export", str(study_db), "--front", "--format", "onnx,pt2",
                 "--format", "state_dict", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    index = json.loads((out / "front.json").read_text())
    members = [m["trial"] for m in index["trials"]]
    capsys.readouterr()
    assert main(["show", str(study_db), "--json"]) == 0
    assert members == json.loads(capsys.readouterr().out)["pareto_front"] and members
    assert printed.count("model.onnx checked in ONNX Runtime: max abs difference") == len(members)
    x = torch.from_numpy(load_digits().x_test[:16])
    for number in members:
        folder = out / f"trial-{number}"
        assert {p.name for p in folder.iterdir()} == {
            "genotype.json", "metrics.json", "model.pt", "model.onnx", "model.pt2"}
        exports = json.loads((folder / "metrics.json").read_text())["exports"]
        assert set(exports) == {"onnx", "pt2"}
        assert all(e["max_abs_diff"] <= TOLERANCE and e["dynamic_batch"] for e in exports.values())
        # The three files are one network: the state_dict rebuilt by archsearch, the ONNX
        # file in ONNX Runtime and the .pt2 program agree on real digits.
        with torch.no_grad():
            expected = load_exported(folder)(x).numpy()
        session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        assert np.abs(session.run(None, {"input": x.numpy()})[0] - expected).max() <= TOLERANCE
        program = torch.export.load(str(folder / "model.pt2")).module()
        with torch.no_grad():
            assert np.abs(program(x).numpy() - expected).max() <= TOLERANCE


def test_bad_export_requests_are_one_line_errors(study_db: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(study_db)
    out = str(tmp_path / "out")
    assert "has no trial 99 (its trials: 0..2)" in _one_line_error(
        capsys, ["export", db, "--trial", "99", "--out", out])
    (tmp_path / "file").write_text("not a folder")
    assert "is a file, not a folder" in _one_line_error(
        capsys, ["export", db, "--trial", "0", "--out", str(tmp_path / "file" / "out")])
    assert "unknown export format 'tflite'" in _one_line_error(
        capsys, ["export", db, "--trial", "0", "--format", "tflite", "--out", out])
    assert "--front" in _one_line_error(capsys, ["export", db, "--out", out])  # no single best
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert "pip install 'archsearch[onnx]'" in _one_line_error(
        capsys, ["export", db, "--trial", "0", "--format", "onnx", "--out", out])
    assert not (tmp_path / "out").exists()  # each refused before any work


def test_a_file_that_is_not_a_study_is_a_one_line_error(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    text = tmp_path / "notes.db"
    text.write_text("these are notes\n")
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE things (a)")
    db.close()
    out = str(tmp_path / "out")
    for command in ("export", "show"):
        extra = ["--out", out] if command == "export" else []
        assert "empty file" in _one_line_error(capsys, [command, str(empty), *extra])
        assert "not a SQLite database" in _one_line_error(capsys, [command, str(text), *extra])
        assert "without archsearch's tables" in _one_line_error(
            capsys, [command, str(foreign), *extra])
    # Nothing was written into them.
    assert empty.stat().st_size == 0
    with sqlite3.connect(foreign) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["things"]
    db.close()


def test_a_failed_trial_is_refused_for_export(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import archsearch
    from archsearch.errors import TrialFailed

    calls: list[Genotype] = []

    def objective(genotype: Genotype) -> float:
        calls.append(genotype)
        if len(calls) % 2 == 0:
            raise TrialFailed("loss is NaN")
        return float(genotype["depth"])

    db = tmp_path / "py.db"
    with archsearch.create_study(ChainSpace("vector", max_depth=2), storage=db, name="py",
                                 seed=0) as study:
        study.optimize(objective, trials=4)
        failed = next(t.number for t in study.trials if t.state.value == "failed")
    err = _one_line_error(capsys, ["export", str(db), "--trial", str(failed),
                                   "--out", str(tmp_path / "out")])
    assert f"trial {failed} of 'py' failed (TrialFailed: loss is NaN)" in err
