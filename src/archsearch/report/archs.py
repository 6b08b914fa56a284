"""The distinct architectures of a report, each stored once.

Many trials share an architecture (repeats, one-shot epochs deriving the same cell), and
a 10,000-trial page must stay small, so trials refer to an architecture by index.  Each
architecture keeps its text form (``space.format``) and its diagram spec
(``archsearch.report.diagram``), the spec packed over one table of strings: an NB201 cell
takes about 60 bytes instead of 170, since op names and node names repeat in every spec.
``assets/report.js`` unpacks a spec before handing it to ``window.archsearchDiagram``.
"""

from __future__ import annotations

from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.report.diagram import diagram, values_panel
from archsearch.space.base import SearchSpace
from archsearch.space.genotype import Genotype


class ArchCatalog:
    """Architectures by key, in the order first seen; ``add`` returns the index."""

    def __init__(self, space: SearchSpace | None) -> None:
        self.space = space
        self._index: dict[str, int] = {}
        self._strings: dict[str, int] = {}
        self.texts: list[str] = []
        self.specs: list[list[Any]] = []

    def add(self, genotype: Genotype, key: str | None = None) -> int:
        key = key or genotype.to_json()
        found = self._index.get(key)
        if found is not None:
            return found
        self._index[key] = len(self.texts)
        self.texts.append(self._text(genotype))
        self.specs.append(self._pack(self._spec(genotype)))
        return self._index[key]

    def payload(self) -> dict[str, Any]:
        return {"strings": list(self._strings), "specs": self.specs, "texts": self.texts}

    def _text(self, genotype: Genotype) -> str:
        if self.space is not None:
            try:
                return self.space.format(genotype)
            except (ArchsearchError, ValueError, KeyError):  # a genotype the space rejects
                pass
        return genotype.to_json()

    def _spec(self, genotype: Genotype) -> dict[str, Any]:
        if self.space is not None:
            try:
                return diagram(self.space, genotype)
            except (ArchsearchError, ValueError, KeyError):
                pass  # drawn as its decisions below, like a space the diagram cannot place
        return decisions_spec(genotype)

    def _pack(self, spec: dict[str, Any]) -> list[Any]:
        """``[[title, [node, ...], [src, dst, label, src, dst, label, ...]], ...]`` with every
        string replaced by its index in the string table."""
        packed = []
        for panel in spec["panels"]:
            edges: list[int] = []
            for src, dst, label in panel["edges"]:
                edges += [int(src), int(dst), self._string(str(label))]
            packed.append([self._string(panel["title"]),
                           [self._string(node) for node in panel["nodes"]], edges])
        return packed

    def _string(self, text: str) -> int:
        return self._strings.setdefault(text, len(self._strings))


def decisions_spec(genotype: Genotype) -> dict[str, Any]:
    """For a space the report cannot rebuild (a study made in Python records none): one
    ``name=value`` box per decision, chained, as the diagram module draws unknown spaces."""
    return {"panels": [values_panel("genotype", genotype)]}
