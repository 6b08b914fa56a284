"""Diagram specs of the report (``archsearch.report.diagram``): structure per built-in
space, the fallback for any other space, the plug-in point, and the JSON contract that
``assets/diagram.js`` draws from."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest

from archsearch import DecisionSpace, categorical, int_range
from archsearch.report.diagram import MAX_LABEL, check_spec, diagram
from archsearch.space import (
    ChainSpace,
    DartsSpace,
    Genotype,
    InvalidGenotype,
    MultiBranchSpace,
    NB201Space,
    SearchSpace,
    when,
)
from archsearch.tabular import NB201Space as TabularNB201Space
from archsearch.tabular import NBGraphSpace

SAMPLES = 25


def samples(space: SearchSpace, n: int = SAMPLES, seed: int = 0) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def edge_set(panel: dict[str, Any]) -> Counter[tuple[int, int, str]]:
    return Counter((src, dst, label) for src, dst, label in panel["edges"])


def assert_well_formed(spec: dict[str, Any]) -> None:
    """The contract every spec keeps, whatever the space."""
    check_spec(spec)
    assert json.loads(json.dumps(spec)) == spec  # plain JSON: no tuples, no numpy ints
    for panel in spec["panels"]:
        assert panel["nodes"], "a panel without nodes draws nothing"
        assert all(0 < len(node) <= MAX_LABEL for node in panel["nodes"])
        assert all(src < dst for src, dst, _ in panel["edges"])
        assert len(set(map(tuple, panel["edges"]))) == len(panel["edges"]), "repeated edge"


# -- NAS-Bench-201 ---------------------------------------------------------------------------
@pytest.mark.parametrize("space_class", [NB201Space, TabularNB201Space])
def test_nb201_edges_are_the_cells_non_zero_ops(space_class: type[NB201Space]) -> None:
    space = space_class()
    for genotype in samples(space):
        spec = diagram(space, genotype)
        assert_well_formed(spec)
        (panel,) = spec["panels"]
        assert panel["nodes"] == ["in", "1", "2", "out"]
        # Read the genotype independently of the space's helpers: "edge{i}<-{j}" -> op.
        expected: Counter[tuple[int, int, str]] = Counter()
        for name, op in genotype.items():
            target, source = name.removeprefix("edge").split("<-")
            if op != "none":
                expected[int(source), int(target), op] += 1
        assert edge_set(panel) == expected


def test_nb201_keeps_skips_and_drops_zeros() -> None:
    space = NB201Space()
    cell = space.from_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    (panel,) = diagram(space, cell)["panels"]
    assert panel["edges"] == [[0, 1, "skip_connect"], [2, 3, "skip_connect"]]
    empty = space.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert diagram(space, empty)["panels"][0]["edges"] == []


# -- DARTS -------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [4, 2])
def test_darts_has_a_normal_and_a_reduce_panel(steps: int) -> None:
    space = DartsSpace(steps=steps)
    for genotype in samples(space, n=10):
        spec = diagram(space, genotype)
        assert_well_formed(spec)
        assert [p["title"] for p in spec["panels"]] == ["normal", "reduce"]
        for panel in spec["panels"]:
            intermediate = range(2, 2 + steps)
            out = steps + 2
            assert panel["nodes"] == ["c_{k-2}", "c_{k-1}", *map(str, range(steps)), "out"]
            into = Counter(dst for _, dst, _ in panel["edges"])
            assert all(into[node] == 2 for node in intermediate)
            assert into[out] == steps
            assert sorted(e for e in panel["edges"] if e[1] == out) == [
                [node, out, ""] for node in intermediate]
            labelled = Counter((src, dst, op) for src, dst, op in panel["edges"] if dst != out)
            pairs = space.cell(genotype, panel["title"])
            assert labelled == Counter((src, 2 + k // 2, op) for k, (op, src) in enumerate(pairs))


def test_darts_v2_normal_cell_is_drawn_as_published() -> None:
    space = DartsSpace()
    genotype = space.from_string(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
        "reduce_concat=[2, 3, 4, 5])")
    normal = diagram(space, genotype)["panels"][0]
    assert normal["edges"] == [
        [0, 2, "sep_conv_3x3"], [1, 2, "sep_conv_3x3"],
        [0, 3, "sep_conv_3x3"], [1, 3, "sep_conv_3x3"],
        [0, 4, "skip_connect"], [1, 4, "sep_conv_3x3"],
        [0, 5, "skip_connect"], [2, 5, "dil_conv_3x3"],
        [2, 6, ""], [3, 6, ""], [4, 6, ""], [5, 6, ""],
    ]


# -- chain and multi-branch ------------------------------------------------------------------
@pytest.mark.parametrize("space", [ChainSpace("image"), ChainSpace("vector", max_depth=3)],
                         ids=["image", "vector"])
def test_chain_is_a_row_of_layers(space: ChainSpace) -> None:
    for genotype in samples(space):
        spec = diagram(space, genotype)
        assert_well_formed(spec)
        (panel,) = spec["panels"]
        depth = int(genotype["depth"])
        assert len(panel["nodes"]) == depth + 2
        assert panel["nodes"][0] == "input" and panel["nodes"][-1] == "output"
        assert panel["edges"] == [[i, i + 1, ""] for i in range(depth + 1)]
        for i in range(depth):
            words = panel["nodes"][i + 1].split()
            assert words[0] == genotype[f"layer{i}.op"]
            if f"layer{i}.width" in genotype:  # a weighted op shows width and activation
                assert words[1:3] == [str(genotype[f"layer{i}.width"]),
                                      genotype[f"layer{i}.activation"]]
            else:
                assert len(words) == 1


def test_multi_branch_draws_every_skip_with_its_merge() -> None:
    space = MultiBranchSpace("image", max_depth=4)
    merges_seen: set[str] = set()
    for genotype in samples(space, n=60):
        spec = diagram(space, genotype)
        assert_well_formed(spec)
        (panel,) = spec["panels"]
        depth = int(genotype["depth"])
        skips = {(j, i + 1, str(genotype[f"layer{i}.merge"]))
                 for i in range(depth) for j in range(i) if genotype.get(f"layer{i}.skip{j}") is True}
        chain = {(i, i + 1, "") for i in range(depth + 1)}
        assert set(edge_set(panel)) == skips | chain
        assert len(panel["edges"]) == len(skips) + len(chain)
        merges_seen |= {merge for _, _, merge in skips}
    assert merges_seen == {"sum", "concat"}, "the samples should cover both merge rules"


def test_layer_labels_stay_short_and_name_the_norm() -> None:
    space = ChainSpace("vector", max_depth=1, widths=(1024,), activations=("tanh",),
                       norms=("layernorm",))
    genotype = space.sample(np.random.default_rng(0))
    assert diagram(space, genotype)["panels"][0]["nodes"][1] == "dense 1024 tanh ln"


# -- NAS-Bench-Graph -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nbgraph() -> NBGraphSpace:
    return NBGraphSpace()


def test_nbgraph_readme_example_is_its_real_dag(nbgraph: NBGraphSpace) -> None:
    # The benchmark's README example: node 1 gcn <- input, 2 gin <- 1, 3 fc <- 2,
    # 4 cheb <- 1; the leaves fc and cheb feed the output.  The canonical spelling
    # swaps nodes 3 and 4.
    genotype = nbgraph.genotype([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    (panel,) = diagram(nbgraph, genotype)["panels"]
    assert panel["nodes"] == ["input", "gcn", "gin", "cheb", "fc", "output"]
    assert panel["edges"] == [[0, 1, ""], [1, 2, ""], [1, 3, ""], [2, 4, ""], [3, 5, ""],
                              [4, 5, ""]]


def test_nbgraph_every_layer_reads_one_node_and_reaches_the_output(nbgraph: NBGraphSpace) -> None:
    for genotype in samples(nbgraph):
        spec = diagram(nbgraph, genotype)
        assert_well_formed(spec)
        (panel,) = spec["panels"]
        links, ops = nbgraph.structure(genotype)
        assert panel["nodes"] == ["input", *ops, "output"]
        into = Counter(dst for _, dst, _ in panel["edges"])
        assert all(into[node] == 1 for node in range(1, 5))
        leaves = [node for node in range(1, 5) if node not in links]
        assert into[5] == len(leaves) >= 1
        sources = {src for src, _, _ in panel["edges"]}
        assert sources == set(range(5)), "every node but the output feeds another"


# -- other spaces ------------------------------------------------------------------------------
class MySpace(DecisionSpace):
    """The README's user space."""

    def __init__(self) -> None:
        super().__init__([int_range("layers", 1, 8), categorical("width", (8, 16, 32, 64, 128)),
                          categorical("activation", ("relu", "gelu", "tanh"))])


def test_a_user_space_gets_its_decisions_in_declaration_order() -> None:
    space = MySpace()
    for genotype in samples(space, n=5):
        spec = diagram(space, genotype)
        assert_well_formed(spec)
        (panel,) = spec["panels"]
        assert panel["title"] == "MySpace"
        assert panel["nodes"] == [f"layers={genotype['layers']}", f"width={genotype['width']}",
                                  f"activation={genotype['activation']}"]
        assert panel["edges"] == [[0, 1, ""], [1, 2, ""]]


def test_the_fallback_hides_inactive_decisions_and_cuts_long_values() -> None:
    long_value = "a_very_long_activation_function_name"
    space = DecisionSpace([
        categorical("residual", (False, True)),
        categorical("kind", (long_value,), [when("residual", True)]),
    ])
    off = Genotype.of({"residual": False, "kind": long_value})  # kind is inactive here
    assert diagram(space, off)["panels"][0]["nodes"] == ["residual=false"]
    on = Genotype.of({"residual": True, "kind": long_value})
    spec = diagram(space, on)
    assert_well_formed(spec)
    node = spec["panels"][0]["nodes"][1]
    assert len(node) == MAX_LABEL and node.startswith("kind=a_very") and node.endswith("…")


class SelfDrawingSpace(MySpace):
    def diagram(self, genotype: Genotype) -> dict[str, Any]:
        return {"panels": [{"title": "mine", "nodes": ["a", "b"], "edges": [[0, 1, "x"]]}]}


class BrokenDrawingSpace(MySpace):
    def diagram(self, genotype: Genotype) -> dict[str, Any]:
        return {"panels": [{"title": "bad", "nodes": ["a", "b"], "edges": [[1, 0, ""]]}]}


def test_a_space_can_draw_itself_and_a_bad_drawing_is_named() -> None:
    genotype = MySpace().sample(np.random.default_rng(0))
    assert diagram(SelfDrawingSpace(), genotype)["panels"][0]["title"] == "mine"
    with pytest.raises(ValueError, match="src < dst"):
        diagram(BrokenDrawingSpace(), genotype)


# -- every space -------------------------------------------------------------------------------
ALL_SPACES = [NB201Space(), DartsSpace(), ChainSpace(), MultiBranchSpace(), MySpace()]


@pytest.mark.parametrize("space", ALL_SPACES, ids=lambda s: type(s).__name__)
def test_specs_are_deterministic(space: SearchSpace) -> None:
    for genotype in samples(space, n=5):
        first = json.dumps(diagram(space, genotype))
        again = json.dumps(diagram(type(space)(), Genotype.from_json(genotype.to_json())))
        assert first == again


@pytest.mark.parametrize("space", ALL_SPACES[:4], ids=lambda s: type(s).__name__)
def test_an_invalid_genotype_of_a_built_in_space_is_refused(space: SearchSpace) -> None:
    with pytest.raises(InvalidGenotype):
        diagram(space, Genotype.of({"nonsense": 1}))


@pytest.mark.parametrize("spec", [
    [], {"panels": {}}, {"panels": [{"nodes": [], "edges": []}]},
    {"panels": [{"title": "t", "nodes": ["a", 1], "edges": []}]},
    {"panels": [{"title": "t", "nodes": ["a", "b"], "edges": [[0, 2, ""]]}]},
    {"panels": [{"title": "t", "nodes": ["a", "b"], "edges": [[0, 1]]}]},
    {"panels": [{"title": "t", "nodes": ["a", "b"], "edges": [[True, 1, ""]]}]},
])
def test_check_spec_refuses_what_the_drawing_cannot_use(spec: object) -> None:
    with pytest.raises(ValueError):
        check_spec(spec)
