"""Helpers the history-driven strategies share: fitness of a trial, and proposing a
genotype that is neither evaluated nor pending."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence, Set

import numpy as np

from archsearch.pareto import constrained_ranks, crowding_distance
from archsearch.space.base import SearchSpace, SpaceTooLarge
from archsearch.space.genotype import Genotype
from archsearch.trial import FrozenTrial

#: Tries at an unseen child before giving up on mutation.
MAX_MUTATIONS = 100
#: Of those, fresh mutations of the parent before walking on from the child: enough to
#: find one of the last third of NAS-Bench-201's 24 neighbours 96 % of the time, few
#: enough that a parent whose neighbours are all seen costs little.
PARENT_TRIES = 8
#: Rejection sampling for a fresh random architecture gives up after this many repeats.
MAX_REJECTIONS = 64


def fitness(trial: FrozenTrial) -> float:
    """The score, with failed trials (score None) ranked below every complete one."""
    return -np.inf if trial.score is None else float(trial.score)


def stable_seed(*parts: int | str) -> int:
    """A seed from ints and strings that is the same in every process (``hash`` of a str
    is salted per process, so it cannot be used)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def random_unseen(
    space: SearchSpace, seen: Set[str], rng: np.random.Generator
) -> Genotype | None:
    """A uniform sample whose key is not in ``seen``; None when the space is exhausted.

    Near exhaustion rejection sampling would spin, so what is left is enumerated.  A huge
    space that keeps repeating gets its last sample back (the study answers it from the
    record, so nothing is evaluated twice).
    """
    if len(seen) >= space.size():
        return None
    genotype = space.sample(rng)
    for _ in range(MAX_REJECTIONS):
        if space.key(genotype) not in seen:
            return genotype
        genotype = space.sample(rng)
    try:
        left = [g for g in space.enumerate() if space.key(g) not in seen]
    except SpaceTooLarge:
        return genotype
    return left[int(rng.integers(len(left)))] if left else None


def mutate_unseen(
    space: SearchSpace, parent: Genotype, seen: Set[str], rng: np.random.Generator,
    tries: int = MAX_MUTATIONS,
) -> Genotype | None:
    """An unseen mutation of ``parent``: first ``PARENT_TRIES`` fresh mutations of the
    parent (a child one edit away whenever unseen ones are not scarce), then a random walk
    that mutates the child again; ``tries`` in all.  None if every try was seen."""
    from_parent = min(PARENT_TRIES, tries)
    for _ in range(from_parent):
        child = space.mutate(parent, rng)
        if space.key(child) not in seen:
            return child
    child = parent
    for _ in range(tries - from_parent):
        child = space.mutate(child, rng)
        if space.key(child) not in seen:
            return child
    return None


def mutant(
    space: SearchSpace, parent: Genotype, seen: Set[str], rng: np.random.Generator
) -> Genotype | None:
    """An unseen mutation of ``parent``; else a random unseen architecture; None only
    when the space is exhausted."""
    if len(seen) >= space.size():
        return None
    return mutate_unseen(space, parent, seen, rng) or random_unseen(space, seen, rng)


def unseen_or_mutant(
    space: SearchSpace, child: Genotype, seen: Set[str], rng: np.random.Generator
) -> Genotype | None:
    """``child`` itself if unseen (e.g. a crossover's result), else ``mutant(child)``."""
    if space.key(child) not in seen:
        return child
    return mutant(space, child, seen, rng)


def judgement(trial: FrozenTrial) -> tuple[tuple[float, ...] | None, float]:
    """What constrained domination compares of a finished trial: its scores (None if it
    failed) and its constraint violation (0 when feasible)."""
    return trial.scores, trial.violation


def rank_and_crowding(
    judged: Sequence[tuple[tuple[float, ...] | None, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """NSGA-II's two keys of each member of a set (Deb et al. 2002): its front under
    constrained domination (0 best; ``archsearch.pareto.constrained_ranks``) and its
    crowding distance within that front (larger is lonelier, so better).  Failed members
    (scores None) form a last front of their own, with crowding distance 0."""
    n = len(judged)
    ranks = np.zeros(n, dtype=int)
    crowding = np.zeros(n)
    done = [i for i, (scores, _) in enumerate(judged) if scores is not None]
    if done:
        points = np.array([judged[i][0] for i in done], dtype=float)
        violations = np.array([judged[i][1] for i in done], dtype=float)
        done_ranks = constrained_ranks(points, violations)
        ranks[done] = done_ranks
        for front in np.unique(done_ranks):
            members = np.flatnonzero(done_ranks == front)
            crowding[np.asarray(done)[members]] = crowding_distance(points[members])
    failed = [i for i, (scores, _) in enumerate(judged) if scores is None]
    if failed:
        ranks[failed] = int(ranks[done].max()) + 1 if done else 0
    return ranks, crowding
