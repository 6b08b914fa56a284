"""Space-specific behaviour beyond the conformance suite."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.space import (
    ChainSpace,
    DecisionSpace,
    Genotype,
    InvalidGenotype,
    MultiBranchSpace,
    SpaceTooLarge,
    categorical,
    int_range,
    when,
)


def test_inactive_decisions_do_not_change_the_key() -> None:
    space = ChainSpace("image", max_depth=2)
    a = Genotype.of({"depth": 1, "layer0.op": "identity"})
    spelled = a.replace(**{"layer0.width": 64, "layer1.op": "conv3x3"})  # inactive extras
    space.validate(spelled)
    assert space.key(a) == space.key(spelled)
    assert space.canonicalize(spelled) == a


def test_conditional_decisions_exist_only_when_their_parent_allows() -> None:
    space = ChainSpace("image", max_depth=3, min_depth=2)
    for genotype in space.enumerate():
        depth = int(genotype["depth"])
        layers = {int(k[5]) for k in genotype if k.startswith("layer")}
        assert layers == set(range(depth))
        assert depth >= 2


def test_missing_and_illegal_values_are_named() -> None:
    space = ChainSpace("vector", max_depth=2)
    with pytest.raises(InvalidGenotype, match="missing decision 'layer1.op'"):
        space.validate(Genotype.of({"depth": 2, "layer0.op": "dense", "layer0.width": 32,
                                    "layer0.activation": "relu", "layer0.norm": "none"}))
    with pytest.raises(InvalidGenotype, match="not a legal value of 'depth'"):
        space.validate(Genotype.of({"depth": 9}))
    with pytest.raises(InvalidGenotype, match="not a legal value"):
        space.validate(Genotype.of({"depth": True}))  # a bool is not the integer 1


def test_size_counts_conditional_structure() -> None:
    # depth 1: 3 ops x (width 2 if weighted)...; checked against brute force enumeration.
    space = MultiBranchSpace("image", max_depth=3, ops=("conv3x3", "identity"), widths=(8, 16),
                             activations=("relu",), norms=("none",))
    assert space.size() == sum(1 for _ in space.enumerate())
    # closed form: per layer 3 op settings; layer i has 2^i skip sets, merge x2 when any skip
    per = [3 * (1 + 2 * (2**i - 1)) for i in range(3)]
    assert space.size() == per[0] + per[0] * per[1] + per[0] * per[1] * per[2]


def test_multi_branch_mutation_can_add_and_remove_a_connection() -> None:
    space = MultiBranchSpace("vector", max_depth=3)
    genotype = Genotype.of({
        "depth": 2, "layer0.op": "dense", "layer0.width": 32, "layer0.activation": "relu",
        "layer0.norm": "none", "layer1.op": "dense", "layer1.width": 32,
        "layer1.activation": "relu", "layer1.norm": "none", "layer1.skip0": False})
    space.validate(genotype)
    with_skip = [n for n in space.neighbours(genotype) if n.get("layer1.skip0") is True]
    assert with_skip and "layer1.merge" in with_skip[0]
    assert space.layers(with_skip[0])[1].inputs == (0, 1)
    removed = [n for n in space.neighbours(with_skip[0]) if n.get("layer1.skip0") is False]
    assert removed and space.key(removed[0]) == space.key(genotype)


def test_depth_mutation_adds_and_removes_a_layer() -> None:
    space = ChainSpace("image", max_depth=4)
    genotype = space.sample(np.random.default_rng(0))
    depths = {int(n["depth"]) for n in space.neighbours(genotype)}
    d = int(genotype["depth"])
    assert depths == {x for x in (d - 1, d, d + 1) if 1 <= x <= 4}


def test_enumeration_refuses_huge_spaces_naming_the_size() -> None:
    space = MultiBranchSpace("image", max_depth=8)
    with pytest.raises(SpaceTooLarge, match=f"{space.size():,}"):
        space.enumerate()


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="must come first"):
        DecisionSpace([categorical("a", (1, 2), [when("b", 1)]), int_range("b", 1, 2)])
    with pytest.raises(ValueError, match="repeats a choice"):
        categorical("a", (1, 1))
    with pytest.raises(ValueError, match="unknown op"):
        ChainSpace("vector", ops=("conv3x3",))
    with pytest.raises(ValueError, match="modality"):
        ChainSpace("audio")
