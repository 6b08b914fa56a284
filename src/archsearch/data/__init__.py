"""Datasets: built-in ones, image folders (directories or tar archives) and ``.npz`` files,
loaded whole into a :class:`Dataset`.  Importing this package loads no data."""

from archsearch.data.cache import CACHE_ENV, default_cache_dir
from archsearch.data.dataset import Dataset
from archsearch.data.errors import DataError
from archsearch.data.loaders import (
    BUILTIN_DATASETS,
    load_dataset,
    load_digits,
    load_npz,
    peek_modality,
)
from archsearch.data.split import nested_subset, stratified_split

__all__ = [
    "BUILTIN_DATASETS",
    "CACHE_ENV",
    "DataError",
    "Dataset",
    "default_cache_dir",
    "load_dataset",
    "load_digits",
    "load_npz",
    "nested_subset",
    "peek_modality",
    "stratified_split",
]
