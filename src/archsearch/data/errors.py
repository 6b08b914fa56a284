"""The one exception the data module raises for a dataset it cannot load."""

from __future__ import annotations

import os

from archsearch.errors import DataError as _BaseDataError


class DataError(_BaseDataError):
    """A dataset that cannot be loaded.

    The message is a single line that names the path (or array, or file inside an archive)
    and says what was expected, so a command line can print it as it is.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


def quote(path: str | os.PathLike[str]) -> str:
    """A path as it appears in messages: quoted, with odd characters escaped."""
    return repr(os.fspath(path))
