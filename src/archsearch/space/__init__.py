"""Search spaces: what can be built.  No torch is imported here."""

from archsearch.space.base import (
    DecisionSpace,
    InvalidGenotype,
    SearchSpace,
    SpaceTooLarge,
)
from archsearch.space.chain import ChainSpace, LayerSpec, MultiBranchSpace
from archsearch.space.decisions import Condition, Decision, categorical, int_range, when
from archsearch.space.genotype import Genotype, Value

__all__ = [
    "ChainSpace",
    "Condition",
    "Decision",
    "DecisionSpace",
    "Genotype",
    "InvalidGenotype",
    "LayerSpec",
    "MultiBranchSpace",
    "SearchSpace",
    "SpaceTooLarge",
    "Value",
    "categorical",
    "int_range",
    "when",
]
