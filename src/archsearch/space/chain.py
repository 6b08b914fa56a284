"""Chain-structured and multi-branch spaces over image (NCHW) or vector inputs.

A network is a stem, then ``depth`` layers, then a classifier head.  In the chain
space layer i reads layer i-1; in the multi-branch space it may also read any earlier
node (the stem's output is node 0, layer i's output is node i+1), merged by a sum or a
channel concatenation.  Width, activation and normalisation exist only for operations
with weights, so an identity layer has one spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archsearch.space.base import DecisionSpace
from archsearch.space.decisions import Decision, categorical, int_range, when
from archsearch.space.genotype import Genotype

IMAGE_OPS = ("conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity")
VECTOR_OPS = ("dense", "identity")
#: Operations with weights: only these have a width, an activation and a normalisation.
WEIGHTED_OPS = frozenset({"conv3x3", "conv5x5", "sepconv3x3", "dense"})
ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
NORMS = ("batchnorm", "layernorm", "none")
MERGES = ("sum", "concat")

_DEFAULTS = {
    "image": {"ops": IMAGE_OPS, "widths": (16, 32, 64), "activations": ("relu", "gelu"),
              "norms": ("batchnorm", "none")},
    "vector": {"ops": ("dense",), "widths": (32, 64, 128, 256),
               "activations": ("relu", "gelu", "tanh"), "norms": ("batchnorm", "layernorm", "none")},
}


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the network builder sees it.  ``inputs`` are node indices."""

    op: str
    width: int | None
    activation: str | None
    norm: str | None
    inputs: tuple[int, ...]
    merge: str = "sum"


class ChainSpace(DecisionSpace):
    """A stack of ``min_depth..max_depth`` layers, each choosing op, width, activation, norm.

    >>> import numpy as np
    >>> space = ChainSpace("vector", max_depth=2)
    >>> g = space.sample(np.random.default_rng(0))
    >>> space.validate(g); len(space.layers(g)) == g["depth"]
    True
    """

    name = "chain"

    def __init__(
        self,
        modality: str = "image",
        max_depth: int = 4,
        min_depth: int = 1,
        ops: Sequence[str] | None = None,
        widths: Sequence[int] | None = None,
        activations: Sequence[str] | None = None,
        norms: Sequence[str] | None = None,
    ) -> None:
        if modality not in _DEFAULTS:
            raise ValueError(f"modality must be 'image' or 'vector', got {modality!r}")
        if not 1 <= min_depth <= max_depth:
            raise ValueError(f"need 1 <= min_depth <= max_depth, got {min_depth}..{max_depth}")
        defaults = _DEFAULTS[modality]
        self.modality = modality
        self.min_depth, self.max_depth = min_depth, max_depth
        self.ops = tuple(ops or defaults["ops"])
        self.widths = tuple(int(w) for w in (widths or defaults["widths"]))
        self.activations = tuple(activations or defaults["activations"])
        self.norms = tuple(norms or defaults["norms"])
        legal_ops = IMAGE_OPS if modality == "image" else VECTOR_OPS
        for label, chosen, legal in (
            ("op", self.ops, legal_ops), ("activation", self.activations, ACTIVATIONS),
            ("norm", self.norms, NORMS),
        ):
            bad = [c for c in chosen if c not in legal]
            if bad:
                raise ValueError(f"unknown {label}(s) {bad} for {modality} input; choose from {legal}")
        if any(w <= 0 for w in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        super().__init__(self._declare())

    def _declare(self) -> list[Decision]:
        decisions = [int_range("depth", self.min_depth, self.max_depth)]
        for i in range(self.max_depth):
            decisions += self._layer_decisions(i)
        return decisions

    def _layer_decisions(self, i: int) -> list[Decision]:
        exists = when("depth", *range(max(i + 1, self.min_depth), self.max_depth + 1))
        weighted = when(f"layer{i}.op", *[o for o in self.ops if o in WEIGHTED_OPS])
        out = [categorical(f"layer{i}.op", self.ops, [exists])]
        if weighted.values:
            out += [
                categorical(f"layer{i}.width", self.widths, [exists, weighted]),
                categorical(f"layer{i}.activation", self.activations, [exists, weighted]),
                categorical(f"layer{i}.norm", self.norms, [exists, weighted]),
            ]
        return out

    def _inputs(self, genotype: Genotype, i: int) -> tuple[tuple[int, ...], str]:
        return (i,), "sum"

    def layers(self, genotype: Genotype) -> list[LayerSpec]:
        """The layers of a (valid) genotype, in order."""
        self.validate(genotype)
        specs = []
        for i in range(int(genotype["depth"])):
            inputs, merge = self._inputs(genotype, i)
            op = str(genotype[f"layer{i}.op"])
            weighted = op in WEIGHTED_OPS
            specs.append(LayerSpec(
                op=op,
                width=int(genotype[f"layer{i}.width"]) if weighted else None,
                activation=str(genotype[f"layer{i}.activation"]) if weighted else None,
                norm=str(genotype[f"layer{i}.norm"]) if weighted else None,
                inputs=inputs,
                merge=merge,
            ))
        return specs

    def format(self, genotype: Genotype) -> str:
        return format_layers(self.layers(genotype))


class MultiBranchSpace(ChainSpace):
    """The chain space plus, per layer, skip connections from any earlier node.

    Layer i always reads node i (its predecessor); ``layer{i}.skip{j}`` adds node j < i.
    With at least one skip, ``layer{i}.merge`` says whether inputs are summed or
    concatenated along channels.
    """

    name = "multi-branch"

    def __init__(
        self,
        modality: str = "image",
        max_depth: int = 4,
        min_depth: int = 1,
        ops: Sequence[str] | None = None,
        widths: Sequence[int] | None = None,
        activations: Sequence[str] | None = None,
        norms: Sequence[str] | None = None,
        merges: Sequence[str] = MERGES,
    ) -> None:
        bad = [m for m in merges if m not in MERGES]
        if bad or not merges:
            raise ValueError(f"merges must be a non-empty subset of {MERGES}, got {list(merges)}")
        self.merges = tuple(merges)
        super().__init__(modality, max_depth, min_depth, ops, widths, activations, norms)

    def _layer_decisions(self, i: int) -> list[Decision]:
        exists = when("depth", *range(max(i + 1, self.min_depth), self.max_depth + 1))
        skips = [categorical(f"layer{i}.skip{j}", (False, True), [exists]) for j in range(i)]
        out = super()._layer_decisions(i) + skips
        if skips:
            out.append(categorical(
                f"layer{i}.merge", self.merges, [exists],
                any_of=[when(s.name, True) for s in skips],
            ))
        return out

    def _inputs(self, genotype: Genotype, i: int) -> tuple[tuple[int, ...], str]:
        extra = tuple(j for j in range(i) if genotype.get(f"layer{i}.skip{j}") is True)
        merge = str(genotype[f"layer{i}.merge"]) if extra else "sum"
        return (*extra, i), merge


_NORM_ABBREV = {"batchnorm": "bn", "layernorm": "ln", "none": "-"}


def _format_layer(spec: LayerSpec) -> str:
    text = spec.op
    if spec.width is not None:
        text += f"({spec.width},{spec.activation},{_NORM_ABBREV.get(str(spec.norm), spec.norm)})"
    if len(spec.inputs) > 1:
        text = f"{spec.merge}({','.join(f'n{j}' for j in spec.inputs)})>{text}"
    return text


def format_layers(specs: Sequence[LayerSpec]) -> str:
    """E.g. ``conv3x3(32,relu,bn) > concat(n0,n1)>maxpool3x3``: node n0 is the stem's output,
    node n(i+1) layer i's; a layer without a merge reads its predecessor alone."""
    return " > ".join(_format_layer(s) for s in specs)
