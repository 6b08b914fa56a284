"""Benchmark tables as spaces and estimators: NAS-Bench-201 (AnalogNAS-Bench) and
NAS-Bench-Graph.  Space tests need nothing; table tests skip when a package is absent."""

from __future__ import annotations

import importlib.util
import itertools
import os
import pickle
import types

import numpy as np
import pytest

from archsearch.space.base import InvalidGenotype
from archsearch.space.genotype import Genotype
from archsearch.tabular import (
    NB201_COLUMNS,
    NB201_EDGE_NAMES,
    NB201_OPS,
    NBGRAPH_DATASETS,
    NBGRAPH_OPS,
    NBGRAPH_PROTEINS_OPS,
    BenchmarkNotInstalled,
    NB201Estimator,
    NB201Space,
    NBGraphEstimator,
    NBGraphSpace,
    UnsafePickleError,
    load_nbgraph_table,
    valid_hash,
)
from archsearch.tabular.safe_pickle import (
    ANALOGNASBENCH_GLOBALS,
    NASBENCHGRAPH_GLOBALS,
    find_package_file,
    safe_load,
    safe_loads,
)

HAS_ANB = importlib.util.find_spec("analognasbench") is not None
HAS_NBG = importlib.util.find_spec("nas_bench_graph") is not None
needs_anb = pytest.mark.skipif(not HAS_ANB, reason="analog-nasbench is not installed")
needs_nbg = pytest.mark.skipif(not HAS_NBG, reason="nas-bench-graph is not installed")

NB201_BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
)


def cell(**ops: str) -> Genotype:
    """An NB201 cell, ``none`` on every edge not given (``e10="skip_connect"`` = 1<-0)."""
    values = {name: "none" for name in NB201_EDGE_NAMES}
    for short, op in ops.items():
        values[f"edge{short[1]}<-{short[2]}"] = op
    return Genotype.of(values)


# -- NAS-Bench-201 space ---------------------------------------------------------------------
def test_nb201_space_shape() -> None:
    space = NB201Space()
    assert space.name == "nb201" and space.size() == 15_625
    g = space.from_string(NB201_BEST)
    assert len(space.neighbours(g)) == 24
    assert all(sum(g[n] != h[n] for n in g) == 1 for h in space.neighbours(g))
    edges = [(i, j) for i, j, _ in space.edges(g)]
    assert edges == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def test_nb201_string_round_trip_and_index() -> None:
    space = NB201Space()
    for i, g in enumerate(space.enumerate()):
        assert space.index(g) == i
        if i % 7 == 0:
            assert space.from_string(space.to_string(g)) == g
            assert space.from_index(i) == g
    g = space.from_string(NB201_BEST)
    assert g["edge3<-0"] == "skip_connect" and g["edge3<-1"] == "nor_conv_1x1"
    assert space.to_string(g) == NB201_BEST
    # the order of entries inside a group does not matter
    assert space.from_string("|none~0|+|none~1|none~0|+|none~2|none~0|none~1|") == cell()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "|none~0|+|none~0|none~1|",  # two groups
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",  # four groups
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing leading bar
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # group 2 has one edge
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~3|",  # node 3 reads node 3
        "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|",  # edge 2<-0 twice
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",  # no ~
        "|none~x|+|none~0|none~1|+|none~0|none~1|none~2|",  # source not a number
    ],
)
def test_nb201_malformed_strings(text: str) -> None:
    with pytest.raises(InvalidGenotype):
        NB201Space().from_string(text)


def test_nb201_index_rejects_foreign_genotypes() -> None:
    space = NB201Space()
    with pytest.raises(InvalidGenotype, match="not a legal value"):
        space.index(cell().replace(**{"edge1<-0": "conv"}))
    with pytest.raises(InvalidGenotype, match="missing"):
        space.index(Genotype.of({"edge1<-0": "none"}))


# -- NAS-Bench-201 table -----------------------------------------------------------------------
@needs_anb
def test_nb201_table_optimum_and_landmarks() -> None:
    est = NB201Estimator()
    genotype, value = est.optimum()
    assert value == pytest.approx(94.0664, abs=1e-4)
    assert est.space.to_string(genotype) == NB201_BEST
    # the raw table marks the same cell as best: key (2,2,0,2,3,2) in its own conventions
    raw = safe_load(find_package_file("analognasbench", "data.anb", "x"), ANALOGNASBENCH_GLOBALS)
    best_key = max(raw, key=lambda k: raw[k].baseline_accuracy)
    assert best_key == (2, 2, 0, 2, 3, 2)
    assert raw[best_key].baseline_accuracy == pytest.approx(value, abs=1e-9)
    assert est.evaluate(cell())["val_accuracy"] == pytest.approx(10.0)
    conv = Genotype.of({name: "nor_conv_3x3" for name in NB201_EDGE_NAMES})
    assert est.evaluate(conv)["val_accuracy"] == pytest.approx(93.2424, abs=1e-4)
    oracle = est.oracle()
    assert oracle.val == oracle.test_at_best_val == oracle.best_test == value


@needs_anb
def test_nb201_table_conventions() -> None:
    """The edge order and op codes are those the table's numbers bear out."""
    est = NB201Estimator()
    space, values = est.space, est.objective_values()
    # Exactly the cells whose output is cut off from the input score 10 %.
    for i, g in enumerate(space.enumerate()):
        reached = {0}
        for target, source, op in space.edges(g):
            if op != "none" and source in reached:
                reached.add(target)
        assert (3 in reached) == (values[i] != 10.0), space.to_string(g)
    # Identity paths: one path scores the same whatever its length; pooling degrades with it.
    acc = {op: [est.evaluate(cell(e30=op))["val_accuracy"],
                est.evaluate(cell(e10=op, e21=op, e32=op))["val_accuracy"]]
           for op in ("skip_connect", "avg_pool_3x3")}
    assert abs(acc["skip_connect"][0] - acc["skip_connect"][1]) < 1.0
    assert acc["avg_pool_3x3"][0] - acc["avg_pool_3x3"][1] > 5.0


@needs_anb
def test_nb201_metrics() -> None:
    base, analog = NB201Estimator(), NB201Estimator(metric="analog")
    g = NB201Space().from_string(NB201_BEST)
    m = base.evaluate(g)
    assert set(m) == {"val_accuracy", "test_accuracy", *NB201_COLUMNS, "flops", "params"}
    assert m["val_accuracy"] == m["test_accuracy"] == m["baseline_accuracy"]
    assert analog.evaluate(g)["val_accuracy"] == m["analog_accuracy"] != m["baseline_accuracy"]
    assert base.lookup_key(base.space.key(g)) == m
    assert all(np.isfinite(v) for v in m.values())
    with pytest.raises(ValueError, match="unknown metric"):
        NB201Estimator(metric="cifar100")


# -- NAS-Bench-Graph space ---------------------------------------------------------------------
def test_nbgraph_readme_pair_gives_the_package_hashes() -> None:
    space = NBGraphSpace()
    a = space.genotype([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    b = space.genotype([0, 1, 1, 2], ["gcn", "cheb", "gin", "fc"])
    assert (space.valid_hash(a), space.valid_hash(b)) == (61237, 61327)
    assert space.key(a) != space.key(b)
    assert valid_hash([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"]) == 61237


@pytest.mark.parametrize("proteins, size", [(False, 26_206), (True, 2_021)])
def test_nbgraph_enumerate_is_canonical_and_distinct(proteins: bool, size: int) -> None:
    space = NBGraphSpace(proteins=proteins)
    assert space.size() == size
    genotypes = list(space.enumerate())
    assert len(genotypes) == size
    assert len({space.key(g) for g in genotypes}) == size
    assert all(space.canonicalize(g) == g for g in genotypes[::13])
    ops = set(NBGRAPH_PROTEINS_OPS if proteins else NBGRAPH_OPS)
    assert all({g[f"op{i}"] for i in range(4)} <= ops for g in genotypes)


def test_nbgraph_space_operators() -> None:
    space = NBGraphSpace()
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = space.sample(rng)
        assert space.canonicalize(g) == g
        neighbours = space.neighbours(g)
        keys = [space.key(n) for n in neighbours]
        assert neighbours and len(set(keys)) == len(keys) and space.key(g) not in keys
        assert all(space.canonicalize(n) == n for n in neighbours)
        child = space.crossover(g, space.sample(rng), rng)
        space.validate(child)
        assert space.encode(g).shape == (9 + 4 * 9,)
    # a non-canonical spelling has the neighbours of its canonical form
    a = space.genotype([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    assert space.neighbours(a) == space.neighbours(space.canonicalize(a))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"links": "0,0,0,0", "op0": "skip", "op1": "skip", "op2": "skip", "op3": "skip"},
         "all-skip"),
        ({"links": "0,2,0,0", "op0": "gcn", "op1": "gcn", "op2": "gcn", "op3": "gcn"}, "links"),
        ({"links": "0,0,0", "op0": "gcn", "op1": "gcn", "op2": "gcn", "op3": "gcn"}, "links"),
        ({"links": "0,0,0,0", "op0": "mlp", "op1": "gcn", "op2": "gcn", "op3": "gcn"}, "op0"),
        ({"links": "0,0,0,0", "op0": "gcn", "op1": "gcn", "op2": "gcn"}, "missing"),
    ],
)
def test_nbgraph_validate(values: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidGenotype, match=message):
        NBGraphSpace().validate(Genotype.of(values))


def test_nbgraph_proteins_space_rejects_other_ops() -> None:
    g = Genotype.of({"links": "0,1,2,3", "op0": "gat", "op1": "gcn", "op2": "gcn", "op3": "gcn"})
    NBGraphSpace().validate(g)
    with pytest.raises(InvalidGenotype, match="gat"):
        NBGraphSpace(proteins=True).validate(g)


def _package_architecture_module() -> types.ModuleType:
    """The benchmark's own ``architecture.py``, loaded alone (not its package __init__)."""
    spec = importlib.util.find_spec("nas_bench_graph")
    assert spec is not None and spec.submodule_search_locations
    path = os.path.join(list(spec.submodule_search_locations)[0], "architecture.py")
    module_spec = importlib.util.spec_from_file_location("_nbg_architecture", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@needs_nbg
def test_nbgraph_hash_matches_the_package_on_random_spellings() -> None:
    arch = _package_architecture_module()
    forms = [f for f in itertools.product(range(4), repeat=4) if all(f[i] <= i for i in range(4))]
    assert len(forms) == 24
    space = NBGraphSpace()
    rng = np.random.default_rng(2024)
    checked = 0
    while checked < 1500:
        links = list(forms[int(rng.integers(24))])
        # skips are over-represented: they are what the canonicalisation is about
        draws = rng.integers(9, size=4)
        ops = [NBGRAPH_OPS[int(k)] if rng.random() < 0.7 else "skip" for k in draws]
        if ops == ["skip"] * 4:
            continue
        expected = arch.Arch(list(links), list(ops)).valid_hash()
        assert valid_hash(links, ops) == expected, (links, ops)
        assert space.valid_hash(space.genotype(links, ops)) == expected
        checked += 1


# -- NAS-Bench-Graph tables ----------------------------------------------------------------------
@needs_nbg
@pytest.mark.parametrize("dataset", NBGRAPH_DATASETS)
def test_nbgraph_tables_load(dataset: str) -> None:
    est = NBGraphEstimator(dataset)  # checks the key set equals the space's canonical set
    keys, values = load_nbgraph_table(dataset)
    assert len(keys) == est.space.size() == (2_021 if dataset == "proteins" else 26_206)
    genotype, best = est.optimum()
    assert best == values[:, 0].max()
    m = est.evaluate(genotype)
    assert set(m) == {"val_accuracy", "test_accuracy", "latency", "params"}
    assert m["val_accuracy"] == best
    oracle = est.oracle()
    assert oracle.test_at_best_val == m["test_accuracy"] <= oracle.best_test == values[:, 1].max()


@needs_nbg
def test_nbgraph_cora_keys_are_the_enumerated_architectures() -> None:
    path = find_package_file("nas_bench_graph", "light/cora.bench", "x")
    raw = safe_load(path, NASBENCHGRAPH_GLOBALS)
    space = NBGraphSpace()
    assert space.size() == len(raw)
    assert {space.valid_hash(g) for g in space.enumerate()} == set(raw)
    est = NBGraphEstimator("cora")
    g = space.genotype([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])  # non-canonical spelling
    m = est.evaluate(g)
    assert m["val_accuracy"] == raw[61237]["valid_perf"]
    assert m["test_accuracy"] == raw[61237]["perf"]
    assert m["params"] == pytest.approx(float(raw[61237]["para"]))
    assert est.lookup_key(space.key(g)) == m == est.lookup_hash(61237)


# -- safety and optional dependencies ---------------------------------------------------------
class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.target}",)


def test_safe_unpickler_rejects_malicious_pickles(tmp_path: pytest.TempPathFactory) -> None:
    target = os.path.join(str(tmp_path), "pwned")
    payload = pickle.dumps({"cell": _Evil(target)})
    for allowed in (ANALOGNASBENCH_GLOBALS, NASBENCHGRAPH_GLOBALS, {}):
        with pytest.raises(UnsafePickleError, match="system"):
            safe_loads(payload, allowed)
    handmade = b"cos\nsystem\n(S'touch " + target.encode() + b"'\ntR."  # names os.system
    path = os.path.join(str(tmp_path), "evil.bench")
    with open(path, "wb") as f:
        f.write(handmade)
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        safe_load(path, NASBENCHGRAPH_GLOBALS)
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1'\ntR.", ANALOGNASBENCH_GLOBALS)
    assert not os.path.exists(target)
    assert safe_loads(pickle.dumps({1: [2.0, "x"]}), {}) == {1: [2.0, "x"]}


def test_missing_packages_give_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    hidden = {"analognasbench", "nas_bench_graph"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real(name, *a))
    with pytest.raises(BenchmarkNotInstalled, match=r"archsearch\[benchmarks\]"):
        NB201Estimator()
    with pytest.raises(BenchmarkNotInstalled, match=r"archsearch\[benchmarks\]"):
        NBGraphEstimator("cora")
    assert NB201Space().size() == 15_625 and len(NB201_OPS) == 5  # spaces need no package
