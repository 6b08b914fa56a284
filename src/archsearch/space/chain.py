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
from typing import TYPE_CHECKING

import numpy as np

from archsearch.space.base import DecisionSpace
from archsearch.space.decisions import Decision, categorical, int_range, when
from archsearch.space.genotype import Genotype, Value

if TYPE_CHECKING:  # spaces import no torch at run time
    from torch import nn

IMAGE_OPS = ("conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity")
VECTOR_OPS = ("dense", "identity")
#: Operations with weights: only these have a width, an activation and a normalisation.
WEIGHTED_OPS = frozenset({"conv3x3", "conv5x5", "sepconv3x3", "dense"})
ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
NORMS = ("batchnorm", "layernorm", "none")
MERGES = ("sum", "concat")

#: A layer while a genotype is edited: its fields (op, width, ...) and its skip sources.
_Layer = tuple[dict[str, Value], set[int]]

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
        stem_width: int = 16,
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
        if stem_width < 1:
            raise ValueError(f"stem_width must be >= 1, got {stem_width}")
        self.stem_width = stem_width
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

    def format_compact(self, genotype: Genotype) -> str:
        """The layers with abbreviated ops and their widths, activation and norm left out
        (``format`` has them): e.g. ``c3·32 > mp(+n0) > s3·64(&n0,n1)``; see
        ``format_layers_compact``."""
        return format_layers_compact(self.layers(genotype))

    def build_network(self, genotype: Genotype, input_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module:
        """The genotype's layers between a stem (images: conv3x3-BN-ReLU of ``stem_width``
        channels) and a classifier head; see ``archsearch.nn.builder.build_network``."""
        from archsearch.nn.builder import build_network

        return build_network(self.layers(genotype), input_shape, num_classes,
                             stem_width=self.stem_width)

    # -- mutation ---------------------------------------------------------------------------
    def mutate(self, genotype: Genotype, rng: np.random.Generator) -> Genotype:
        """One random edit, always valid and different from ``genotype``.

        The kind of edit is drawn uniformly among those possible here, then the edit:
        change one layer's op, width, activation, norm or merge rule; insert a random layer
        at a random position; remove the layer at a random position; and, in the
        multi-branch space, add or remove one skip connection.  Inserting or removing a
        layer renumbers the later layers and the skips that read past it, so every other
        connection keeps its source (skips from a removed layer are dropped).  Values that
        become needed (a new layer's, or a width when an op gains weights) are sampled.
        """
        layers = self._unpack(genotype)
        depth = len(layers)
        options: dict[str, list[tuple[int, ...]]] = {
            "change": [(i, k) for i, (attrs, _) in enumerate(layers)
                       for k, field in enumerate(attrs)
                       if self._by_name[f"layer{i}.{field}"].size > 1],
            "add-layer": [(p,) for p in range(depth + 1)] if depth < self.max_depth else [],
            "remove-layer": [(p,) for p in range(depth)] if depth > self.min_depth else [],
            "add-skip": self._skip_options(layers, present=False),
            "remove-skip": self._skip_options(layers, present=True),
        }
        kinds = [kind for kind, edits in options.items() if edits]
        if not kinds:
            return genotype
        kind = kinds[int(rng.integers(len(kinds)))]
        edit = options[kind][int(rng.integers(len(options[kind])))]
        if kind == "change":
            layers[edit[0]] = self._changed(layers[edit[0]], edit[0], edit[1], rng)
        elif kind == "add-layer":
            op = self.ops[int(rng.integers(len(self.ops)))]
            layers = self._inserted(layers, edit[0], ({"op": op}, set()))
        elif kind == "remove-layer":
            layers = self._removed(layers, edit[0])
        else:
            i, j = edit
            layers[i] = (layers[i][0], layers[i][1] ^ {j})
        return self._pack(layers, rng)

    def _unpack(self, genotype: Genotype) -> list[_Layer]:
        """The layers as (field -> value, skip sources); fields are ``op``, ``width``, ..."""
        layers: list[_Layer] = [({}, set()) for _ in range(int(genotype["depth"]))]
        for name, value in self.active_values(genotype).items():
            if name == "depth":
                continue
            index, field = name.removeprefix("layer").split(".", 1)
            attrs, skips = layers[int(index)]
            if field.startswith("skip"):
                if value is True:
                    skips.add(int(field.removeprefix("skip")))
            else:
                attrs[field] = value
        return layers

    def _pack(self, layers: list[_Layer], rng: np.random.Generator) -> Genotype:
        values: dict[str, Value] = {"depth": len(layers)}
        for i, (attrs, skips) in enumerate(layers):
            values.update({f"layer{i}.{field}": v for field, v in attrs.items()})
            for j in range(i):
                if f"layer{i}.skip{j}" in self._by_name:
                    values[f"layer{i}.skip{j}"] = j in skips
        return self._complete(values, None, rng)  # samples what became active, drops the rest

    def _changed(self, layer: _Layer, i: int, k: int, rng: np.random.Generator) -> _Layer:
        """Layer i with its k-th field set to another value."""
        attrs, skips = dict(layer[0]), layer[1]
        field = list(attrs)[k]
        others = [c for c in self._by_name[f"layer{i}.{field}"].choices if c != attrs[field]]
        attrs[field] = others[int(rng.integers(len(others)))]
        if field == "op" and attrs["op"] not in WEIGHTED_OPS:  # no weights: no width etc.
            attrs = {f: v for f, v in attrs.items() if f not in ("width", "activation", "norm")}
        return attrs, skips

    def _skip_options(self, layers: list[_Layer], present: bool) -> list[tuple[int, ...]]:
        """(layer, source) pairs whose skip connection is ``present`` (or absent)."""
        return [(i, j) for i, (_, skips) in enumerate(layers) for j in range(i)
                if f"layer{i}.skip{j}" in self._by_name and (j in skips) == present]

    @staticmethod
    def _inserted(layers: list[_Layer], p: int, new: _Layer) -> list[_Layer]:
        """``new`` as layer p.  Its output is node p + 1, so later nodes move up by one."""
        moved = [(attrs, {j if j <= p else j + 1 for j in skips}) for attrs, skips in layers[p:]]
        return [*layers[:p], new, *moved]

    @staticmethod
    def _removed(layers: list[_Layer], p: int) -> list[_Layer]:
        """Without layer p.  Its output, node p + 1, is gone: skips from it are dropped and
        later nodes move down by one; the next layer reads node p directly, so a skip from
        node p is no longer a skip."""
        out = layers[:p]
        for i, (attrs, skips) in enumerate(layers[p + 1:], start=p):  # i: the new index
            renumbered = {j if j <= p else j - 1 for j in skips if j != p + 1}
            out.append((attrs, {j for j in renumbered if j < i}))
        return out


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
        stem_width: int = 16,
    ) -> None:
        bad = [m for m in merges if m not in MERGES]
        if bad or not merges:
            raise ValueError(f"merges must be a non-empty subset of {MERGES}, got {list(merges)}")
        self.merges = tuple(merges)
        super().__init__(modality, max_depth, min_depth, ops, widths, activations, norms,
                         stem_width)

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


#: Two-letter op names of ``format_layers_compact``.
LAYER_SHORT = {"conv3x3": "c3", "conv5x5": "c5", "sepconv3x3": "s3", "maxpool3x3": "mp",
               "avgpool3x3": "ap", "identity": "id", "dense": "fc"}


def format_layers_compact(specs: Sequence[LayerSpec]) -> str:
    """A layer is its op (``LAYER_SHORT``), ``·width`` where it has weights, and in
    parentheses the earlier nodes it reads besides its predecessor: ``+n0`` summed,
    ``&n0`` concatenated; e.g. ``c3·32 > mp > s3·64(&n0,n1)``."""
    parts = []
    for spec in specs:
        text = LAYER_SHORT.get(spec.op, spec.op)
        if spec.width is not None:
            text += f"·{spec.width}"
        skips = spec.inputs[:-1]  # the last input is the predecessor
        if skips:
            mark = "+" if spec.merge == "sum" else "&"
            text += f"({mark}{','.join(f'n{j}' for j in skips)})"
        parts.append(text)
    return " > ".join(parts)
