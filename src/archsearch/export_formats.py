"""A trained network written in formats a deployment can load, each checked against the
PyTorch network it came from.

- ``state_dict``: ``model.pt``, the weights (``archsearch.export.load_exported`` rebuilds
  the network around them); archsearch is needed to load it.
- ``onnx``: ``model.onnx`` from ``torch.onnx.export``'s torch.export-based exporter
  (``dynamo=True``: the TorchScript exporter is deprecated and to be removed) at opset
  ``ONNX_OPSET``, weights inside the file, then run in ONNX Runtime.
- ``pt2``: ``model.pt2`` from ``torch.export.export`` and ``torch.export.save``, then
  loaded back with ``torch.export.load``.

Both checks feed the file and the PyTorch network the same seeded random inputs and
require the largest absolute difference of the outputs to be at most ``TOLERANCE``
(fp32).  The batch dimension is dynamic (named ``batch``) unless the network fixes it.

>>> import torch
>>> from pathlib import Path
>>> from tempfile import mkdtemp
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
>>> checks = export_model(net, torch.randn(2, 1, 2, 2), Path(mkdtemp()), ["pt2"])
>>> checks["pt2"].max_abs_diff <= TOLERANCE, checks["pt2"].dynamic_batch
(True, True)
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch.errors import ArchsearchError, ConfigError, MissingExtra

if TYPE_CHECKING:
    import torch
    from torch import nn

#: What ``archsearch export --format`` accepts, and the file each one writes.
FILES = {"state_dict": "model.pt", "onnx": "model.onnx", "pt2": "model.pt2"}
FORMATS = tuple(FILES)
#: ONNX opset of ``model.onnx``: the one the exporter's op library (onnxscript's torchlib)
#: is written for, so no version conversion runs; ONNX Runtime has run it since 1.14.
ONNX_OPSET = 18
#: The largest absolute difference from PyTorch that a check accepts (fp32 outputs).
TOLERANCE = 1e-4
#: The batch sizes a check runs (the example's own size as well where the batch is fixed).
CHECK_BATCHES = (1, 8)
#: The packages the onnx format needs: ``pip install 'archsearch[onnx]'``.
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")


class ExportError(ArchsearchError, RuntimeError):
    """A network that cannot be written in a format, or a file that does not match it."""


class UnsupportedOp(ExportError):
    """The ONNX exporter has no conversion for an op of the network; ``op`` names it."""

    def __init__(self, message: str, op: str) -> None:
        super().__init__(message)
        self.op = op


@dataclass(frozen=True)
class ExportCheck:
    """One written format and how it compared with the PyTorch network."""

    format: str
    file: str
    max_abs_diff: float
    dynamic_batch: bool
    batches: tuple[int, ...]
    opset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_formats(values: Iterable[str] | None) -> tuple[str, ...]:
    """``--format`` values (repeated or comma-separated) in the order first given;
    ``state_dict`` when none.  An unknown one is a ``ConfigError`` listing the known."""
    chosen: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip().lower().replace("-", "_")
            if not name:
                continue
            if name not in FILES:
                raise ConfigError(f"unknown export format {name!r}; choose from "
                                  f"{', '.join(FORMATS)}")
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen) or ("state_dict",)


def require_extras(formats: Iterable[str]) -> None:
    """Raise ``MissingExtra`` (one line, naming the install command) when a format's
    optional packages are not installed; call it before any slow work."""
    if "onnx" not in formats:
        return
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtra(f"the onnx format needs {', '.join(missing)}: "
                           "pip install 'archsearch[onnx]'")


def prepare_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) and make sure files can be written in it, or
    raise a one-line ``ExportError`` saying why not."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ExportError(f"cannot write to {folder}: {parent} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create {folder}: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write to {folder}: permission denied")


def export_model(model: nn.Module, example_input: torch.Tensor, folder: Path,
                 formats: Sequence[str], *, seed: int = 0,
                 tolerance: float = TOLERANCE) -> dict[str, ExportCheck]:
    """Write ``model`` (put in eval mode) to ``folder`` in each of ``formats`` and check
    the onnx and pt2 files against it; returns their checks by format.

    ``example_input`` is a batch of at least 2 inputs as the network takes them (its
    dtype too: raw ``uint8`` pixels stay ``uint8``).  Check inputs are random, drawn
    from ``seed``: ``uint8`` uniform over 0..255, floats normal with the example's mean
    and spread.  Raises ``ExportError`` (``UnsupportedOp`` for an op ONNX lacks) in one
    line, and removes a file that failed its check.
    """
    import torch

    unknown = [f for f in formats if f not in FILES]
    if unknown:
        raise ConfigError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    require_extras(formats)
    model.eval()
    checks: dict[str, ExportCheck] = {}
    for name in formats:
        path = folder / FILES[name]
        if name == "state_dict":
            torch.save(model.state_dict(), path)
            continue
        with _quiet():
            run = _export_onnx(model, example_input, path) if name == "onnx" else \
                _export_pt2(model, example_input, path)
            dynamic = _onnx_batch_is_dynamic(path) if name == "onnx" else run.dynamic
            batches = CHECK_BATCHES if dynamic else (int(example_input.shape[0]),)
            difference = 0.0
            for k, batch in enumerate(batches):
                x = random_inputs(example_input, batch, seed + k)
                with torch.no_grad():
                    expected = model(x).float().numpy()
                got = run.predict(x)
                difference = max(difference, float(abs(got - expected).max()))
        if not difference <= tolerance:  # NaN fails too
            path.unlink(missing_ok=True)
            raise ExportError(f"{path.name} differs from the PyTorch network by up to "
                              f"{difference:.3g} (more than {tolerance:g}) on random inputs: "
                              "removed")
        checks[name] = ExportCheck(name, path.name, difference, dynamic, tuple(batches),
                                   ONNX_OPSET if name == "onnx" else None)
    return checks


def random_inputs(example: torch.Tensor, batch: int, seed: int) -> torch.Tensor:
    """``batch`` seeded random inputs of ``example``'s shape (batch aside) and dtype."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    shape = (batch, *example.shape[1:])
    if not example.dtype.is_floating_point:
        high = 256 if example.dtype == torch.uint8 else 2
        return torch.randint(0, high, shape, generator=generator, dtype=example.dtype)
    values = example.float()
    spread = float(values.std()) if values.numel() > 1 else 1.0
    x = torch.randn(shape, generator=generator) * (spread or 1.0) + float(values.mean())
    return x.to(example.dtype)


# -- the two exporters ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Written:
    """A written file and how to run it (on a tensor, giving a numpy array)."""

    predict: Any
    dynamic: bool


def _batch_dim() -> Any:
    import torch

    return ({0: torch.export.Dim("batch", min=1)},)


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> _Written:
    import onnxruntime
    import torch

    try:
        torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=ONNX_OPSET,
                          external_data=False, verbose=False, input_names=["input"],
                          output_names=["logits"], dynamic_shapes=_batch_dim())
    except Exception as err:  # the exporter's errors have no common base class
        path.unlink(missing_ok=True)
        op = unsupported_op(err)
        if op is not None:
            raise UnsupportedOp(f"the network cannot be exported to ONNX (opset {ONNX_OPSET}): "
                                f"no conversion for the op {op}; the pt2 and state_dict formats "
                                "still work", op) from None
        raise ExportError(f"the ONNX export failed: {_summary(err)}") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: torch.Tensor) -> Any:
        return session.run(None, {name: x.numpy()})[0]

    return _Written(predict, True)


def _export_pt2(model: nn.Module, example: torch.Tensor, path: Path) -> _Written:
    import torch

    try:
        try:
            program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())
            dynamic = True
        except Exception as err:
            if "Constraints violated" not in str(err):
                raise
            program = torch.export.export(model, (example,))  # the network fixes the batch
            dynamic = False
        torch.export.save(program, str(path))
    except Exception as err:
        path.unlink(missing_ok=True)
        raise ExportError(f"torch.export cannot export the network: {_summary(err)}") from None
    loaded = torch.export.load(str(path)).module()

    def predict(x: torch.Tensor) -> Any:
        with torch.no_grad():
            return loaded(x).float().numpy()

    return _Written(predict, dynamic)


def _onnx_batch_is_dynamic(path: Path) -> bool:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return all(bool(value.type.tensor_type.shape.dim[0].dim_param)
               for value in (*graph.input, *graph.output))


# -- error messages ------------------------------------------------------------------------
_OP_PATTERNS = (
    re.compile(r"OpOverload\(op='([\w.:]+)'"),            # the dynamo exporter's dispatcher
    re.compile(r"target=torch\.ops\.([\w.]+?)(?:\.default)?[\]\s(]"),
    re.compile(r"operator '?([\w:.]+)'? to ONNX"),          # the TorchScript exporter
    re.compile(r"Unsupported FX nodes: \{'call_function': \['([\w.:]+)'"),
)


def unsupported_op(err: BaseException) -> str | None:
    """The op an ONNX export error says has no conversion (``aten._linalg_eigh``...),
    found in the error or its causes; None for any other kind of failure."""
    texts: list[str] = []
    seen: BaseException | None = err
    while seen is not None and len(texts) < 20:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(texts)
    if not re.search(r"No ONNX function found|not supported|Unsupported FX nodes|"
                     r"No decompositions registered", text):
        return None
    for pattern in _OP_PATTERNS:
        found = pattern.search(text)
        if found:
            return found.group(1).replace("::", ".")
    return None


def _summary(err: BaseException) -> str:
    """The innermost cause's first line: exporter errors wrap the real one in pages of
    advice."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    line = re.sub(r"\x1b\[[0-9;]*m", "", lines[0]) if lines else type(inner).__name__
    return line if len(line) <= 300 else line[:299] + "…"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' warnings and log lines (e.g. "torchvision is not installed") aside."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
