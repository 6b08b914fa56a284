"""Supernets: a cell space's network in which every edge holds all its candidate ops.

Each edge is a ``MixedOp``; how it mixes them in one forward pass is a ``Mixture`` per
cell type: a weight per (edge, op) (DARTS: ``softmax(alpha)``) and optionally one chosen op
per edge, the only one computed (GDAS).  The architecture parameters ``alpha`` (one
``edges x ops`` matrix per cell type, initialised ``1e-3 * randn``) are module parameters,
so ``state_dict()`` holds them, but ``arch_parameters()`` and ``weight_parameters()`` keep
them apart for the two optimisers of a bilevel search.  ``derive()`` turns the current
alphas into a genotype of the space.

As in the published search code, cell BNs have ``affine=False``; the DARTS supernet puts a
BN(affine=False) after each pooling op.  ``none`` adds zero, so it is never computed; its
alpha still competes in the softmax.  With ``auxiliary_skip`` every edge also adds
``skip_beta * skip(x)`` outside the softmax (DARTS-, Chu et al. 2021); the search sets
``skip_beta`` each epoch.  ``auxiliary_op`` says what ``skip`` is on a stride-1 edge:
``"skip"``, the identity (DARTS-), or ``"skip_bn"``, the identity followed by an
affine-free BN (see ``archsearch.oneshot.remedy`` for why); a stride-2 edge of the DARTS
space uses DARTS's FactorizedReduce either way.

Edges can be *fixed* (perturbation-based selection, ``archsearch.oneshot.selection``): a
buffer ``fixed_<cell type>`` per cell type, ``edges x ops``, NaN on the rows still free;
a fixed row replaces ``softmax(alpha)`` on its edge (one-hot: the edge's op is decided;
zeros: the edge is dropped from its node).  The buffers are in ``state_dict()``, so a
checkpoint keeps the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archsearch.nn.cells import (
    FactorizedReduce,
    darts_cell_plan,
    darts_op,
    darts_preprocess,
    darts_stem,
    nb201_body,
    nb201_head,
    nb201_op,
    nb201_stem,
)
from archsearch.space.cells import DARTS_PRIMITIVES, DartsSpace
from archsearch.space.genotype import Genotype
from archsearch.space.nb201 import NB201_EDGE_NAMES, NB201_EDGES, NB201_OPS, NB201Space

#: Per edge, the weight of each op as 0-d tensors (rows of a Mixture, unbound once).
_Rows = Sequence[Sequence[torch.Tensor]]

#: What an auxiliary skip applies on a stride-1 edge (``auxiliary_op``).
AUXILIARY_OPS = ("skip", "skip_bn")


def _auxiliary_skip(kind: str, c: int, stride: int, track: bool) -> nn.Module:
    if kind not in AUXILIARY_OPS:
        raise ValueError(f"auxiliary_op must be one of {AUXILIARY_OPS}, got {kind!r}")
    if stride == 2:
        return FactorizedReduce(c, c, affine=False)
    if kind == "skip_bn":
        return nn.BatchNorm2d(c, affine=False, track_running_stats=track)
    return nn.Identity()


@dataclass(frozen=True)
class Mixture:
    """How the edges of one cell type mix their ops in one forward pass.

    ``weights`` is ``(edges, ops)``.  Without ``chosen`` every op is weighted and summed
    (DARTS).  With ``chosen`` (one op index per edge) only that op is computed, scaled by
    its weight; the other weights are added as scalars, zero in value but carrying their
    gradient (GDAS's straight-through trick).
    """

    weights: torch.Tensor
    chosen: Sequence[int] | None = None


class MixedOp(nn.Module):
    """All candidate ops of one edge (and the optional auxiliary skip)."""

    def __init__(self, ops: Sequence[nn.Module], skip: nn.Module | None = None) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.computed = [k for k, op in enumerate(ops) if not getattr(op, "is_zero", False)]
        self.skip = skip

    def forward(self, x: torch.Tensor, weights: Sequence[torch.Tensor], chosen: int | None,
                skip_beta: float) -> torch.Tensor:
        if chosen is None:
            out: torch.Tensor | None = None
            for k in self.computed:
                term = weights[k] * self.ops[k](x)
                out = term if out is None else out + term
            assert out is not None, "a mixed op needs one op other than 'none'"
        else:
            out = weights[chosen] * self.ops[chosen](x)
            others = [w for k, w in enumerate(weights) if k != chosen]
            if others:
                out = out + torch.stack(others).sum()
        if self.skip is not None and skip_beta:
            out = out + skip_beta * self.skip(x)
        return out


def _rows(mixture: Mixture) -> list[tuple[torch.Tensor, ...]]:
    return [row.unbind(0) for row in mixture.weights.unbind(0)]


class Supernet(nn.Module):
    """What the one-shot searches need from a supernet (both spaces' supernets are one)."""

    #: The candidate ops, in alpha-column order.
    ops: tuple[str, ...]
    #: The weight of the auxiliary skip connections (used only with ``auxiliary_skip``).
    skip_beta: float
    auxiliary_skip: bool

    def alphas(self) -> dict[str, nn.Parameter]:
        """The architecture parameters by cell type."""
        raise NotImplementedError

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas().values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    #: Per cell type, groups of alpha rows (the incoming edges of one node) of which a
    #: genotype keeps two; empty where every edge is kept (NAS-Bench-201).
    input_groups: dict[str, tuple[tuple[int, ...], ...]]

    def fixed(self) -> dict[str, torch.Tensor]:
        """The fixed rows by cell type (NaN where the edge is free)."""
        return {name: getattr(self, f"fixed_{name}") for name in self.alphas()}

    def mixture_weights(self) -> dict[str, torch.Tensor]:
        """``softmax(alpha)`` per cell type, fixed rows replaced (differentiable in alpha)."""
        out = {}
        for name, alpha in self.alphas().items():
            fixed = getattr(self, f"fixed_{name}")
            out[name] = torch.where(torch.isnan(fixed), alpha.softmax(dim=-1), fixed)
        return out

    def softmax_mixtures(self) -> dict[str, Mixture]:
        """DARTS's continuous relaxation: ``softmax(alpha)`` on every free edge."""
        return {name: Mixture(weights) for name, weights in self.mixture_weights().items()}

    def derive(self) -> Genotype:
        """The discrete genotype the current alphas select."""
        raise NotImplementedError

    def derivable_ops(self) -> list[int]:
        """The columns ``derive`` may choose (all but ``none`` where it is excluded)."""
        return [k for k, op in enumerate(self.ops) if op != "none"]

    def selection_rounds(self) -> int:
        """How many rounds a perturbation-based selection (``archsearch.oneshot.selection``)
        takes to decide every edge: one per edge, then one per node that keeps two of more
        than two incoming edges; every cell type decides one edge (or node) per round, so
        the cell types are decided side by side."""
        return max(len(alpha) + sum(len(group) > 2 for group in self.input_groups[name])
                   for name, alpha in self.alphas().items())

    def arch_weights(self) -> dict[str, list[list[float]]]:
        """The mixture weights per cell type as plain lists (for the record)."""
        return {name: weights.detach().cpu().tolist()
                for name, weights in self.mixture_weights().items()}

    def _add_alpha(self, name: str, edges: int, ops: int) -> nn.Parameter:
        """A cell type's alpha (``1e-3 * randn``) and its buffer of fixed rows (all free)."""
        self.register_buffer(f"fixed_{name}", torch.full((edges, ops), torch.nan))
        return nn.Parameter(1e-3 * torch.randn(edges, ops))


# -- NAS-Bench-201 --------------------------------------------------------------------------


class NB201SearchCell(nn.Module):
    """A NAS-Bench-201 cell with a mixed op on each of its 6 edges (canonical order)."""

    def __init__(self, c: int, ops: Sequence[str], *, track: bool, auxiliary_skip: bool,
                 auxiliary_op: str = "skip") -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            MixedOp([nb201_op(op, c, affine=False, track=track) for op in ops],
                    _auxiliary_skip(auxiliary_op, c, 1, track) if auxiliary_skip else None)
            for _ in NB201_EDGES)

    def forward(self, x: torch.Tensor, rows: _Rows, chosen: Sequence[int] | None,
                skip_beta: float) -> torch.Tensor:
        nodes = [x]
        e = 0
        for i in (1, 2, 3):
            node: torch.Tensor | None = None
            for j in range(i):
                out = self.edges[e](nodes[j], rows[e], None if chosen is None else chosen[e],
                                    skip_beta)
                node = out if node is None else node + out
                e += 1
            assert node is not None
            nodes.append(node)
        return nodes[3]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 network with a mixed op on every edge; one alpha (6 x 5) shared
    by all cells, its rows in the canonical edge order, its columns ``NB201_OPS``.

    ``derive()`` takes the argmax over all ops on each edge, ``none`` included, as the
    NAS-Bench-201 search scripts do (``include_none=False`` excludes it).

    >>> net = NB201Supernet(channels=4, cells_per_stage=1, num_classes=10)
    >>> net(torch.zeros(2, 3, 8, 8)).shape, net.alpha.shape
    (torch.Size([2, 10]), torch.Size([6, 5]))
    """

    def __init__(self, *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3, track_running_stats: bool = True,
                 auxiliary_skip: bool = False, auxiliary_op: str = "skip",
                 include_none: bool = True) -> None:
        super().__init__()
        self.ops = NB201_OPS
        self.space = NB201Space(channels, cells_per_stage)
        self.include_none = include_none
        self.auxiliary_skip = auxiliary_skip
        self.skip_beta = 0.0
        self.stem = nb201_stem(in_channels, channels)
        layers, c = nb201_body(
            lambda c: NB201SearchCell(c, self.ops, track=track_running_stats,
                                      auxiliary_skip=auxiliary_skip, auxiliary_op=auxiliary_op),
            channels, cells_per_stage)
        self.layers = nn.ModuleList(layers)
        self._is_cell = [isinstance(layer, NB201SearchCell) for layer in layers]
        self.head = nb201_head(c, num_classes)
        self.alpha = self._add_alpha("cell", len(NB201_EDGES), len(self.ops))
        self.input_groups = {"cell": ()}

    def alphas(self) -> dict[str, nn.Parameter]:
        return {"cell": self.alpha}

    def forward(self, x: torch.Tensor, mixtures: Mapping[str, Mixture] | None = None
                ) -> torch.Tensor:
        mixture = (mixtures or self.softmax_mixtures())["cell"]
        rows = _rows(mixture)
        x = self.stem(x)
        for layer, is_cell in zip(self.layers, self._is_cell, strict=True):
            x = layer(x, rows, mixture.chosen, self.skip_beta) if is_cell else layer(x)
        return self.head(x)

    def derivable_ops(self) -> list[int]:
        return list(range(len(self.ops))) if self.include_none else super().derivable_ops()

    def derive(self) -> Genotype:
        return nb201_cell_from_weights(self.mixture_weights()["cell"].detach().cpu(),
                                       include_none=self.include_none)


def nb201_cell_from_weights(weights: torch.Tensor | Sequence[Sequence[float]], *,
                            include_none: bool = True) -> Genotype:
    """The NAS-Bench-201 cell taking each edge's strongest op: ``weights`` is edges x
    ``NB201_OPS`` (a supernet's mixture weights, or a recorded epoch's ``arch_weights``),
    ``none`` left out unless ``include_none``.

    >>> w = [[0.5, 0.2, 0.1, 0.1, 0.1]] + [[0.1, 0.1, 0.6, 0.1, 0.1]] * 5
    >>> cell = nb201_cell_from_weights(w, include_none=False)
    >>> cell["edge1<-0"], cell["edge3<-2"]
    ('skip_connect', 'nor_conv_1x1')
    """
    weights = torch.as_tensor(weights, dtype=torch.float64).clone()
    if weights.shape != (len(NB201_EDGES), len(NB201_OPS)):
        raise ValueError(f"need {len(NB201_EDGES)} x {len(NB201_OPS)} weights, "
                         f"got {tuple(weights.shape)}")
    if not include_none:
        weights[:, NB201_OPS.index("none")] = -torch.inf
    best = weights.argmax(dim=1).tolist()
    return Genotype.of({name: NB201_OPS[k] for name, k in zip(NB201_EDGE_NAMES, best,
                                                              strict=True)})


# -- DARTS ------------------------------------------------------------------------------


def _darts_search_op(name: str, c: int, stride: int, track: bool) -> nn.Module:
    op = darts_op(name, c, stride, affine=False, track=track)
    if "pool" in name:  # DARTS's search network normalises pooled outputs
        return nn.Sequential(op, nn.BatchNorm2d(c, affine=False, track_running_stats=track))
    return op


class DartsSearchCell(nn.Module):
    """A DARTS cell with a mixed op on each of its edges (node i reads all 2 + i nodes)."""

    def __init__(self, steps: int, ops: Sequence[str], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, *, track: bool,
                 auxiliary_skip: bool, auxiliary_op: str = "skip") -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.pre0, self.pre1 = darts_preprocess(c_prev_prev, c_prev, c, reduction_prev,
                                                affine=False)
        self.edges = nn.ModuleList()
        for node in range(steps):
            for source in range(2 + node):
                stride = 2 if reduction and source < 2 else 1
                skip = _auxiliary_skip(auxiliary_op, c, stride, track) if auxiliary_skip else None
                self.edges.append(MixedOp(
                    [_darts_search_op(op, c, stride, track) for op in ops], skip))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, rows: _Rows,
                chosen: Sequence[int] | None, skip_beta: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for _ in range(self.steps):
            node: torch.Tensor | None = None
            for h in list(states):
                out = self.edges[e](h, rows[e], None if chosen is None else chosen[e], skip_beta)
                node = out if node is None else node + out
                e += 1
            assert node is not None
            states.append(node)
        return torch.cat(states[2:], dim=1)


def darts_edge_sources(steps: int) -> list[tuple[int, int]]:
    """(node, source) of every edge of a DARTS search cell, in alpha-row order."""
    return [(2 + node, source) for node in range(steps) for source in range(2 + node)]


class DartsSupernet(Supernet):
    """DARTS's search network: ``cells`` cells (reductions at 1/3 and 2/3), C channels,
    stem of ``3 C``; alphas ``normal`` and ``reduce``, each (14 edges x 8 ops) for 4 steps.

    ``derive()`` follows DARTS: per node, the 2 incoming edges whose strongest non-``none``
    op weighs most, each with that op.

    >>> net = DartsSupernet(channels=4, cells=3, steps=2, num_classes=10)
    >>> net(torch.zeros(2, 3, 8, 8)).shape, net.alphas()["reduce"].shape
    (torch.Size([2, 10]), torch.Size([5, 8]))
    """

    def __init__(self, *, channels: int = 16, cells: int = 8, steps: int = 4,
                 ops: Sequence[str] = DARTS_PRIMITIVES, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3,
                 track_running_stats: bool = True, auxiliary_skip: bool = False,
                 auxiliary_op: str = "skip") -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.space = DartsSpace(steps, [op for op in self.ops if op != "none"], channels, cells)
        self.auxiliary_skip = auxiliary_skip
        self.skip_beta = 0.0
        self.steps = steps
        c_stem = stem_multiplier * channels
        self.stem = darts_stem(in_channels, c_stem)
        plan = darts_cell_plan(cells, channels, c_stem, steps)
        self.cells = nn.ModuleList(
            DartsSearchCell(steps, self.ops, p.c_prev_prev, p.c_prev, p.c, p.reduction,
                            p.reduction_prev, track=track_running_stats,
                            auxiliary_skip=auxiliary_skip, auxiliary_op=auxiliary_op)
            for p in plan)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(steps * plan[-1].c if plan else c_stem, num_classes))
        edges = len(darts_edge_sources(steps))
        self.alpha_normal = self._add_alpha("normal", edges, len(self.ops))
        self.alpha_reduce = self._add_alpha("reduce", edges, len(self.ops))
        starts = [sum(range(2, 2 + node)) for node in range(steps)]
        groups = tuple(tuple(range(start, start + 2 + node)) for node, start in enumerate(starts))
        self.input_groups = {"normal": groups, "reduce": groups}

    def alphas(self) -> dict[str, nn.Parameter]:
        return {"normal": self.alpha_normal, "reduce": self.alpha_reduce}

    def forward(self, x: torch.Tensor, mixtures: Mapping[str, Mixture] | None = None
                ) -> torch.Tensor:
        mixtures = mixtures or self.softmax_mixtures()
        rows = {name: _rows(m) for name, m in mixtures.items()}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, rows[kind], mixtures[kind].chosen, self.skip_beta)
        return self.head(s1)

    def derive(self) -> Genotype:
        cells = {}
        for kind, mixed in self.mixture_weights().items():
            weights = mixed.detach().cpu()  # a dropped edge's row is all zero: never chosen
            if "none" in self.ops:
                weights[:, self.ops.index("none")] = -1.0  # never chosen
            strength, best = weights.max(dim=1)
            edges: list[tuple[str, int]] = []
            start = 0
            for node in range(self.steps):
                n = 2 + node
                # Stable: among equal strengths the earlier input wins.
                top = sorted(range(n), key=lambda j: -float(strength[start + j]))[:2]
                edges.extend((self.ops[int(best[start + j])], j) for j in sorted(top))
                start += n
            cells[kind] = edges
        return self.space.from_cells(cells["normal"], cells["reduce"])
