"""Turn a list of ``LayerSpec`` into a PyTorch network: stem, layers, head.

Node 0 is the stem's output (the raw features for vector input); node k is layer
k-1's output.  A layer merges the nodes it reads ("sum" after projecting to the
predecessor's channel count, or "concat" along channels) and applies its op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from archsearch.nn.ops import make_op, make_projection
from archsearch.space.chain import LayerSpec
from archsearch.space.genotype import Genotype


class LayeredSpace(Protocol):
    """Any space that can list a genotype's layers (``ChainSpace``, ``MultiBranchSpace``)."""

    def layers(self, genotype: Genotype) -> list[LayerSpec]: ...


class Layer(nn.Module):
    """One layer: merge its input nodes, then apply its op."""

    def __init__(self, spec: LayerSpec, node_channels: Sequence[int], *, image: bool) -> None:
        super().__init__()
        if not spec.inputs or not all(0 <= i < len(node_channels) for i in spec.inputs):
            last = len(node_channels) - 1
            raise ValueError(f"inputs {spec.inputs} must name earlier nodes 0..{last}")
        if spec.merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {spec.merge!r}")
        self.inputs = tuple(spec.inputs)
        self.concat = spec.merge == "concat"
        channels = [node_channels[i] for i in self.inputs]
        if self.concat:
            merged = sum(channels)
            self.project = nn.ModuleList()
        else:
            merged = channels[-1]  # the predecessor's count
            self.project = nn.ModuleList(
                nn.Identity() if c == merged else make_projection(c, merged, image=image)
                for c in channels
            )
        self.op, self.out_channels = make_op(spec, merged, image=image)

    def forward(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        xs = [nodes[i] for i in self.inputs]
        if self.concat:
            x = torch.cat(xs, dim=1)
        else:
            x = self.project[0](xs[0])
            for project, other in zip(self.project[1:], xs[1:], strict=True):
                x = x + project(other)
        return self.op(x)


class Network(nn.Module):
    """Stem, then layers that may read any earlier node, then the classifier head."""

    def __init__(self, stem: nn.Module, layers: Sequence[Layer], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [self.stem(x)]
        for layer in self.layers:
            nodes.append(layer(nodes))
        return self.head(nodes[-1])


def build_network(
    layers: Sequence[LayerSpec],
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    stem_width: int = 16,
) -> nn.Module:
    """The network ``layers`` describe, for inputs of ``input_shape`` (C, H, W) or (F,).

    Images get a conv3x3-BN-ReLU stem of ``stem_width`` channels and a global-average-pool
    head; vectors get no stem (node 0 is the raw features) and a linear head.
    """
    if len(input_shape) == 3:
        image = True
        stem: nn.Module = nn.Sequential(
            nn.Conv2d(input_shape[0], stem_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(),
        )
        channels = [stem_width]
    elif len(input_shape) == 1:
        image = False
        stem = nn.Identity()
        channels = [input_shape[0]]
    else:
        raise ValueError(f"input_shape must be (C, H, W) or (F,), got {input_shape}")

    built = []
    for spec in layers:
        layer = Layer(spec, channels, image=image)
        built.append(layer)
        channels.append(layer.out_channels)

    head: nn.Module = nn.Linear(channels[-1], num_classes)
    if image:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    return Network(stem, built, head)
