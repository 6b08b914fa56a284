"""Architecture diagrams for the study report: a compact, JSON-able *spec* per genotype.

The report may hold 10,000 trials and must stay small, so Python ships each architecture
as a few dozen bytes of structure and one JavaScript function (``assets/diagram.js``,
``window.archsearchDiagram``) draws any spec as SVG in the browser.  A spec is::

    {"panels": [{"title": str, "nodes": [str, ...], "edges": [[src, dst, label], ...]}]}

Nodes are in topological order (inputs first, output last), every edge has ``src < dst``
and ``label`` is ``""`` for a plain connection.  One layout (an arc diagram) fits every
kind, so the spec says nothing about positions.

>>> from archsearch.space import NB201Space
>>> space = NB201Space()
>>> spec = diagram(space, space.from_string(
...     "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"))
>>> spec["panels"][0]["nodes"], len(spec["panels"][0]["edges"])
(['in', '1', '2', 'out'], 4)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from archsearch.space.base import DecisionSpace, SearchSpace
from archsearch.space.cells import CELL_TYPES, DartsSpace
from archsearch.space.chain import ChainSpace, LayerSpec
from archsearch.space.genotype import Genotype, Value
from archsearch.space.nb201 import NB201Space
from archsearch.tabular.nbgraph import NBGraphSpace

#: Labels longer than this are cut (with "…") so that a node box stays readable.
MAX_LABEL = 23
#: NB201's zero op: the edge carries nothing, so it is not drawn.
_ZERO_OP = "none"
#: Short norm names in layer labels, as ``archsearch.space.chain.format_layers`` spells them.
_NORM_ABBREV = {"batchnorm": "bn", "layernorm": "ln"}

#: One edge while a panel is built: (source node, target node, label).
Edge = tuple[int, int, str]


class Panel(TypedDict):
    """One drawing: nodes in topological order and edges ``[src, dst, label]``."""

    title: str
    nodes: list[str]
    edges: list[list[int | str]]


def diagram(space: SearchSpace, genotype: Genotype) -> dict[str, Any]:
    """The diagram spec of ``genotype`` in ``space`` (deterministic, JSON-able).

    Built-in spaces are drawn as what they are (cells as op-labelled DAGs, chains as layer
    sequences with their skips); a space with a ``diagram(genotype)`` method draws itself;
    any other space gets a chain of ``name=value`` boxes.  An invalid genotype of a
    built-in space raises the space's ``InvalidGenotype``.
    """
    own = getattr(space, "diagram", None)
    if callable(own):  # a plug-in point: a user space may know its own structure best
        spec = own(genotype)
        check_spec(spec)
        return dict(spec)
    return {"panels": _panels(space, genotype)}


def _panels(space: SearchSpace, genotype: Genotype) -> list[Panel]:
    # NBGraphSpace and the cell spaces subclass DecisionSpace, so they are tested first.
    if isinstance(space, NB201Space):
        return [_nb201_panel(space, genotype)]
    if isinstance(space, DartsSpace):
        return [_darts_panel(space, genotype, cell) for cell in CELL_TYPES]
    if isinstance(space, ChainSpace):  # MultiBranchSpace included
        return [_chain_panel(space, genotype)]
    if isinstance(space, NBGraphSpace):
        return [_nbgraph_panel(space, genotype)]
    return [_fallback_panel(space, genotype)]


def _panel(title: str, nodes: Iterable[str], edges: Iterable[Edge]) -> Panel:
    """A panel with labels cut to ``MAX_LABEL`` and edges as JSON lists."""
    return {
        "title": title,
        "nodes": [_short(n) for n in nodes],
        "edges": [[src, dst, _short(label)] for src, dst, label in edges],
    }


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


# -- cells ---------------------------------------------------------------------------------
def _nb201_panel(space: NB201Space, genotype: Genotype) -> Panel:
    """Nodes in, 1, 2, out (cell nodes 0..3); edge j -> i carries its op.  A ``none`` edge
    is a zero (it adds nothing to node i), so it is left out; a skip is a real edge.
    NB201's canonical edge order is already by target, then source, as in other panels."""
    edges = [(j, i, op) for i, j, op in space.edges(genotype) if op != _ZERO_OP]
    return _panel("cell", ["in", "1", "2", "out"], edges)


def _darts_panel(space: DartsSpace, genotype: Genotype, cell_type: str) -> Panel:
    """Inputs c_{k-2}, c_{k-1} (DARTS nodes 0, 1), intermediate nodes 0.. (DARTS 2..),
    then ``out``, the concatenation of every intermediate node."""
    steps = space.steps
    out = steps + 2
    nodes = ["c_{k-2}", "c_{k-1}", *(str(k) for k in range(steps)), "out"]
    pairs = space.cell(genotype, cell_type)  # two (op, input) per node, in node order
    edges = [(source, 2 + k // 2, op) for k, (op, source) in enumerate(pairs)]
    edges += [(node, out, "") for node in range(2, out)]
    return _panel(cell_type, nodes, sorted(edges, key=lambda e: (e[1], e[0])))


# -- chains and multi-branch networks --------------------------------------------------------
def _chain_panel(space: ChainSpace, genotype: Genotype) -> Panel:
    """``input`` (the stem's output, node 0), one node per layer (layer i is node i + 1),
    ``output``.  Layer i always reads node i; each extra input is a skip edge labelled with
    the layer's merge rule, so a reader sees both where it comes from and how it joins."""
    layers = space.layers(genotype)
    nodes = ["input", *(_layer_label(layer) for layer in layers), "output"]
    edges: list[Edge] = []
    for i, layer in enumerate(layers):
        edges += [(j, i + 1, layer.merge) for j in layer.inputs if j != i]
        edges.append((i, i + 1, ""))
    edges.append((len(layers), len(layers) + 1, ""))
    return _panel("network", nodes, sorted(edges, key=lambda e: (e[1], e[0])))


def _layer_label(layer: LayerSpec) -> str:
    """E.g. ``conv3x3 32 relu bn``; the norm is omitted when there is none."""
    parts = [layer.op]
    if layer.width is not None:
        parts.append(str(layer.width))
    if layer.activation is not None:
        parts.append(layer.activation)
    if layer.norm is not None and layer.norm != "none":
        parts.append(_NORM_ABBREV.get(layer.norm, layer.norm))
    return " ".join(parts)


# -- NAS-Bench-Graph -------------------------------------------------------------------------
def _nbgraph_panel(space: NBGraphSpace, genotype: Genotype) -> Panel:
    """``input``, the 4 GNN layers (node i + 1 applies op i to the node it links to), then
    ``output``, which every layer that no other layer reads feeds (the benchmark's rule).

    The canonical structure is drawn, the one the benchmark's table key and the network
    builders use, so two spellings of one architecture get one drawing."""
    links, ops = space.structure(genotype)
    read = set(links)
    out = len(ops) + 1
    edges = [(parent, i + 1, "") for i, parent in enumerate(links)]
    edges += [(node, out, "") for node in range(1, out) if node not in read]
    return _panel("network", ["input", *ops, "output"], sorted(edges, key=lambda e: (e[1], e[0])))


# -- any other space -------------------------------------------------------------------------
def _fallback_panel(space: SearchSpace, genotype: Genotype) -> Panel:
    """One ``name=value`` box per decision, chained: no structure is known, but the values
    are still readable at a glance.  The canonical form drops decisions that are inactive
    (they do not change the network), and a ``DecisionSpace`` lists them as declared."""
    canonical = space.canonicalize(genotype)
    values = _declaration_order(space, canonical) if isinstance(space, DecisionSpace) else canonical
    return values_panel(space.name or type(space).__name__, values)


def values_panel(title: str, values: Mapping[str, Value]) -> Panel:
    """One ``name=value`` box per entry of ``values``, chained (also the report's drawing of
    a genotype whose space it cannot rebuild)."""
    nodes = [f"{name}={_value_text(value)}" for name, value in values.items()]
    edges = [(k, k + 1, "") for k in range(len(nodes) - 1)]
    return _panel(title, nodes, edges)


def _declaration_order(space: DecisionSpace, values: Mapping[str, Value]) -> dict[str, Value]:
    """``values`` as the space declares its decisions; any it does not declare (a subclass's
    own canonical form may add some) follow in their own order."""
    order = {d.name: k for k, d in enumerate(space.decisions)}
    names = sorted(values, key=lambda name: order.get(name, len(order)))  # stable: keeps the rest
    return {name: values[name] for name in names}


def _value_text(value: Value) -> str:
    # JSON's spelling, so a bool reads the same as in the genotype's JSON.
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# -- checking a spec -------------------------------------------------------------------------
def check_spec(spec: object) -> None:
    """Raise ``ValueError`` naming the first way ``spec`` breaks the diagram contract
    (used on a plug-in space's own spec, before the browser has to draw it)."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("panels"), list):
        raise ValueError(f"a diagram spec is a dict with a 'panels' list, got {spec!r:.80}")
    for p, panel in enumerate(spec["panels"]):
        if not isinstance(panel, Mapping) or not isinstance(panel.get("title"), str):
            raise ValueError(f"panel {p} needs a 'title' string")
        nodes, edges = panel.get("nodes"), panel.get("edges")
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise ValueError(f"panel {p} ({panel['title']}) needs 'nodes', a list of strings")
        if not isinstance(edges, list):
            raise ValueError(f"panel {p} ({panel['title']}) needs 'edges', a list")
        for edge in edges:
            if not _is_edge(edge, len(nodes)):
                raise ValueError(f"panel {p} ({panel['title']}): {edge!r} is not "
                                 f"[src, dst, label] with 0 <= src < dst < {len(nodes)}")


def _is_edge(edge: object, n_nodes: int) -> bool:
    if not isinstance(edge, list | tuple) or len(edge) != 3:
        return False
    src, dst, label = edge
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (src, dst))
    return ints and isinstance(label, str) and 0 <= src < dst < n_nodes
