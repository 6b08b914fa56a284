"""Image folders, as a directory or a tar archive: ``train/<class>/<image>`` and
``test/<class>/<image>``, possibly wrapped in one top-level folder.

Images are decoded once with Pillow into ``uint8`` NCHW arrays (one channel when every
image is grayscale, else RGB) and cached as ``.npz``; see :mod:`archsearch.data.cache`.
Only image files directly inside a class folder count; hidden files and folders (names
starting with ``.``) and anything outside ``train/`` and ``test/`` are ignored.  Archives
are read as a stream, never extracted to disk.
"""

from __future__ import annotations

import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from archsearch.data.cache import cache_path, read_cache, write_cache
from archsearch.data.dataset import Dataset
from archsearch.data.errors import DataError, quote
from archsearch.data.split import stratified_split

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
SPLITS = ("train", "test")

Progress = Callable[[int, int], None]
#: split -> class -> [(name for messages, file path (str) or encoded bytes)]; ``test`` only
#: if the source has a test/ folder
_Tree = dict[str, dict[str, list[tuple[str, str | bytes]]]]
_LAYOUT = "train/<class>/<image> and test/<class>/<image>"


def is_tar_name(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def source_name(path: Path) -> str:
    """A dataset's name from its path: the file name without archive suffixes."""
    name = path.resolve().name
    lower = name.lower()
    for suffix in sorted(TAR_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def load_image_folder(
    path: Path,
    *,
    cache_dir: Path,
    image_size: tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Load an image-folder directory or tar archive, from the cache when it is current."""
    path = path.resolve()
    name = source_name(path)
    size_key = "none" if image_size is None else f"{image_size[0]}x{image_size[1]}"
    tree: _Tree | None = None
    try:
        if path.is_dir():
            tree, fingerprint = _scan_directory(path)
        else:
            st = path.stat()
            fingerprint = [str(path), str(st.st_size), str(st.st_mtime_ns)]
    except OSError as e:
        raise DataError(f"cannot read {quote(path)}: {e}") from e
    cached = cache_path(cache_dir, name, ["image-folder", size_key, *fingerprint])
    arrays = read_cache(cached)
    if arrays is None:
        if tree is None:
            tree = _scan_tar(path)
        arrays = _decode_tree(tree, path, image_size, progress)
        write_cache(cached, arrays)
    return Dataset(
        name=name,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64, copy=False),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64, copy=False),
        classes=tuple(str(c) for c in arrays["classes"].tolist()),
    )


# --- finding the images ---------------------------------------------------------------


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _scan_directory(path: Path) -> tuple[_Tree, list[str]]:
    """The images of a directory and a fingerprint of their paths, sizes and times."""
    root = path
    if not (root / "train").is_dir():
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(subdirs) == 1 and (subdirs[0] / "train").is_dir():
            root = subdirs[0]
        else:
            raise DataError(f"{quote(path)} is not an image folder: expected {_LAYOUT} inside it")
    tree: _Tree = {}
    fingerprint = [str(path)]
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        classes = tree.setdefault(split, {})
        for class_entry in os.scandir(split_dir):
            if class_entry.name.startswith(".") or not class_entry.is_dir():
                continue
            files = classes.setdefault(class_entry.name, [])
            for entry in os.scandir(class_entry.path):
                if _is_image(entry.name) and entry.is_file():
                    st = entry.stat()
                    rel = f"{split}/{class_entry.name}/{entry.name}"
                    files.append((rel, entry.path))
                    fingerprint.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
    fingerprint[1:] = sorted(fingerprint[1:])
    return tree, fingerprint


def _member_parts(name: str) -> tuple[str, ...] | None:
    """The parts of a member path, or None for absolute, ``..`` or hidden ones."""
    if name.startswith("/"):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or any(p.startswith(".") for p in parts):  # also rejects ".."
        return None
    return parts


def _scan_tar(path: Path) -> _Tree:
    """Read the images of a tar archive (as encoded bytes) in one streaming pass."""
    folders: list[tuple[str, ...]] = []  # every folder named by a member
    files: list[tuple[tuple[str, ...], bytes]] = []
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                parts = _member_parts(member.name)
                if parts is None:
                    continue
                folders.append(parts if member.isdir() else parts[:-1])
                if member.isfile() and _is_image(parts[-1]):
                    f = tar.extractfile(member)
                    if f is not None:
                        files.append((parts, f.read()))
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error) as e:
        raise DataError(f"cannot read archive {quote(path)}: {e}") from e

    folders = [p for p in set(folders) if p]
    if any(p[0] == "train" for p in folders):
        prefix: tuple[str, ...] = ()
    else:
        tops = {p[0] for p in folders if len(p) >= 2 and p[1] == "train"}
        if len(tops) != 1:
            raise DataError(
                f"archive {quote(path)} has no train/ folder: expected {_LAYOUT} at its top "
                "or inside one top-level folder"
            )
        prefix = (tops.pop(),)
    n = len(prefix)

    tree: _Tree = {}
    for parts in folders:  # every split and class folder, even one with no images
        if parts[:n] == prefix and len(parts) > n and parts[n] in SPLITS:
            classes = tree.setdefault(parts[n], {})
            if len(parts) > n + 1:
                classes.setdefault(parts[n + 1], [])
    for parts, data in files:
        if parts[:n] == prefix and len(parts) == n + 3 and parts[n] in SPLITS:
            tree[parts[n]][parts[n + 1]].append(("/".join(parts), data))
    return tree


# --- decoding ---------------------------------------------------------------------------


def _decode_tree(
    tree: _Tree, path: Path, image_size: tuple[int, int] | None, progress: Progress | None
) -> dict[str, np.ndarray]:
    train = tree.get("train", {})
    if not train:
        raise DataError(f"{quote(path)} has no class folders in train/: expected {_LAYOUT}")
    for split, classes in tree.items():
        if not classes:
            raise DataError(f"{quote(path)} has no class folders in {split}/")
        for cls, items in classes.items():
            if not items:
                raise DataError(f"empty class folder {split}/{cls} in {quote(path)}: no images")
    class_names = sorted(train)
    index = {c: i for i, c in enumerate(class_names)}
    unknown = sorted(set(tree.get("test", {})) - set(index))
    if unknown:
        raise DataError(
            f"{quote(path)}: test/ has classes with no train/ folder: {', '.join(unknown)}"
        )

    def listing(split: str) -> tuple[list[tuple[str, str | bytes]], np.ndarray]:
        items: list[tuple[str, str | bytes]] = []
        labels: list[int] = []
        for cls in sorted(tree.get(split, {})):
            found = sorted(tree[split][cls], key=lambda item: item[0])
            items.extend(found)
            labels.extend([index[cls]] * len(found))
        return items, np.asarray(labels, dtype=np.int64)

    train_items, y_train = listing("train")
    test_items, y_test = listing("test")
    images = _decode_all(train_items + test_items, image_size, progress)
    x_all = _stack(images)
    x_train, x_test = x_all[: len(train_items)], x_all[len(train_items) :]
    if "test" not in tree:  # no test/ folder: hold out a fixed stratified fifth of train/
        fit, held = stratified_split(y_train)
        if held.size == 0:
            raise DataError(f"{quote(path)} has no test/ folder and too few images to split")
        x_train, x_test, y_train, y_test = x_train[fit], x_train[held], y_train[fit], y_train[held]
    return {
        "x_train": np.ascontiguousarray(x_train),
        "y_train": y_train,
        "x_test": np.ascontiguousarray(x_test),
        "y_test": y_test,
        "classes": np.array(class_names, dtype=str),
    }


def decode_image(source: str | bytes, name: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as ``uint8`` HxW (grayscale) or HxWx3 (RGB), resized to ``size`` =
    (height, width) when given."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            img = im.convert("L" if im.mode in ("1", "L", "LA") else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except Exception as e:  # Pillow raises many kinds for a bad file
        raise DataError(f"cannot decode image {name}: {type(e).__name__}: {e}") from e


def _decode_all(
    items: Sequence[tuple[str, str | bytes]],
    image_size: tuple[int, int] | None,
    progress: Progress | None,
) -> list[np.ndarray]:
    total = len(items)
    step = max(1, total // 100)
    if progress is not None:
        progress(0, total)
    images: list[np.ndarray] = []
    first_name, first_shape = "", (0, 0)
    for i, (name, source) in enumerate(items):
        image = decode_image(source, name, image_size)
        if i == 0:
            first_name, first_shape = name, image.shape[:2]
        elif image.shape[:2] != first_shape:
            (h, w), (h0, w0) = image.shape[:2], first_shape
            raise DataError(
                f"image {name} is {w}x{h} pixels but {first_name} is {w0}x{h0}: all images "
                "must have the same size (or pass image_size=(height, width) to resize them)"
            )
        images.append(image)
        if progress is not None and ((i + 1) % step == 0 or i + 1 == total):
            progress(i + 1, total)
    return images


def _stack(images: list[np.ndarray]) -> np.ndarray:
    """NCHW ``uint8``: one channel if every image is grayscale, else RGB."""
    h, w = images[0].shape[:2]
    gray = all(image.ndim == 2 for image in images)
    out = np.empty((len(images), 1 if gray else 3, h, w), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = image if image.ndim == 2 else image.transpose(2, 0, 1)
        images[i] = out[i]  # drop the decoded copy as we go
    return out
