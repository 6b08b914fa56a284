"""``load_dataset``: a built-in name or a path to an image folder, tar archive or ``.npz``.

Sources:

* ``"digits"``: scikit-learn's 1,797 handwritten 8x8 digits as float32 (N, 1, 8, 8) images
  in [0, 1], with a fixed stratified fifth held out for testing.
* an image-folder directory or ``.tar``/``.tar.gz``/``.tar.xz`` archive of one
  (``train/<class>/<image>``, ``test/<class>/<image>``): uint8 NCHW images, decoded once and
  cached (see :mod:`archsearch.data.imagefolder`).
* a NumPy ``.npz`` with arrays ``x`` and ``y`` and optionally ``x_test`` and ``y_test``;
  never unpickled.

Every source without a test set of its own gets the same fixed stratified split
(:func:`archsearch.data.split.stratified_split`), so the test set never depends on a
study's seed.  Anything that cannot be loaded raises :class:`DataError`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from archsearch.data.cache import default_cache_dir
from archsearch.data.dataset import Dataset
from archsearch.data.errors import DataError, quote
from archsearch.data.imagefolder import Progress, is_tar_name, load_image_folder
from archsearch.data.split import stratified_split

#: Names ``load_dataset`` resolves without a path.
BUILTIN_DATASETS = ("digits",)
_EXPECTED = (
    "expected a built-in name (" + ", ".join(BUILTIN_DATASETS) + "), an image-folder "
    "directory, a .tar/.tar.gz/.tar.xz archive of one, or a .npz file"
)


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    image_size: int | tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load a dataset whole into memory.

    ``cache_dir`` holds decoded image folders (default :func:`default_cache_dir`).
    ``image_size`` (an int for square, or (height, width)) resizes every image of an image
    folder; without it they must all have the same size.  ``progress(done, total)`` is called
    while images are decoded; nothing is printed.  A built-in name wins over a file of the
    same name in the working directory (write ``./digits`` for the file).
    """
    size = _image_size(image_size)
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_DATASETS:
        _no_resize(size, name_or_path)
        return load_digits()
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(f"no dataset at {quote(path)}: {_EXPECTED}")
    if path.is_dir() or (path.is_file() and is_tar_name(path)):
        root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
        return load_image_folder(path, cache_dir=root, image_size=size, progress=progress)
    if path.is_file() and path.name.lower().endswith(".npz"):
        _no_resize(size, path)
        return load_npz(path)
    raise DataError(f"unknown dataset format {quote(path)}: {_EXPECTED}")


def peek_modality(name_or_path: str | os.PathLike[str]) -> str | None:
    """``"image"`` or ``"vector"``, as ``load_dataset(name_or_path).modality`` would say,
    without loading it (a ``.npz``'s ``x`` header is read, nothing else); None when it
    cannot tell (the source is missing or unknown: ``load_dataset`` will say why)."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_DATASETS:
        return "image"
    path = Path(name_or_path).expanduser()
    if path.is_dir() or (path.is_file() and is_tar_name(path)):
        return "image"
    if path.is_file() and path.name.lower().endswith(".npz"):
        try:
            with zipfile.ZipFile(path) as archive, archive.open("x.npy") as member:
                major, _ = np.lib.format.read_magic(member)
                read = (np.lib.format.read_array_header_1_0 if major == 1
                        else np.lib.format.read_array_header_2_0)
                shape, _, _ = read(member)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
        return "vector" if len(shape) == 2 else "image"
    return None


def load_digits() -> Dataset:
    """scikit-learn's digits: (N, 1, 8, 8) float32 in [0, 1], classes "0" to "9"."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x[train]),
        y_train=y[train],
        x_test=np.ascontiguousarray(x[test]),
        y_test=y[test],
        classes=tuple(str(i) for i in range(10)),
    )


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """A ``.npz`` with ``x``, ``y`` and optionally ``x_test``, ``y_test``.

    ``x`` is (N, F) vectors (made float32), (N, H, W) grayscale or (N, C, H, W) images
    (uint8 stays uint8, anything else becomes float32).  ``y`` holds integer labels; they
    become indices into ``classes``, the sorted label values as strings.
    """
    path = Path(path)
    where = quote(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {where} as a NumPy .npz file: {e}") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{where} holds a single array: expected an .npz with arrays x and y")
    with npz:
        keys = set(npz.files)
        missing = [k for k in ("x", "y") if k not in keys]
        if missing:
            found = ", ".join(sorted(keys)) or "none"
            raise DataError(
                f"{where} has no array {missing[0]!r}: expected arrays x and y (and optionally "
                f"x_test and y_test); found: {found}"
            )
        if ("x_test" in keys) != ("y_test" in keys):
            raise DataError(f"{where} has only one of x_test and y_test: give both or neither")
        wanted = ("x", "y", "x_test", "y_test") if "x_test" in keys else ("x", "y")
        arrays: dict[str, np.ndarray] = {}
        for key in wanted:
            try:
                arrays[key] = npz[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                raise DataError(f"cannot read array {key!r} of {where}: {e}") from e

    x = _features(arrays["x"], "x", where)
    y = _labels(arrays["y"], "y", len(x), where)
    if "x_test" in arrays:
        x_test = _features(arrays["x_test"], "x_test", where)
        y_test = _labels(arrays["y_test"], "y_test", len(x_test), where)
        if x_test.shape[1:] != x.shape[1:] or x_test.dtype != x.dtype:
            raise DataError(
                f"x_test in {where} is {x_test.dtype}{list(x_test.shape[1:])} per example but "
                f"x is {x.dtype}{list(x.shape[1:])}: they must match"
            )
    values = np.unique(y)
    index = np.searchsorted(values, y).astype(np.int64)
    classes = tuple(str(v) for v in values.tolist())
    if "x_test" in arrays:
        unseen = np.setdiff1d(y_test, values)
        if unseen.size:
            shown = ", ".join(str(v) for v in unseen[:5].tolist())
            raise DataError(
                f"y_test in {where} has labels that never occur in y ({shown}): every class "
                "needs at least one training example"
            )
        return Dataset(
            name=path.stem,
            x_train=x,
            y_train=index,
            x_test=x_test,
            y_test=np.searchsorted(values, y_test).astype(np.int64),
            classes=classes,
        )
    train, test = stratified_split(index)
    if test.size == 0:
        raise DataError(
            f"{where} has too few examples to hold out a test set: add x_test and y_test, or "
            "at least two examples of some class"
        )
    return Dataset(
        name=path.stem,
        x_train=np.ascontiguousarray(x[train]),
        y_train=index[train],
        x_test=np.ascontiguousarray(x[test]),
        y_test=index[test],
        classes=classes,
    )


def _features(x: np.ndarray, key: str, where: str) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DataError(f"{key} in {where} has dtype {x.dtype}: expected numbers")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim not in (2, 4):
        raise DataError(
            f"{key} in {where} has shape {x.shape}: expected (N, F) vectors, (N, H, W) "
            "grayscale images or (N, C, H, W) images"
        )
    if x.shape[0] == 0 or x.size == 0:
        raise DataError(f"{key} in {where} is empty (shape {x.shape})")
    if x.ndim == 4 and x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    out = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{key} in {where} has NaN or infinite values")
    return out


def _labels(y: np.ndarray, key: str, n: int, where: str) -> np.ndarray:
    if y.dtype.kind not in "biu":
        raise DataError(f"{key} in {where} has dtype {y.dtype}: expected integer class labels")
    if y.ndim != 1:
        raise DataError(f"{key} in {where} has shape {y.shape}: expected a 1-D array of labels")
    x_key = "x" if key == "y" else "x_test"
    if y.shape[0] != n:
        raise DataError(f"{key} in {where} has {y.shape[0]} labels but {x_key} has {n} examples")
    return y


def _image_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise DataError(f"image_size must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


def _no_resize(size: tuple[int, int] | None, source: str | Path) -> None:
    if size is not None:
        raise DataError(f"image_size applies only to image folders and archives, not {source}")
