"""NAS-Bench-Graph (Qin et al., NeurIPS 2022) as a space and an estimator.

An architecture is 4 computing nodes, each reading exactly one earlier node (0 is the
input, j is node j), and one op per node; nodes that nobody reads feed the output.  The
genotype spells it as ``links`` (one of the 9 canonical link patterns, as text such as
``"0,0,1,2"``) and ``op0``..``op3``.  ``canonicalize`` also accepts the 15 other legal
link lists (``links[i] <= i``), exactly as the benchmark does.

Many spellings denote one architecture, and the benchmark keys its tables by its own
``valid_hash``, which this module reproduces step for step (checked against the
package on all 24 * 9**4 spellings): (1) rewrite the 15 non-canonical link lists into
one of the 9 patterns, permuting the ops; (2) move ``skip`` nodes to the front and
re-index the links; (3) sort the ops of interchangeable sibling positions; (4) read
pattern id and op indices as the digits of a base-10 integer.  That procedure is not a
full isomorphism test (two spellings of one graph can get two keys, and both are in the
tables), so the space's size is the number of distinct hashes, 26,206 (2,021 with the
5 ops of ogbn-proteins), which is exactly the key set of the tables.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Iterator, Sequence

import numpy as np

from archsearch.space.base import (
    DEFAULT_ENUMERATION_LIMIT,
    DecisionSpace,
    InvalidGenotype,
    SearchSpace,
    SpaceTooLarge,
)
from archsearch.space.decisions import categorical
from archsearch.space.genotype import Genotype
from archsearch.tabular.safe_pickle import NASBENCHGRAPH_GLOBALS, find_package_file, safe_load
from archsearch.tabular.table import TableEstimator

#: All ops, in the benchmark's order (the order gives the digits of the hash).
NBGRAPH_OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
#: The ops of the ogbn-proteins table.
NBGRAPH_PROTEINS_OPS = ("gcn", "sage", "arma", "fc", "skip")
#: The 9 canonical link patterns; a pattern's id is its position.
NBGRAPH_LINKS: tuple[tuple[int, ...], ...] = (
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 1, 3),
    (0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 2, 2), (0, 1, 2, 3),
)
NBGRAPH_DATASETS = (
    "cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins",
)
#: What ``evaluate`` returns: the search metric, then the table's other numbers.
NBGRAPH_METRICS = ("val_accuracy", "test_accuracy", "latency", "params")

_SKIP = NBGRAPH_OPS.index("skip")
_OP_INDEX = {op: k for k, op in enumerate(NBGRAPH_OPS)}
_LINK_TEXT = tuple(",".join(map(str, links)) for links in NBGRAPH_LINKS)
_PATTERN_ID = {links: k for k, links in enumerate(NBGRAPH_LINKS)}
_OP_NAMES = tuple(f"op{i}" for i in range(4))
_DECISION_NAMES = frozenset(("links", *_OP_NAMES))

# Step 1: each non-canonical link list -> (its pattern, the old position of each new op).
_REWRITES: dict[tuple[int, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {
    (0, 0, 0, 2): ((0, 0, 0, 1), (1, 0, 2, 3)),
    (0, 0, 0, 3): ((0, 0, 0, 1), (2, 0, 1, 3)),
    (0, 0, 1, 0): ((0, 0, 0, 1), (0, 1, 3, 2)),
    (0, 0, 2, 0): ((0, 0, 0, 1), (1, 0, 3, 2)),
    (0, 0, 2, 1): ((0, 0, 1, 2), (1, 0, 2, 3)),
    (0, 0, 2, 2): ((0, 0, 1, 1), (1, 0, 2, 3)),
    (0, 0, 2, 3): ((0, 0, 1, 3), (1, 0, 2, 3)),
    (0, 1, 0, 0): ((0, 0, 0, 1), (0, 2, 3, 1)),
    (0, 1, 0, 1): ((0, 0, 1, 1), (0, 2, 1, 3)),
    (0, 1, 0, 2): ((0, 0, 1, 3), (0, 2, 1, 3)),
    (0, 1, 0, 3): ((0, 0, 1, 2), (0, 2, 1, 3)),
    (0, 1, 1, 0): ((0, 0, 1, 1), (0, 3, 1, 2)),
    (0, 1, 1, 3): ((0, 1, 1, 2), (0, 2, 1, 3)),
    (0, 1, 2, 0): ((0, 0, 1, 3), (0, 3, 1, 2)),
    (0, 1, 2, 1): ((0, 1, 1, 2), (0, 1, 3, 2)),
}
# Step 2 ends by folding two link lists that moving skips can produce into [0,1,1,2].
_AFTER_SKIPS: dict[tuple[int, ...], tuple[int, ...]] = {
    (0, 1, 2, 1): (0, 1, 3, 2),
    (0, 1, 1, 3): (0, 2, 1, 3),
}
# Step 3: per pattern id, the positions whose ops are sorted (pattern 3 has its own rule).
_SORTED_POSITIONS = {0: (0, 1, 2, 3), 1: (1, 2), 2: (2, 3), 5: (1, 2, 3), 7: (2, 3)}


def _legal_links(links: Sequence[int]) -> bool:
    return len(links) == 4 and all(0 <= parent <= i for i, parent in enumerate(links))


def _skip_reaches_input(k: int, links: list[int], ops: list[int]) -> bool:
    """Whether node k+1 and every node above it up to the input is a skip."""
    while k >= 0:
        if ops[k] != _SKIP:
            return False
        k = links[k] - 1
    return True


def _hoist(k: int, links: list[int], ops: list[int]) -> tuple[list[int], list[int]]:
    """Move the node at position k to the front: it reads the input, its readers read its
    parent (now one position later), and every node numbered up to k shifts up by one."""
    moved_parent = links[k] + 1
    rest: list[int] = []
    for j, parent in enumerate(links):
        if j == k:
            continue
        if parent == k + 1:
            parent = moved_parent
        elif parent <= k:
            parent += 1
        rest.append(parent)
    return [0, *rest], [ops[k], *ops[:k], *ops[k + 1:]]


def canonical_form(links: Sequence[int], ops: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """The benchmark's canonical (pattern id, op indices) for any legal spelling.

    ``links`` is one of the 24 legal link lists; ``ops`` are indices into ``NBGRAPH_OPS``.
    """
    key = tuple(links)
    ops_now = list(ops)
    if key in _REWRITES:
        key, order = _REWRITES[key]
        ops_now = [ops_now[p] for p in order]
    links_now = list(key)
    for i in range(4):
        if ops_now[i] != _SKIP:
            continue
        has_reader = (i + 1) in links_now
        has_sibling = any(j != i and links_now[j] == links_now[i] for j in range(4))
        if has_reader or not has_sibling or _skip_reaches_input(i, links_now, ops_now):
            links_now, ops_now = _hoist(i, links_now, ops_now)
    folded = _AFTER_SKIPS.get(tuple(links_now))
    if folded is not None:
        links_now = [0, 1, 1, 2]
        ops_now = [ops_now[p] for p in folded]
    pattern = _PATTERN_ID[tuple(links_now)]
    if pattern == 3:  # [0,0,1,2]: two branches of two nodes; order the branches
        a, b, c, d = ops_now
        if a > b or (a == b and c > d):
            ops_now = [b, a, d, c]
    elif pattern in _SORTED_POSITIONS:
        positions = _SORTED_POSITIONS[pattern]
        for p, v in zip(positions, sorted(ops_now[p] for p in positions), strict=True):
            ops_now[p] = v
    return pattern, tuple(ops_now)


def valid_hash(links: Sequence[int], ops: Sequence[str]) -> int:
    """The benchmark's table key of an architecture (its ``Arch.valid_hash``).

    >>> valid_hash([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    61237
    """
    if not _legal_links(links):
        raise ValueError(f"illegal link list {list(links)}: node i reads one of 0..i")
    pattern, indices = canonical_form(links, [_OP_INDEX[op] for op in ops])
    return _hash_digits(pattern, indices)


def _hash_digits(pattern: int, indices: Sequence[int]) -> int:
    value = pattern
    for k in indices:
        value = value * 10 + k
    return value


def _unhash(value: int) -> tuple[int, tuple[int, ...]]:
    digits = f"{value:05d}"
    return int(digits[0]), tuple(int(c) for c in digits[1:])


@functools.lru_cache(maxsize=2)
def _canonical_hashes(proteins: bool) -> np.ndarray:
    """Every canonical hash of the space, sorted (the order of ``enumerate``)."""
    allowed = [_OP_INDEX[op] for op in (NBGRAPH_PROTEINS_OPS if proteins else NBGRAPH_OPS)]
    found: set[int] = set()
    for links in NBGRAPH_LINKS:
        for ops in itertools.product(allowed, repeat=4):
            if ops != (_SKIP,) * 4:
                found.add(_hash_digits(*canonical_form(links, ops)))
    out = np.array(sorted(found), dtype=np.int64)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=2)
def _canonical_positions(proteins: bool) -> dict[int, int]:
    return {int(h): i for i, h in enumerate(_canonical_hashes(proteins).tolist())}


class NBGraphSpace(DecisionSpace):
    """The NAS-Bench-Graph macro space; one key per benchmark table entry.

    ``proteins=True`` restricts the ops to those of the ogbn-proteins table.

    >>> space = NBGraphSpace()
    >>> a = space.genotype([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    >>> space.valid_hash(a), space.canonicalize(a)["links"], space.size()
    (61237, '0,1,1,2', 26206)
    """

    name = "nbgraph"

    def __init__(self, proteins: bool = False) -> None:
        self.proteins = proteins
        self.ops: tuple[str, ...] = NBGRAPH_PROTEINS_OPS if proteins else NBGRAPH_OPS
        super().__init__(
            [categorical("links", _LINK_TEXT)] + [categorical(n, self.ops) for n in _OP_NAMES]
        )
        self._allowed_ops = frozenset(self.ops)
        self._hash_cache: dict[tuple[tuple[str, object], ...], int] = {}

    # -- spellings -----------------------------------------------------------------------
    def genotype(self, links: Sequence[int], ops: Sequence[str]) -> Genotype:
        """A genotype from a link list (any of the 24 legal ones) and 4 op names."""
        if len(ops) != 4:
            raise InvalidGenotype(f"NAS-Bench-Graph has 4 ops, got {list(ops)}")
        g = Genotype.of({"links": ",".join(str(int(x)) for x in links),
                         **dict(zip(_OP_NAMES, ops, strict=True))})
        self.validate(g)
        return g

    def structure(self, genotype: Genotype) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """The canonical (link list, op names) of an architecture, for network builders."""
        pattern, indices = _unhash(self.valid_hash(genotype))
        return NBGRAPH_LINKS[pattern], tuple(NBGRAPH_OPS[k] for k in indices)

    def valid_hash(self, genotype: Genotype) -> int:
        """The benchmark's table key of the architecture (memoised per spelling)."""
        items = genotype.items_ if isinstance(genotype, Genotype) else None
        if items is not None:
            cached = self._hash_cache.get(items)
            if cached is not None:
                return cached
        links = self._validated_links(genotype)
        value = _hash_digits(
            *canonical_form(links, [_OP_INDEX[str(genotype[n])] for n in _OP_NAMES])
        )
        if len(self._hash_cache) >= 1 << 17:  # bounded: callers may send any spelling
            self._hash_cache.clear()
        self._hash_cache[genotype.items_] = value
        return value

    def from_hash(self, value: int) -> Genotype:
        """The canonical genotype with table key ``value``."""
        if value not in _canonical_positions(self.proteins):
            raise InvalidGenotype(f"{value} is not a canonical {self.name} architecture")
        pattern, indices = _unhash(value)
        return Genotype.of({"links": _LINK_TEXT[pattern],
                            **{n: NBGRAPH_OPS[k] for n, k in zip(_OP_NAMES, indices, strict=True)}})

    def index(self, genotype: Genotype) -> int:
        """The architecture's position in ``enumerate()``."""
        return _canonical_positions(self.proteins)[self.valid_hash(genotype)]

    def from_index(self, index: int) -> Genotype:
        return self.from_hash(int(_canonical_hashes(self.proteins)[index]))

    # -- the interface ---------------------------------------------------------------------
    def canonicalize(self, genotype: Genotype) -> Genotype:
        return self.from_hash(self.valid_hash(genotype))

    def _validated_links(self, genotype: Genotype) -> tuple[int, ...]:
        if not isinstance(genotype, Genotype):
            raise InvalidGenotype(f"expected a Genotype, got {type(genotype).__name__}")
        names = set(genotype)
        if names != _DECISION_NAMES:
            missing, unknown = sorted(_DECISION_NAMES - names), sorted(names - _DECISION_NAMES)
            raise InvalidGenotype(
                f"a {self.name} genotype has decisions {sorted(_DECISION_NAMES)}; "
                f"missing {missing}, unknown {unknown}"
            )
        text = genotype["links"]
        try:
            if not isinstance(text, str):
                raise ValueError
            links = tuple(int(part) for part in text.split(","))
        except ValueError:
            links = ()
        if not _legal_links(links):
            raise InvalidGenotype(
                f"links must be 4 comma-separated node ids, node i reading one of 0..i "
                f"(e.g. {_LINK_TEXT[3]!r}); got {text!r}"
            )
        ops = [genotype[n] for n in _OP_NAMES]
        for name, op in zip(_OP_NAMES, ops, strict=True):
            if not isinstance(op, str) or op not in self._allowed_ops:
                raise InvalidGenotype(f"{op!r} is not a legal {name}; ops are {list(self.ops)}")
        if all(op == "skip" for op in ops):
            raise InvalidGenotype("an all-skip architecture is not part of NAS-Bench-Graph")
        return links

    def validate(self, genotype: Genotype) -> None:
        self._validated_links(genotype)

    def size(self) -> int:
        return len(_canonical_hashes(self.proteins))

    def enumerate(self, limit: int = DEFAULT_ENUMERATION_LIMIT) -> Iterator[Genotype]:
        if self.size() > limit:
            raise SpaceTooLarge(
                f"the {self.name} space has {self.size():,} architectures, more than {limit:,}"
            )
        return (self.from_hash(int(h)) for h in _canonical_hashes(self.proteins))

    def sample(self, rng: np.random.Generator) -> Genotype:
        """Uniform over the distinct (canonical) architectures."""
        return self.from_index(int(rng.integers(self.size())))

    def neighbours(self, genotype: Genotype) -> list[Genotype]:
        """Canonical architectures one op change or one link-pattern change away."""
        own = self.valid_hash(genotype)
        pattern, indices = _unhash(own)
        allowed = [_OP_INDEX[op] for op in self.ops]
        seen = {own}
        out: list[Genotype] = []

        def add(new_pattern: int, new_indices: Sequence[int]) -> None:
            if all(k == _SKIP for k in new_indices):
                return
            value = _hash_digits(*canonical_form(NBGRAPH_LINKS[new_pattern], new_indices))
            if value not in seen:
                seen.add(value)
                out.append(self.from_hash(value))

        for i in range(4):
            for k in allowed:
                if k != indices[i]:
                    add(pattern, indices[:i] + (k,) + indices[i + 1:])
        for other in range(len(NBGRAPH_LINKS)):
            if other != pattern:
                add(other, indices)
        return out

    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        # A one-decision edit can land on the same canonical architecture here, so draw
        # from the canonical neighbours instead of DecisionSpace's direct edit.
        return SearchSpace.mutate(self, genotype, rng)

    def crossover(self, a: Genotype, b: Genotype, rng: np.random.Generator) -> Genotype:
        """Each decision from one canonical parent or the other; never all-skip."""
        parents = (self.canonicalize(a), self.canonicalize(b))
        child = {n: parents[int(rng.integers(2))][n] for n in ("links", *_OP_NAMES)}
        if all(child[n] == "skip" for n in _OP_NAMES):
            return parents[0]
        return self.canonicalize(Genotype.of(child))

    def encode(self, genotype: Genotype) -> np.ndarray:
        return super().encode(self.canonicalize(genotype))

    def describe(self) -> str:
        ops = "the 5 ogbn-proteins ops" if self.proteins else "9 ops"
        return f"{self.name} space with {self.size():,} architectures ({ops})"


@functools.cache
def _load_nbgraph(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(sorted hashes, float64 array of [valid_perf, perf, latency, para] per hash)."""
    raw = safe_load(path, NASBENCHGRAPH_GLOBALS)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of architectures, got {type(raw).__name__}")
    hashes = sorted(raw)
    values = np.empty((len(hashes), 4))
    for row, h in enumerate(hashes):
        record = raw[h]
        try:
            if not isinstance(h, int) or not isinstance(record, dict):
                raise TypeError("not an int key with a dict record")
            values[row] = [float(record[f]) for f in ("valid_perf", "perf", "latency", "para")]
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: unexpected entry {h!r}: {err!r}") from None
    keys = np.array(hashes, dtype=np.int64)
    keys.flags.writeable = False
    values.flags.writeable = False
    return keys, values


def load_nbgraph_table(
    dataset: str, path: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One light NAS-Bench-Graph table: sorted hashes and their [valid, test, latency,
    params] rows (read-only).  Loaded once per process and file."""
    if dataset not in NBGRAPH_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {list(NBGRAPH_DATASETS)}")
    if path is None:
        path = find_package_file("nas_bench_graph", f"light/{dataset}.bench", "nas-bench-graph")
    return _load_nbgraph(os.path.realpath(path))


class NBGraphEstimator(TableEstimator):
    """Looks an architecture up in a NAS-Bench-Graph table (mean over the benchmark's seeds).

    ``evaluate`` returns ``val_accuracy`` (the table's ``valid_perf``, the objective),
    ``test_accuracy`` (``perf``, never used for selection), ``latency`` (as recorded by the
    benchmark, apparently seconds) and ``params`` (``para``, millions of parameters).  The
    numbers are fractions in [0, 1]; for ogbn-proteins the measure is the benchmark's
    (likely ROC-AUC) under the same names.  ``path`` reads another copy of the table.

    >>> est = NBGraphEstimator("cora")                                   # doctest: +SKIP
    >>> est.evaluate(est.space.genotype([0, 1, 2, 3], ["gcn"] * 4))      # doctest: +SKIP
    """

    space: NBGraphSpace

    def __init__(self, table: str = "cora", path: str | os.PathLike[str] | None = None):
        super().__init__()
        self.table = table
        self.path = path
        self.space = NBGraphSpace(proteins=table == "proteins")
        keys, self._values = load_nbgraph_table(table, path)
        if not np.array_equal(keys, _canonical_hashes(self.space.proteins)):
            raise ValueError(
                f"the {table} table holds {len(keys):,} architectures, not exactly the "
                f"{self.space.size():,} canonical ones of the {self.space.name} space"
            )

    def lookup_index(self, index: int) -> dict[str, float]:
        """The metrics of ``space.from_index(index)`` (table rows follow that order)."""
        return dict(zip(NBGRAPH_METRICS, self._values[index].tolist(), strict=True))

    def lookup_hash(self, value: int) -> dict[str, float]:
        """The metrics of the architecture with benchmark key ``value``."""
        index = _canonical_positions(self.space.proteins).get(value)
        if index is None:
            raise InvalidGenotype(f"{value} is not a key of the {self.table} table")
        return self.lookup_index(index)

    def objective_values(self) -> np.ndarray:
        """The objective of every architecture, indexed like ``space.enumerate()``."""
        return self._values[:, 0]
