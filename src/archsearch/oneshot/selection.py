"""Perturbation-based selection (DARTS-PT, Wang et al., ICLR 2021): a second remedy.

DARTS reads the discrete cell off the magnitudes of alpha, and on NAS-Bench-201 those
magnitudes favour skip connections whatever the ops are worth.  DARTS-PT keeps the
supernet training but decides each edge by what the supernet loses without an op:

    after the supernet's epochs, repeat until every edge is decided:
        pick a random undecided edge (per cell type)
        for each candidate op on it: mask that op out, measure the supernet's accuracy
                                     (or loss) on the whole validation split
        fix the edge to the op whose removal costs the most accuracy (raises the loss most)
        fine-tune the supernet ``interval`` epochs at a tenth of the weight lr
    (DARTS space, once every op is decided) per node, a random one at a time: drop each
    incoming edge in turn; keep the two whose removal costs the most

``fix_alpha=True`` is the paper's "DARTS+PT (fix alpha)" variant: alpha is never trained,
the supernet learns with its (near-uniform) initial mixture, and only the perturbations
choose.  The strategy's ``selection_criterion`` is the reference's ``proj_crit``:
``"accuracy"`` (its default) or ``"loss"``.  Removing ``none`` changes nothing, so it wins
an edge whenever removing each other op leaves the supernet as good or better (how often
that happened in benchmarks/RESULTS.md was measured while the validation chunks each held
one class, since fixed: see there).  A decision is stored in the supernet's
fixed rows (``Supernet.fixed``), so the checkpoint of the epoch holds it and a resumed
run continues the same choices.

Departures from the reference code (``ruocwang/darts-pt``): the last decision ends the
search (the reference fine-tunes one more epoch, which cannot change the cell); candidate
ops exclude ``none`` on the DARTS space, whose genotypes never hold it (NAS-Bench-201 keeps
it, as its derivation does); the accuracies are measured with the batch size of the
search, in training mode as in the reference (cell BNs use batch statistics), on chunks
of the validation images in a fixed random order (``SearchData.val_slices``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archsearch.nn.supernet import Mixture, Supernet, darts_edge_sources
from archsearch.space.base import SearchSpace
from archsearch.space.cells import DartsSpace
from archsearch.space.nb201 import NB201_EDGES, NB201Space

#: What a decision measures: ``"accuracy"`` or ``"loss"`` on the validation split.
CRITERIA = ("accuracy", "loss")

#: ``merit(mixtures)``: how good the supernet is with these mixtures, higher is better
#: (validation accuracy, or minus the validation loss).
Scorer = Callable[[dict[str, Mixture]], float]


def selection_rounds(space: SearchSpace) -> int:
    """How many decision rounds a space needs: one per edge, plus (DARTS space) one per node
    with more than two inputs (all but the first).

    Every cell type decides one edge (or node) per round, so the DARTS space's normal and
    reduction cells are decided side by side.
    """
    if isinstance(space, NB201Space):
        return len(NB201_EDGES)
    if isinstance(space, DartsSpace):
        return len(darts_edge_sources(space.steps)) + space.steps - 1
    raise TypeError(f"perturbation-based selection needs a cell space, not {type(space).__name__}")


def _masked(supernet: Supernet, name: str, row: int, column: int | None
            ) -> dict[str, Mixture]:
    """The current mixtures with one op (``column``) or, if None, the whole edge ``row``
    of cell type ``name`` zeroed."""
    weights = {k: w.detach().clone() for k, w in supernet.mixture_weights().items()}
    if column is None:
        weights[name][row] = 0.0
    else:
        weights[name][row, column] = 0.0
    return {k: Mixture(w) for k, w in weights.items()}


def decide_round(supernet: Supernet, merit: Scorer, generator: torch.Generator
                 ) -> list[str]:
    """One round of decisions, one per cell type with something left to decide: the
    candidate whose removal leaves the lowest ``merit`` wins.  Returns the decisions as
    text (e.g. ``"cell edge 3: nor_conv_3x3"``).  Changes the supernet's fixed rows.
    """
    done: list[str] = []
    candidates = supernet.derivable_ops()
    for name, fixed in supernet.fixed().items():
        free = [int(e) for e in torch.isnan(fixed).all(dim=1).nonzero().flatten()]
        if free:
            edge = free[int(torch.randint(len(free), (1,), generator=generator))]
            scores = [merit(_masked(supernet, name, edge, k)) for k in candidates]
            best = candidates[min(range(len(scores)), key=scores.__getitem__)]
            row = torch.zeros_like(fixed[edge])
            row[best] = 1.0
            fixed[edge] = row
            done.append(f"{name} edge {edge}: {supernet.ops[best]}")
            continue
        live = [g for g in supernet.input_groups[name]
                if sum(bool(fixed[e].any()) for e in g) > 2]
        if not live:
            continue
        group = live[int(torch.randint(len(live), (1,), generator=generator))]
        edges = [e for e in group if bool(fixed[e].any())]
        scores = [merit(_masked(supernet, name, e, None)) for e in edges]
        keep = sorted(sorted(range(len(edges)), key=scores.__getitem__)[:2])
        for k, e in enumerate(edges):
            if k not in keep:
                fixed[e] = 0.0
        done.append(f"{name} node of edges {list(group)}: keeps {[edges[k] for k in keep]}")
    return done
