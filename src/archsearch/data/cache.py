"""Decoded datasets cached as ``.npz`` files (plain arrays, never pickles).

A cache file is named after the dataset and a hash of everything that determines its
contents (the source's absolute path, size and modification time, the resize option and
the cache format version), so a changed source misses and is decoded again.  Files are
written to a temporary name and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Environment variable naming archsearch's cache root; datasets go in its ``datasets/``.
CACHE_ENV = "ARCHSEARCH_CACHE"
#: Bump when the decoded layout changes, so old cache files are no longer used.
FORMAT_VERSION = 1
_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "classes")


def default_cache_dir() -> Path:
    """``$ARCHSEARCH_CACHE/datasets`` if set, else ``$XDG_CACHE_HOME/archsearch/datasets``
    (``~/.cache/archsearch/datasets`` without it)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "datasets"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "archsearch" / "datasets"


def cache_path(cache_dir: Path, name: str, fingerprint: Iterable[str]) -> Path:
    """Where the decoded arrays of the source described by ``fingerprint`` live."""
    digest = hashlib.sha256()
    digest.update(f"archsearch-dataset-cache\0{FORMAT_VERSION}".encode())
    for part in fingerprint:
        digest.update(b"\0")
        digest.update(part.encode("utf-8", "surrogateescape"))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "dataset"
    return cache_dir / f"{safe}-{digest.hexdigest()[:24]}.npz"


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["version"]) != FORMAT_VERSION:
                return None
            return {key: npz[key] for key in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def write_cache(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically; a cache that cannot be written only warns."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        name = str(path.parent / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as umask allows
        tmp = name
        payload: dict[str, Any] = {**arrays, "version": np.array(FORMAT_VERSION)}
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)  # no object arrays: loads with allow_pickle=False
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        warnings.warn(f"could not write dataset cache {str(path)!r}: {e}", stacklevel=3)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
