"""Search spaces: what can be built.  No torch is imported here."""

from archsearch.space.base import (
    DecisionSpace,
    InvalidGenotype,
    SearchSpace,
    SpaceTooLarge,
    SupernetSpace,
    TrainableSpace,
)
from archsearch.space.cells import DartsSpace
from archsearch.space.chain import ChainSpace, LayerSpec, MultiBranchSpace
from archsearch.space.decisions import Condition, Decision, categorical, int_range, when
from archsearch.space.genotype import Genotype, Value
from archsearch.space.nb201 import NB201Space

__all__ = [
    "ChainSpace",
    "Condition",
    "DartsSpace",
    "Decision",
    "DecisionSpace",
    "Genotype",
    "InvalidGenotype",
    "LayerSpec",
    "MultiBranchSpace",
    "NB201Space",
    "SearchSpace",
    "SpaceTooLarge",
    "SupernetSpace",
    "TrainableSpace",
    "Value",
    "categorical",
    "int_range",
    "when",
]
