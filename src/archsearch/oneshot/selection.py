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
choose.  The criterion is the reference's ``proj_crit``: ``"accuracy"`` (its default) or
``"loss"``.  Removing ``none`` changes nothing, so it wins an edge whenever removing each
other op leaves the supernet as good or better (results: benchmarks/RESULTS.md).  A
decision is stored in the supernet's fixed rows (``Supernet.fixed``), so the checkpoint of
the epoch holds it and a resumed run continues the same choices.  The number of rounds is
the supernet's (``Supernet.selection_rounds``).

Departures from the reference code (``ruocwang/darts-pt``): the last decision ends the
search (the reference fine-tunes one more epoch, which cannot change the cell); candidate
ops exclude ``none`` on the DARTS space, whose genotypes never hold it (NAS-Bench-201 keeps
it, as its derivation does); the accuracies are measured with the batch size of the
search, in training mode as in the reference (cell BNs use batch statistics), on chunks
of the validation images in a fixed random order (``SearchData.val_slices``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from archsearch.errors import ConfigError
from archsearch.nn.supernet import Mixture, Supernet
from archsearch.oneshot.darts import BilevelSearch
from archsearch.oneshot.data import SearchData

#: What a decision measures: ``"accuracy"`` or ``"loss"`` on the validation split.
CRITERIA = ("accuracy", "loss")

#: ``merit(mixtures)``: how good the supernet is with these mixtures, higher is better
#: (validation accuracy, or minus the validation loss).
Scorer = Callable[[dict[str, Mixture]], float]


@dataclass(frozen=True)
class PerturbationSelection:
    """DARTS-PT's settings: after the supernet's epochs, one decision round, then another
    after every ``interval`` fine-tuning epochs (0: every round at once), each decision
    judged by ``criterion``; ``fix_alpha`` never trains alpha."""

    interval: int = 5
    criterion: str = "accuracy"
    fix_alpha: bool = False

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ConfigError(f"selection_interval must be >= 0, got {self.interval}")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"selection_criterion must be one of {CRITERIA}, "
                              f"got {self.criterion!r}")

    def extra_epochs(self, rounds: int) -> int:
        """The fine-tuning epochs after the supernet's, for ``rounds`` decision rounds."""
        return (rounds - 1) * self.interval

    def rounds_after(self, epoch: int, epochs: int, rounds: int) -> int:
        """How many decision rounds end ``epoch`` (0-based) of a search whose supernet
        trains ``epochs`` epochs: one after its last epoch and after every ``interval``
        fine-tuning epochs (all ``rounds`` at once if the interval is 0)."""
        if epoch < epochs - 1:
            return 0
        if self.interval == 0:
            return rounds if epoch == epochs - 1 else 0
        return int((epoch - epochs + 1) % self.interval == 0)


def selection_scorer(search: BilevelSearch, data: SearchData, batch_size: int,
                     criterion: str) -> Scorer:
    """The supernet's merit on the whole validation split under given mixtures: its
    accuracy, or minus its mean loss (training-mode BN, as the search runs), in slices of
    ``batch_size`` (``SearchData.val_slices``)."""
    def merit(mixtures: dict[str, Mixture]) -> float:
        search.supernet.train()
        correct = torch.zeros((), dtype=torch.long, device=data.x_val.device)
        loss_sum = torch.zeros((), device=data.x_val.device)
        with torch.no_grad():
            for x, y in data.val_slices(batch_size):
                loss, right = search.loss(x, y, mixtures)
                loss_sum += loss * x.shape[0]
                correct += right
        n = max(data.x_val.shape[0], 1)
        return -float(loss_sum) / n if criterion == "loss" else int(correct) / n
    return merit


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
