"""Loading benchmark pickles without letting them run code.

``pickle.load`` will call any importable callable a file names, so a tampered table
could run ``os.system``.  ``RestrictedUnpickler`` resolves only the (module, name) pairs
of an explicit allow-list, and each allowed name is mapped to an object *we* choose:
the AnalogNAS-Bench table names its own record classes, which are replaced here by inert
stand-ins, so the benchmark's package (and its ``pkg_resources`` import) is never run.

The allow-lists below are exactly what the shipped files need, found by listing the
``GLOBAL`` / ``STACK_GLOBAL`` opcodes of each file with ``pickletools``.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from archsearch.errors import BenchmarkNotInstalled, UnsafePickleError


class StateRecord:
    """Inert stand-in for a class a pickle names: keeps the pickled attributes, runs nothing.

    ``NEWOBJ`` creates it without arguments and ``BUILD`` hands it the attribute dict.
    """

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        if type(state) is not dict:
            raise UnsafePickleError(
                f"expected an attribute dict for a {type(self).__name__}, "
                f"got {type(state).__name__}"
            )
        self.state = state

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally: attribute access mirrors the original.
        try:
            return object.__getattribute__(self, "state")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.state!r})"


class ArchitectureRecord(StateRecord):
    """Stands in for ``analognasbench.data.Architecture``."""

    __slots__ = ()


class DriftRecord(StateRecord):
    """Stands in for ``analognasbench.data.DriftMeasurement`` (``value`` ± ``uncertainty``)."""

    __slots__ = ()


def _numpy_scalar_reconstructor() -> Any:
    # numpy >= 2 moved it to numpy._core; importing numpy.core there warns.
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


#: The AnalogNAS-Bench ``data.anb``: a dict of 6-int tuples -> Architecture records.
ANALOGNASBENCH_GLOBALS: Mapping[tuple[str, str], Any] = {
    ("analognasbench.data", "Architecture"): ArchitectureRecord,
    ("analognasbench.data", "DriftMeasurement"): DriftRecord,
}

#: NAS-Bench-Graph ``*.bench``: dicts of int -> dict of floats and numpy float scalars.
#: Files written with numpy 1 name ``numpy.core``, with numpy 2 ``numpy._core``.
NASBENCHGRAPH_GLOBALS: Mapping[tuple[str, str], Any] = {
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar_reconstructor(),
    ("numpy._core.multiarray", "scalar"): _numpy_scalar_reconstructor(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed`` (to the objects given).

    >>> import pickle
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": [1.0]})), {}).load()
    {'a': [1.0]}
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, allowed: Mapping[tuple[str, str], Any],
                 source: str = "pickle") -> None:
        super().__init__(file)
        self._allowed = dict(allowed)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in sorted(self._allowed)) or "none"
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from {self._source}: only these globals "
                f"are allowed: {allowed}"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source} uses persistent ids, which are not allowed")


def safe_load(path: str | os.PathLike[str], allowed: Mapping[tuple[str, str], Any]) -> Any:
    """Unpickle ``path`` admitting only the globals in ``allowed``."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, allowed, source=os.fspath(path)).load()


def safe_loads(data: bytes, allowed: Mapping[tuple[str, str], Any]) -> Any:
    """Unpickle bytes admitting only the globals in ``allowed``."""
    return RestrictedUnpickler(io.BytesIO(data), allowed).load()


def find_package_file(package: str, relative: str, distribution: str) -> str:
    """The path of a data file shipped inside an installed package, without importing it.

    ``find_spec`` of a top-level package locates it without running its ``__init__`` (which,
    for analog-nasbench, imports ``pkg_resources`` and pandas).
    """
    import importlib.util

    hint = (f'the {distribution} table is not installed; install it with '
            f'`pip install "archsearch[benchmarks]"` (or `pip install {distribution}`)')
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkNotInstalled(hint)
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, relative)
        if os.path.isfile(candidate):
            return candidate
    raise BenchmarkNotInstalled(f"{hint}; {package} is installed but has no {relative}")
